"""Verifying TLS contexts for the IMAP and SMTP edges, and one-line reasons when verification fails.

Certificates are always checked (chain and host name). A private server's CA is
trusted in addition to the system's through ``mailbox.ca_file`` / ``smtp.ca_file``.
"""

from __future__ import annotations

import ssl


class TlsSetupError(OSError):
    """The configured CA file cannot be used; the message names the key and the file."""


def verified_context(ca_file: str = "", key: str = "ca_file") -> ssl.SSLContext:
    """The system's verifying client context, also trusting the PEM certificates in ``ca_file`` when set."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            raise TlsSetupError(f"{key} {ca_file!r} cannot be used as a CA file: {reason}") from e
    return context


def describe_tls_error(e: BaseException, key: str) -> str | None:
    """A one-line reason for a failed certificate check (``None`` when ``e`` is not one)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        detail = e.verify_message or e.reason or "certificate verify failed"
        return (f"TLS certificate not trusted ({detail}); "
                f"for a private server, set {key} to the PEM file of its CA")
    if isinstance(e, TlsSetupError):
        return str(e)
    return None
