"""Stage 2: decide everything about one message and record it, with a note of the reply it is owed.

The attempt is counted before the message is read, so a message whose file kills the process (a parser
bomb, an out-of-memory kill) still counts: after ``MAX_ATTEMPTS`` attempts without an outcome it is recorded
as ``error`` without being read again, and the mail after it is processed. An ordinary exception is counted
the same way. Replies are not rendered here (see ``reply``): a template mistake never costs the message.

Documents are read behind one seam, ``read_documents``: the place a process pool with limits plugs in.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from intake.classify import PARSED, REPLIES, classify, message_findings
from intake.errors import MailboxError
from intake.failpoints import failpoint
from intake.mailbox import FetchedMessage, MessageMeta
from intake.models import Code, Finding, NewAttachment, NewMessage, Outcome, ReplyKind, StoredMessage
from intake.parsepool import ParserPool, read_document
from intake.poll import fetch
from intake.poll.context import PollContext
from parsers.auth import authentication_failures, results_headers
from parsers.mail import oversize_reason, parse_mail, parts_from_headers
from parsers.types import DocKind, MailParts

log = logging.getLogger("intake")

MAX_ATTEMPTS = 3  # a message failing this many attempts is recorded as `error`
ARCHIVE_TYPES = {"zip", "rar", "7z"}


@dataclass(frozen=True)
class Recorded:
    """What became of one fetched message: an outcome, re-attached (``None``), or left for the next poll."""

    outcome: Outcome | None
    retry_later: bool = False


def record_one(ctx: PollContext, fetched: FetchedMessage, folder: str, validity: int) -> Recorded:
    """Record one fetched message; a failure is counted and, at the third attempt, recorded as ``error``."""
    uid = fetched.uid
    meta = MessageMeta(uid, fetched.internaldate, fetched.size)
    tried, last_error = ctx.store.attempts(folder, validity, uid)
    if tried >= MAX_ATTEMPTS:
        record_error(ctx, meta, folder, validity, f"gave up after {tried} attempts: {last_error}", fetched.raw,
                     headers_only=True)
        return Recorded(Outcome.ERROR)
    attempt = ctx.store.note_attempt(folder, validity, uid)
    try:
        stored = record_message(ctx, fetched, validity, folder=folder)
    except MailboxError:
        raise
    except Exception as e:  # noqa: BLE001 - one broken message must not stop the poll
        reason = f"{type(e).__name__}: {e}"
        ctx.store.note_attempt_error(folder, validity, uid, reason)
        log.error("%s uid=%s failed (attempt %d/%d): %s\n%s", folder, uid, attempt, MAX_ATTEMPTS, reason,
                  traceback.format_exc(limit=5))
        if attempt >= MAX_ATTEMPTS:
            record_error(ctx, meta, folder, validity, reason, fetched.raw)
            return Recorded(Outcome.ERROR)
        return Recorded(None, retry_later=True)
    if stored is None:
        return Recorded(None)
    log.info("%s uid=%s from=%s district=%s outcome=%s files=%d findings=%s", folder, stored.uid, stored.sender,
             stored.district or "-", stored.outcome, len(stored.attachments),
             ",".join(f.code for f in stored.findings) or "-")
    return Recorded(stored.outcome)


def record_message(
    ctx: PollContext, fetched: FetchedMessage, validity: int, *, folder: str, source: str = "imap",
    reply: bool = True,
) -> StoredMessage | None:
    """Decide everything about one message and record it (with the note of its owed reply) in one transaction.

    ``None`` when it is a message already recorded that the server renumbered (re-attached instead).
    """
    parts = read_parts(fetched)
    digest, raw_path = ctx.archive.put(fetched.raw, "eml")
    earlier = ctx.store.find_earlier(parts.message_id, digest)
    if earlier is not None and earlier["folder"] == folder and earlier["uidvalidity"] != validity:
        ctx.store.remap(earlier["id"], validity, fetched.uid)  # same mail, renumbered by the server
        return None
    new = decide(ctx, fetched, parts, (digest, raw_path), validity, folder=folder, source=source,
                 seen_before=earlier is not None)
    with ctx.store.transaction():
        db_id = ctx.store.insert_message(new)
        kind = reply_kind(new.outcome)
        if reply and kind is not None:
            ctx.store.insert_reply_due(db_id, kind)
    failpoint("after_record")
    return ctx.store.messages([db_id])[0]


def read_parts(fetched: FetchedMessage) -> MailParts:
    """The message taken apart; one over the size limit was fetched as its header block alone."""
    if fetched.size > fetch.MAX_MESSAGE_BYTES:
        return parts_from_headers(fetched.raw, oversize_reason(fetched.size, fetch.MAX_MESSAGE_BYTES))
    return parse_mail(fetched.raw)


def decide(
    ctx: PollContext, fetched: FetchedMessage, parts: MailParts, archived: tuple[str, str], validity: int, *,
    folder: str, source: str, seen_before: bool,
) -> NewMessage:
    """Everything about one message, nothing written yet: its district (unless its From failed the receiving
    server's SPF/DKIM check under ``mailbox.require_authenticated``), outcome, files and findings."""
    district = ctx.cfg.district_for(parts.from_addr)
    forged = unauthenticated(ctx.cfg.mailbox.require_authenticated, fetched.raw, parts.from_addr) if district else None
    if forged is not None:
        district = None
        log.warning("uid=%s from %s fails authentication (%s): recorded as unknown_sender", fetched.uid,
                    parts.from_addr, forged.message)
    campaign = ctx.cfg.campaign
    outcome = classify(parts, district.name if district else None, fetched.internaldate, campaign.deadline,
                       seen_before)
    attachments = _attachments(ctx, parts, outcome, ahead_tag(folder, validity, fetched.uid))
    arrival_text = fetched.internaldate.astimezone(campaign.tz).strftime("%Y-%m-%d %H:%M:%S")
    findings = message_findings(outcome, parts, attachments, arrival_text, campaign=campaign)
    return NewMessage(
        folder=folder, uidvalidity=validity, uid=fetched.uid, message_id=parts.message_id,
        raw_sha256=archived[0], raw_path=archived[1], size=max(fetched.size, len(fetched.raw)),
        sender=parts.from_addr, sender_name=parts.from_name, district=district.name if district else None,
        subject=parts.subject, arrival=fetched.internaldate, outcome=outcome,
        findings=(forged, *findings) if forged is not None and outcome is Outcome.UNKNOWN_SENDER else findings,
        attachments=tuple(attachments), auto_reasons=parts.auto_reasons, source=source,
    )


def unauthenticated(required: bool, raw: bytes, sender: str) -> Finding | None:
    """``UNAUTHENTICATED_SENDER`` when authentication is required and the receiving server's
    ``Authentication-Results`` show SPF or DKIM failing for the From address."""
    if not required:
        return None
    failures = authentication_failures(results_headers(raw), sender)
    if not failures:
        return None
    what = "、".join(f.describe() for f in failures)
    return Finding.of(Code.UNAUTHENTICATED_SENDER,
                      f"发件人地址 {sender} 未通过收件服务器的发件认证（{what}），可能被冒用；"
                      "本邮件按非区县来件登记，未纳入台账、未回复，请工作人员与该区县核实。")


def reply_kind(outcome: Outcome) -> ReplyKind | None:
    """The reply a message of this outcome is owed: a receipt, a late notice, or none."""
    if outcome not in REPLIES:
        return None
    return ReplyKind.RECEIPT if outcome is Outcome.PROCESSED else ReplyKind.LATE


def record_error(
    ctx: PollContext, meta: MessageMeta, folder: str, validity: int, reason: str, raw: bytes = b"",
    *, headers_only: bool = False,
) -> None:
    """Record a message that could not be processed, so it is never retried forever."""
    digest, raw_path = "", ""
    if raw:
        try:
            digest, raw_path = ctx.archive.put(raw, "eml")
        except OSError as e:  # the error being recorded may be this very failure
            log.error("uid=%s: original not archived: %s", meta.uid, e)
    sender, name, subject, message_id = _headers(raw) if headers_only else _described(raw)
    new = NewMessage(
        folder=folder, uidvalidity=validity, uid=meta.uid, message_id=message_id, raw_sha256=digest,
        raw_path=raw_path, size=meta.size, sender=sender, sender_name=name, district=None, subject=subject,
        arrival=meta.internaldate, outcome=Outcome.ERROR, error=reason,
    )
    with ctx.store.transaction():
        ctx.store.insert_message(new)
    log.error("%s uid=%s recorded as error: %s", folder, meta.uid, reason)


def ahead_tag(folder: str, validity: int, uid: int) -> tuple[str, int, int]:
    """What names a fetched message read ahead in the parser pool (``cycle._read_ahead``)."""
    return folder, validity, uid


def read_documents(files: Sequence[tuple[bytes, str, str]], pool: ParserPool | None = None,
                   tag: Any = None) -> list[dict[str, Any]]:
    """What the parsers make of each ``(data, filename, sniffed type)``, as attachment columns. Never raises.

    The one seam for document reading: with ``pool`` (a poll's), each file is read in a child process with
    memory and time limits, so a bomb is ``UNREADABLE_FILE`` for that file (intake/parsepool.py); without,
    in this process. ``tag``: the message, when the pool may have read it ahead.
    """
    if files:
        failpoint("reading_documents")  # tests: a parser that kills the process
    if pool is not None:
        return pool.read_many(files, tag=tag)
    return [read_document(data, filename, sniffed) for data, filename, sniffed in files]


def _attachments(ctx: PollContext, parts: MailParts, outcome: Outcome, tag: Any = None) -> list[NewAttachment]:
    """Archive every attachment; read the documents of mail whose files matter."""
    problems = {p.filename: p for p in parts.problems if p.filename}
    rows: list[dict[str, Any]] = []
    to_read: list[int] = []
    for att in parts.attachments:
        digest, path = ctx.archive.put(att.data, att.sniffed)
        row: dict[str, Any] = dict(filename=att.filename, content_type=att.content_type, sniffed=att.sniffed,
                                   sha256=digest, size=len(att.data), path=path, container=att.container)
        problem = problems.get(att.filename)
        if problem is not None:
            row.update(kind="error", error_code=problem.code, error_reason=problem.reason)
        elif att.sniffed in ARCHIVE_TYPES and att.container is None:
            row.update(kind=DocKind.ARCHIVE)
        elif outcome in PARSED:
            to_read.append(len(rows))
        else:
            row.update(kind=DocKind.UNRECOGNIZED)
        rows.append(row)
    files = [(parts.attachments[i].data, parts.attachments[i].filename, parts.attachments[i].sniffed)
             for i in to_read]
    for i, columns in zip(to_read, read_documents(files, ctx.parsers, tag), strict=True):
        rows[i].update(columns)
    return [NewAttachment(**row) for row in rows]


def _described(raw: bytes) -> tuple[str, str, str, str | None]:
    """Sender address, name, subject and Message-ID of a message already failing, as far as they parse."""
    try:
        parts = parse_mail(raw) if raw else None
    except Exception:  # noqa: BLE001 - only used to describe a message already failing
        parts = None
    if parts is None:
        return _headers(raw)
    return parts.from_addr, parts.from_name, parts.subject, parts.message_id


def _headers(raw: bytes) -> tuple[str, str, str, str | None]:
    """The same from the header block alone (the body is never parsed: it may be what kills the reader)."""
    if not raw:
        return "", "", "", None
    try:
        head = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw[:256 * 1024])
        sender = head.get("From")
        addresses = getattr(sender, "addresses", ()) if sender is not None else ()
        addr = addresses[0] if addresses else None
        return (addr.addr_spec.lower() if addr else "", addr.display_name if addr else "",
                str(head.get("Subject", "")), str(head.get("Message-ID", "")).strip() or None)
    except Exception:  # noqa: BLE001 - a header block too broken to read: record it undescribed
        return "", "", "", None
