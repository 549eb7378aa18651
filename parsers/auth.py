"""Was a message really sent by the address in its From? Read from ``Authentication-Results`` (RFC 8601).

The receiving server (163.com) checks SPF and DKIM when the mail arrives and
prepends one ``Authentication-Results`` header with what it found. Only the
topmost header is the receiving server's own: a sender can put any header
below it, so later ones are ignored. A result counts against the sender only
when the server says so outright (``fail``, ``softfail`` or ``permerror`` for
SPF; ``fail`` or ``permerror`` for DKIM); ``none`` or a missing header is no
evidence either way.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass

FAILING = {"spf": {"fail", "softfail", "permerror"}, "dkim": {"fail", "permerror"}}
# method=result, then optional properties up to the next ';' (comments in parentheses are dropped first)
_RESULT = re.compile(r"(?i)\b(spf|dkim)\s*=\s*([a-z]+)([^;]*)")
_COMMENT = re.compile(r"\([^()]*\)")
_PROPERTY = re.compile(r"(?i)\b(header\.d|header\.i|smtp\.mailfrom|header\.from)\s*=\s*\"?([^\s;\"]+)")


@dataclass(frozen=True)
class AuthFailure:
    method: str  # spf | dkim
    result: str  # fail, softfail, permerror
    subject: str  # the domain or address the result is about, when the header names one

    def describe(self) -> str:
        about = f" ({self.subject})" if self.subject else ""
        return f"{self.method}={self.result}{about}"


def authentication_failures(results_headers: Sequence[str], from_address: str) -> list[AuthFailure]:
    """What the receiving server's ``Authentication-Results`` say failed for the From address's domain.

    ``results_headers`` are the header's values, topmost first. A result about another domain (e.g. a
    mailing list's own DKIM signature) does not count against the From address.
    """
    if not results_headers:
        return []
    domain = from_address.rpartition("@")[2].strip().lower()
    text = _COMMENT.sub(" ", " ".join(str(results_headers[0]).split()))
    failures = []
    for method, result, props in _RESULT.findall(text):
        method, result = method.lower(), result.lower()
        if result not in FAILING[method]:
            continue
        subject = next((v for _k, v in _PROPERTY.findall(props)), "")
        subject_domain = subject.rpartition("@")[2].lower()
        if subject_domain and domain and subject_domain != domain:
            continue
        failures.append(AuthFailure(method, result, subject))
    return failures


def results_headers(raw: bytes) -> list[str]:
    """The ``Authentication-Results`` values of a raw message, topmost first (the header block alone is read;
    a block too broken to read has none)."""
    try:
        head = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[: 256 * 1024])
    except Exception:  # noqa: BLE001 - no evidence either way
        return []
    return [str(v) for v in head.get_all("Authentication-Results") or []]
