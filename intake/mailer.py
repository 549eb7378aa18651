"""Replies as messages, and the SMTP client that sends them (spec section 7).

``reply_bytes`` writes the message a district receives (``build_reply``: the same,
parsed); ``Mailer`` sends it over SSL, STARTTLS or plain SMTP per ``[smtp]``, a
queued reply as its stored bytes (``send_bytes``). Every failure becomes a
``SendError`` that says whether a retry may succeed: NetEase's ``451 DT:SPM``,
``451 MI:SFQ`` and ``421 HL:ICC`` and a server that cannot be reached are
temporary; ``554 DT:SPM``, ``550`` and other 5xx answers are permanent. A
connection lost after the message went out (no answer to DATA) is ``unknown``:
the server may have delivered it.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import hashlib
import logging
import random
import re
import smtplib
import ssl
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.charset import BASE64, Charset
from email.header import Header
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr
from types import TracebackType
from typing import Any

from intake.config import SmtpConfig
from intake.errors import SendError
from intake.tls import describe_tls_error, verified_context

log = logging.getLogger(__name__)

KINDS = ("receipt", "late", "update", "final", "resend")
CST = timezone(timedelta(hours=8))  # the Date header of a reply reads in Beijing time (spec 10.6)
MAX_LINE = 78  # header lines are folded to this length, as policy.default folds them
_UTF8 = Charset("utf-8")
_UTF8.header_encoding = BASE64  # encoded words as policy.default writes them (=?utf-8?b?...?=)
NOOP_AFTER_IDLE = 10.0  # seconds: a connection idle longer is checked with NOOP before the next send
_CRLF = re.compile(rb"\r\n|\n|\r(?!\n)")  # every line end, as smtplib makes them CRLF in text


# -- building ----------------------------------------------------------------


def build_reply(**values: Any) -> tuple[EmailMessage, str]:
    """``reply_bytes`` as an ``EmailMessage`` (parsed with ``policy.default``) and its Message-ID."""
    raw, message_id = reply_bytes(**values)
    return email.message_from_bytes(raw, policy=email.policy.default), message_id  # type: ignore[return-value]


def reply_bytes(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    in_reply_to: str | None,
    kind: str,
    domain: str | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
) -> tuple[bytes, str]:
    """The reply to one message (text and HTML alternatives, UTF-8, base64) as RFC 5322 bytes, and its
    Message-ID.

    ``sender`` is the config's ``smtp.sender`` (``徐州市知识产权局 <xzip2019@163.com>``);
    its display name is written RFC 2047-encoded. ``in_reply_to`` is the original
    Message-ID, ``None`` when the original had none. A Message-ID is made on
    ``domain`` (default: the sender's) unless ``message_id`` is given.

    Written directly rather than through ``EmailMessage`` (its header objects and generator cost ~4 ms a
    reply, most of a backlog's rendering): the same fields, bodies and encodings ``EmailMessage`` with
    ``policy.default`` gives (``tests/test_mailer.py`` compares the two), all ASCII: a header value that is
    not plain ASCII, or too long for a line, as RFC 2047 encoded words; a value holding CR or LF refused.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown reply kind {kind!r}")
    sender_name, sender_addr = _address(sender)
    message_id = message_id or make_msgid(domain=domain or sender_addr.rpartition("@")[2] or "localhost")
    lines = [
        _address_header("From", sender_name, sender_addr),
        _address_header("To", *_address(to)),
        _header("Subject", _one_line(subject)),
        _header("Date", format_datetime((date or datetime.now(CST)).astimezone(CST))),
        _header("Message-ID", message_id),
    ]
    if original := _msgid(in_reply_to):
        lines += [_header("In-Reply-To", original), _header("References", original)]
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
    lines += [
        "Auto-Submitted: auto-replied",
        "X-Auto-Response-Suppress: All",  # keeps Outlook/Exchange out-of-office answers from looping
        _header("X-Intake-Outcome", kind),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;\n boundary="{boundary}"',
        "",
    ]
    head = "\n".join(lines).encode("ascii") + b"\n"
    parts = b"".join(_text_part(boundary, subtype, body) for subtype, body in (("plain", text), ("html", html)))
    return head + parts + f"--{boundary}--\n".encode("ascii"), message_id


def sender_domain(sender: str) -> str:
    """The domain of ``smtp.sender``'s address, for the Message-IDs of our replies (``localhost`` without one)."""
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def message_id_for(reply_key: str, domain: str) -> str:
    """A Message-ID derived from ``reply_key``: the same reply always gets the same ID."""
    digest = hashlib.sha256(reply_key.encode()).hexdigest()[:32]
    return f"<intake.{digest}@{domain}>"


def _address(value: str) -> tuple[str, str]:
    """``显示名 <a@b>`` or a bare address as (display name, address); display names may be Chinese."""
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError(f"not a mail address: {value!r}")
    return name, addr


def _header(name: str, value: str) -> str:
    """``Name: value`` folded for a message (no line end): as it is when plain ASCII that fits a line, else
    folded at its spaces; RFC 2047 encoded words (UTF-8) for a value that is not ASCII, has a word too long
    for a line, or holds ``=?`` (so text that looks like an encoded word reads as written). CR and LF are
    refused: they would start a new header."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} would span lines: {value!r}")
    plain = value.isascii() and "=?" not in value  # text that looks like an encoded word is encoded itself
    if plain and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}"
    if plain and all(len(word) < MAX_LINE - len(name) - 2 for word in value.split()):
        return f"{name}: " + Header(value, "us-ascii", MAX_LINE, name).encode(" ", linesep="\n")
    return f"{name}: " + _encoded_words(name, value)


def _address_header(name: str, display: str, addr: str) -> str:
    """``Name: 显示名 <a@b>``: a display name that is not ASCII as encoded words, an ASCII one quoted when
    it needs to be."""
    if not display or display.isascii():
        return _header(name, formataddr((display, addr)))
    if "\r" in display or "\n" in display or not addr.isascii():
        raise ValueError(f"header {name}: unusable address {display!r} <{addr!r}>")
    words = _encoded_words(name, display)
    last = len(words) - (words.rfind("\n") + 1) + (0 if "\n" in words else len(name) + 2)
    gap = " " if last + len(addr) + 3 <= MAX_LINE else "\n "  # the address on a line of its own if need be
    return f"{name}: {words}{gap}<{addr}>"


def _encoded_words(name: str, value: str) -> str:
    """``value`` as UTF-8 base64 encoded words of whole characters, one a line, each line (the first after
    ``Name: ``) within ``MAX_LINE``: a word of n bytes is 12 + 4 * ceil(n / 3) characters long."""
    room = MAX_LINE - len(name) - 2  # the first line; the next ones start with one space
    words, current, size = [], "", 0
    for char in value:
        n = len(char.encode("utf-8", "surrogatepass"))
        if current and 12 + 4 * -(-(size + n) // 3) > room:
            words.append(_UTF8.header_encode(current))
            current, size, room = "", 0, MAX_LINE - 1
        current, size = current + char, size + n
    words.append(_UTF8.header_encode(current))
    return "\n ".join(words)


def _text_part(boundary: str, subtype: str, body: str) -> bytes:
    """One alternative: the text with every line end made LF and one at the end, UTF-8, base64 in lines of
    76 (as ``EmailMessage.set_content(..., cte="base64")`` writes it)."""
    data = b"\n".join(body.encode("utf-8").splitlines()) + b"\n"
    encoded = b"".join(binascii.b2a_base64(data[i : i + 57]) for i in range(0, len(data), 57))
    head = (f'--{boundary}\nContent-Type: text/{subtype}; charset="utf-8"\n'
            "Content-Transfer-Encoding: base64\n\n")
    return head.encode("ascii") + encoded + b"\n"


def _one_line(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def _msgid(value: str | None) -> str | None:
    """The Message-ID in angle brackets, or ``None`` when there is none."""
    value = (value or "").strip()
    if not value:
        return None
    return value if value.startswith("<") else f"<{value}>"


# -- sending -----------------------------------------------------------------


class Mailer:
    """An SMTP session per ``[smtp]``: connect and log in on enter, ``send`` each reply, quit on exit.

    ``ssl_context`` defaults to the system's verifying context, also trusting ``smtp.ca_file``
    when set. A connection the server dropped since
    the last send is opened again before the next; a send itself is never retried
    here, since the server may have accepted it before failing.
    """

    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context
        self.envelope_from = parseaddr(config.sender)[1] or config.user
        self._smtp: smtplib.SMTP | None = None
        self._used_at = 0.0  # time.monotonic() of the last exchange known to have worked

    def __enter__(self) -> Mailer:
        self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def where(self) -> str:
        c = self.config
        return f"{c.host}:{c.port} ({'SSL' if c.ssl else 'STARTTLS' if c.starttls else 'plain'})"

    def connect(self) -> None:
        """Open the connection and log in; raises ``SendError`` (a refused login is temporary: fix config)."""
        self.close()
        try:
            self._smtp = self._open()
        except (smtplib.SMTPException, OSError) as e:
            raise _send_error(f"cannot connect to SMTP {self.where}", e) from e
        self._used_at = time.monotonic()
        log.debug("SMTP connected to %s as %s", self.where, self.config.user or "(no login)")

    def send(self, msg: EmailMessage) -> None:
        """Send ``msg`` to its To/Cc; raises ``SendError`` unless every recipient was accepted."""
        self._transact(str(msg["Message-ID"]), str(msg["To"]),
                       lambda smtp: smtp.send_message(msg, from_addr=self.envelope_from))

    def send_bytes(self, raw: bytes) -> None:
        """Send a message stored as bytes (a queued reply) as it is, line ends made CRLF, to the addresses of
        its To and Cc: the bytes on the wire are the ones ``send`` would write for it, without parsing and
        writing the whole message again. A message ``send_message`` would change (Bcc to drop, a Resent-
        block, 8-bit text needing SMTPUTF8) goes through ``send``. Raises like ``send``."""
        head = BytesHeaderParser(policy=compat32).parsebytes(raw)
        recipients = [addr for _, addr in getaddresses([*head.get_all("To", []), *head.get_all("Cc", [])])]
        if (not raw.isascii() or not "".join([self.envelope_from, *recipients]).isascii()
                or any(head.get_all(name) for name in ("Bcc", "Resent-Date", "Resent-Bcc"))):
            self.send(email.message_from_bytes(raw, policy=email.policy.SMTP))  # type: ignore[arg-type]
            return
        data = _CRLF.sub(b"\r\n", raw)
        self._transact(str(head["Message-ID"]), str(head["To"]),
                       lambda smtp: smtp.sendmail(self.envelope_from, recipients, data))

    def _transact(self, message_id: str, to: str, send: Callable[[smtplib.SMTP], dict]) -> None:
        smtp, checked = self._live()
        try:
            refused = self._attempt(smtp, send, message_id, stale_possible=not checked)
        except _Stale:
            # The connection, used moments ago and not checked, was gone before the message began: nothing
            # reached the server, so a new connection takes the message, once.
            log.info("SMTP %s dropped the connection; reconnecting", self.where)
            self.connect()
            assert self._smtp is not None
            refused = self._attempt(self._smtp, send, message_id, stale_possible=False)
        if refused:
            addr, (code, text) = next(iter(refused.items()))
            raise SendError(f"SMTP {self.where} refused recipient {addr}: {code} {_text(text)}",
                            temporary=_temporary(code), code=code)
        self._used_at = time.monotonic()
        log.info("sent %s to %s", message_id, to)

    def _attempt(self, smtp: smtplib.SMTP, send: Callable[[smtplib.SMTP], dict], message_id: str, *,
                 stale_possible: bool) -> dict:
        """One SMTP transaction; ``_Stale`` when ``stale_possible`` and the connection turned out closed
        before DATA (what a NOOP would have shown), else a ``SendError`` saying what is known."""
        stage = _DataStage(smtp)
        try:
            return send(smtp)
        except (smtplib.SMTPException, OSError) as e:
            self._drop()  # a session after a failed transaction is not worth trusting
            if stale_possible and not stage.entered and _closed(e):
                raise _Stale from e
            error = _send_error(f"SMTP {self.where} did not take {message_id}", e)
            # Lost (timeout, dropped connection) once DATA began, without an answer: the server may have
            # taken the message. Only the Sent folder can tell (intake.poll.resolve); never resend blindly.
            error.unknown = stage.entered and not isinstance(e, smtplib.SMTPResponseException)
            raise error from e
        finally:
            stage.release()

    def close(self) -> None:
        """QUIT politely if still connected; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _open(self) -> smtplib.SMTP:
        c = self.config
        context = None
        if c.ssl or c.starttls:
            context = self.ssl_context or verified_context(c.ca_file, "smtp.ca_file")
        if c.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
        try:
            if c.starttls and not c.ssl:
                smtp.starttls(context=context)
            if c.user:
                smtp.login(c.user, c.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _live(self) -> tuple[smtplib.SMTP, bool]:
        """The open connection and whether it was just checked: used within the last ``NOOP_AFTER_IDLE``
        seconds it is taken as it is (a reply each costs no NOOP round trip; one found closed is reopened
        by ``_transact``), else asked with NOOP and reopened if the server closed it while we were idle."""
        if self._smtp is not None:
            if time.monotonic() - self._used_at < NOOP_AFTER_IDLE:
                return self._smtp, False
            try:
                if self._smtp.noop()[0] == 250:
                    self._used_at = time.monotonic()
                    return self._smtp, True
            except (smtplib.SMTPException, OSError):
                pass
            log.info("SMTP %s dropped the connection; reconnecting", self.where)
        self.connect()
        assert self._smtp is not None
        return self._smtp, True

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


class _Stale(Exception):
    """An unchecked connection found closed before the message began (``Mailer._attempt``)."""


def _closed(e: BaseException) -> bool:
    """Whether ``e`` says the connection was closed (not that the server refused something): dropped,
    reset, or a ``421`` closing the session."""
    if isinstance(e, smtplib.SMTPResponseException):
        return e.smtp_code == 421
    return isinstance(e, smtplib.SMTPServerDisconnected | ConnectionError)


class _DataStage:
    """Notes whether a transaction reached DATA (``smtplib`` does not say where a failure happened): the
    session's ``data`` method is wrapped for one send, then the class's own is used again."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp, self.entered = smtp, False
        original = smtp.data

        def data(content: bytes | str) -> tuple[int, bytes]:
            self.entered = True
            return original(content)

        smtp.data = data  # type: ignore[method-assign]

    def release(self) -> None:
        self.smtp.__dict__.pop("data", None)


def _send_error(what: str, e: Exception) -> SendError:
    """Classify an smtplib/socket error: 4xx and connection trouble are temporary, 5xx permanent."""
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        addr, (code, text) = next(iter(e.recipients.items()))
        return SendError(f"{what}: recipient {addr} refused: {code} {_text(text)}", _temporary(code), code)
    if isinstance(e, smtplib.SMTPAuthenticationError):
        # A wrong 授权码 refuses every reply alike: keep them queued until the config is fixed.
        return SendError(f"{what}: login refused: {e.smtp_code} {_text(e.smtp_error)}", True, e.smtp_code)
    if isinstance(e, smtplib.SMTPResponseException):
        return SendError(f"{what}: {e.smtp_code} {_text(e.smtp_error)}", _temporary(e.smtp_code), e.smtp_code)
    if tls := describe_tls_error(e, "smtp.ca_file"):
        return SendError(f"{what}: {tls}", temporary=True)
    return SendError(f"{what}: {type(e).__name__}: {e}", temporary=True)


def _temporary(code: int) -> bool:
    return not 500 <= code < 600


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
