"""The poll cycle: mailbox → message → attachments → documents → findings → ledger → replies → flags.

Decide, record, then act. Each message is recorded in one transaction with
the reply it is owed; replies are sent afterwards and stamped; the mailbox is
flagged and moved last; the workbook is rewritten from the store at the end.
A crash anywhere leaves work the next poll completes without repeating any.

An idle poll (nothing new, no reply or flag changed) costs the same whatever
the mailbox holds: the recorded messages are read only when a new one needs
a reply rendered, and ``ledger.xlsx`` is rewritten only when the store's
revision (bumped by triggers on every change the ledger shows) or the config
differs from the last write. The digest page is rewritten then too, and at the
first poll of each hour so its countdown to the deadline stays current.

Replies: outbox row (with the outcome) → state ``sending`` → SMTP → copy
APPENDed to the Sent folder → state ``sent``. A reply found ``sending`` at the
next poll is looked up in the Sent folder by its own Message-ID; found means
sent. The window that remains is between the SMTP server's acceptance and the
end of the APPEND (one IMAP command): a crash exactly there sends the reply a
second time, which the district sees as the same receipt twice.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

import intake
from intake.archive import Archive
from intake.changes import queue_update_notices
from intake.classify import PARSED, REPLIES, classify, message_findings
from intake.config import Config, MailboxConfig, SmtpConfig
from intake.errors import MailboxError, SendError
from intake.failpoints import failpoint
from intake.mailbox import FetchedMessage, Mailbox, MessageMeta
from intake.mailer import Mailer, build_reply
from intake.merge import build_ledger, district_view
from intake.models import Ledger, Outcome, ReplyKind, ReplyState, StoredMessage
from intake.parsepool import ParserPool, read_document
from intake.staff import DIGEST_FILE, digest_html, send_digest_if_due
from intake.store import NewAttachment, NewMessage, OutboxItem, Store, now_utc
from parsers.mail import oversize_reason, parse_mail, parts_from_headers
from parsers.types import DocKind, MailParts
from reports.digest import write_digest
from reports.ledger import write_ledger
from reports.replies import render_reply

log = logging.getLogger("intake")

MAX_ATTEMPTS = 3  # a message failing this many polls in a row is recorded as `error`
MAX_MESSAGE_BYTES = 80 * 1024 * 1024  # 163's own limit is 50 MB for ordinary attachments
ARCHIVE_TYPES = {"zip", "rar", "7z"}
OUTPUTS_KEY = "outputs_written"  # meta: what ledger.xlsx and digest.html were last written from (see _outputs_key)


@dataclass
class PollSummary:
    """What one poll did; logged as one line and stored with the poll."""

    new: int = 0
    fetched: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    remapped: int = 0
    retried_later: int = 0
    sent: int = 0
    send_failed: int = 0
    queued: int = 0
    moved: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outcomes": dict(self.outcomes)}

    def line(self) -> str:
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())) or "none"
        return (
            f"poll done in {self.seconds:.1f}s: new={self.new} fetched={self.fetched} [{outcomes}] "
            f"replies sent={self.sent} queued={self.queued} failed={self.send_failed} "
            f"flagged={self.moved}{' (dry run)' if self.dry_run else ''}"
        )


def retry_delay(attempts: int) -> timedelta:
    """Backoff for a temporarily refused reply: 1, 2, 4 … minutes, at most two hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


class Worker:
    """Runs poll cycles for one config. The clock and the I/O edges are passed in."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        dry_run: bool = False,
        clock: Callable[[], datetime] = now_utc,
        mailbox_factory: Callable[[MailboxConfig], Mailbox] = Mailbox,
        mailer_factory: Callable[[SmtpConfig], Mailer] = Mailer,
    ) -> None:
        self.cfg = config
        self.store = store
        self.archive = Archive(config.paths.data_dir)
        if removed := self.archive.remove_stale_temp():
            log.info("removed %d temporary files left by an interrupted writer", removed)
        self.dry_run = dry_run
        self.clock = clock
        self.mailbox_factory = mailbox_factory
        self.mailer_factory = mailer_factory
        self._messages: list[StoredMessage] | None = None  # read from the store when first needed
        # Documents are read in child processes (started when first needed, stopped at the end of each poll).
        self.parsers = ParserPool(memory_mb=config.parsing.child_memory_mb,
                                  timeout=config.parsing.file_timeout_seconds)
        # What of the config the ledger and digest are a function of (the config never changes under a worker).
        shape = repr((intake.__version__, config.campaign, config.rules, config.districts, config.paths))
        self._config_hash = hashlib.sha256(shape.encode()).hexdigest()[:16]

    # -- the cycle --------------------------------------------------------
    def poll(self) -> PollSummary:
        """One cycle. Raises ``MailboxError`` when the mailbox cannot be used."""
        started = time.monotonic()
        summary = PollSummary(dry_run=self.dry_run)
        poll_id = self.store.start_poll(self.dry_run)
        try:
            self.load()
            with self.mailbox_factory(self.cfg.mailbox) as mb:
                if not self.dry_run:
                    self._resolve_unstamped(mb)
                    summary.moved += self._finish_mailbox_actions(mb)
                self._intake(mb, summary)
                self._queue_update_notices()
                if not self.dry_run:
                    self._send_replies(mb, summary)
                    summary.moved += self._finish_mailbox_actions(mb)
                summary.fetched = mb.bodies_fetched
            html = self.refresh_outputs()
            if not self.dry_run:
                self._mail_digest(html)
        except Exception as e:
            summary.seconds = time.monotonic() - started
            self.store.finish_poll(poll_id, False, summary.as_dict(), f"{type(e).__name__}: {e}")
            raise
        finally:
            self.parsers.close()
        summary.queued = self.store.reply_counts().get(ReplyState.QUEUED, 0)
        summary.seconds = time.monotonic() - started
        self.store.finish_poll(poll_id, True, summary.as_dict())
        log.info(summary.line())
        return summary

    def load(self) -> None:
        """Forget the recorded messages read so far; they are read again when first needed."""
        self._messages = None

    def _known(self) -> list[StoredMessage]:
        """The recorded messages (read once per poll, then kept current by ``record``)."""
        if self._messages is None:
            self._messages = self.store.messages()
        return self._messages

    def ledger(self) -> Ledger:
        return build_ledger(self._known(), self.cfg)

    def write_ledger(self) -> str:
        """Rewrite ``ledger.xlsx`` and the staff digest beside it from the store (each atomically).

        Returns the digest page, which ``poll`` may also mail to staff.
        """
        revision = self.store.revision()  # read first: a change made while writing forces the next write
        messages, replies = self.store.messages(), self.store.replies()
        ledger = build_ledger(messages, self.cfg)
        data_dir = self.cfg.paths.data_dir
        write_ledger(data_dir / "ledger.xlsx", ledger, messages, replies, self.cfg.campaign.tz, data_dir=data_dir)
        now = self.clock()
        html = digest_html(self.cfg, ledger, messages, replies, now)
        write_digest(data_dir / DIGEST_FILE, html)
        self.store.set_meta(OUTPUTS_KEY, self._outputs_key(revision, now))
        return html

    def refresh_outputs(self) -> str | None:
        """``write_ledger`` when the store or config changed since the last write, a file is missing, or
        the digest's hour is over; returns the digest page when it was rewritten, else ``None``."""
        data_dir = self.cfg.paths.data_dir
        current = (
            self.store.get_meta(OUTPUTS_KEY) == self._outputs_key(self.store.revision(), self.clock())
            and (data_dir / "ledger.xlsx").is_file() and (data_dir / DIGEST_FILE).is_file()
        )
        return None if current else self.write_ledger()

    def _outputs_key(self, revision: int, now: datetime) -> str:
        """What the ledger is a function of (the store's revision, the config, the code's version), and the
        digest too (the local hour for its countdown, whether the deadline has passed)."""
        local = now.astimezone(self.cfg.campaign.tz)
        return f"{revision}:{self._config_hash}:{local:%Y-%m-%d %H}:{now > self.cfg.campaign.deadline}"

    def _mail_digest(self, html: str | None) -> None:
        """The daily staff digest, when configured and due; a failure here never fails the poll."""
        try:
            send_digest_if_due(self.cfg, self.store, html if html is not None else self.write_ledger,
                               self.clock(), self.mailer_factory)
        except (SendError, ValueError) as e:
            log.warning("staff digest not sent: %s", e)

    def _queue_update_notices(self) -> None:
        """状态变更通知 owed for the messages recorded since the last check (``intake.changes``). A failure
        (an edited template with an error) is logged and the check left to the next poll; replies still go."""
        try:
            queue_update_notices(self.store, self.cfg, self._known, now=self.clock(), dry_run=self.dry_run)
        except Exception:  # the receipts already queued must still be sent
            log.exception("状态变更通知 not queued this poll; checked again at the next")

    # -- intake -----------------------------------------------------------
    def _intake(self, mb: Mailbox, summary: PollSummary) -> None:
        folder, validity = self.cfg.mailbox.folder, mb.uidvalidity
        start = self.store.search_start(folder, validity)
        candidates = mb.uids_from(start)
        known = self.store.known_uids(folder, validity, candidates)
        todo = [u for u in candidates if u not in known]
        if todo and self._uidvalidity_changed(folder, validity):
            todo = self._remap_by_message_id(mb, todo, summary)
        summary.new = len(todo)
        if not todo:
            return
        metas = mb.meta(todo)
        small = [m for m in metas if m.size <= MAX_MESSAGE_BYTES]
        big = [m for m in metas if m.size > MAX_MESSAGE_BYTES]
        heads = mb.headers([m.uid for m in big]) if big else {}
        for meta in big:  # recorded from its header block alone: the district is known and told (see record)
            self._handle(FetchedMessage(meta.uid, meta.internaldate, meta.size, heads.get(meta.uid, b"")), validity,
                         summary)
        for fetched in mb.fetch(small):
            self._handle(fetched, validity, summary)

    def _uidvalidity_changed(self, folder: str, validity: int) -> bool:
        known = self.store.known_uidvalidities(folder)
        return bool(known) and validity not in known

    def _remap_by_message_id(self, mb: Mailbox, uids: list[int], summary: PollSummary) -> list[int]:
        """After a UIDVALIDITY change, re-attach known messages by Message-ID instead of redoing them."""
        ids = mb.message_ids(uids)
        rest = []
        for uid in uids:
            earlier = self.store.find_earlier(ids[uid], "") if uid in ids else None
            if earlier is not None and earlier["folder"] == self.cfg.mailbox.folder:
                self.store.remap(earlier["id"], mb.uidvalidity, uid)
                summary.remapped += 1
            else:
                rest.append(uid)
        log.warning("UIDVALIDITY changed to %s: %d messages re-attached by Message-ID", mb.uidvalidity,
                    summary.remapped)
        return rest

    def _handle(self, fetched: FetchedMessage, validity: int, summary: PollSummary) -> None:
        """Record one message; a failure is counted and, at the third poll in a row, recorded as error."""
        try:
            stored = self.record(fetched, validity)
        except MailboxError:
            raise
        except Exception as e:  # noqa: BLE001 - one broken message must not stop the poll
            reason = f"{type(e).__name__}: {e}"
            attempts = self.store.note_failure(self.cfg.mailbox.folder, validity, fetched.uid, reason)
            log.error("uid=%s failed (attempt %d/%d): %s\n%s", fetched.uid, attempts, MAX_ATTEMPTS, reason,
                      traceback.format_exc(limit=5))
            if attempts >= MAX_ATTEMPTS:
                meta = MessageMeta(fetched.uid, fetched.internaldate, fetched.size)
                self._record_error(meta, validity, reason, summary, fetched.raw)
            else:
                summary.retried_later += 1
            return
        if stored is not None:
            summary.outcomes[stored.outcome] += 1
            log.info("uid=%s from=%s district=%s outcome=%s files=%d findings=%s", stored.uid, stored.sender,
                     stored.district or "-", stored.outcome, len(stored.attachments),
                     ",".join(f.code for f in stored.findings) or "-")

    def record(
        self, fetched: FetchedMessage, validity: int, *, source: str = "imap", folder: str | None = None,
        reply: bool = True,
    ) -> StoredMessage | None:
        """Decide everything about one message and record it with its reply in one transaction.

        A message over ``MAX_MESSAGE_BYTES`` comes as its header block alone (``fetched.size`` is the whole
        message's): it is recorded by its sender with one message-level UNREADABLE_FILE saying it was too big.
        """
        oversize = fetched.size > MAX_MESSAGE_BYTES
        parts = (parts_from_headers(fetched.raw, oversize_reason(fetched.size, MAX_MESSAGE_BYTES)) if oversize
                 else parse_mail(fetched.raw))
        digest, raw_path = self.archive.put(fetched.raw, "eml")
        earlier = self.store.find_earlier(parts.message_id, digest)
        folder = folder or self.cfg.mailbox.folder
        if earlier is not None and earlier["folder"] == folder and earlier["uidvalidity"] != validity:
            self.store.remap(earlier["id"], validity, fetched.uid)  # same mail, renumbered by the server
            return None
        district = self.cfg.district_for(parts.from_addr)
        outcome = classify(parts, district.name if district else None, fetched.internaldate,
                           self.cfg.campaign.deadline, earlier is not None)
        attachments = self._attachments(parts, outcome)
        known = self._known()  # read before this message's transaction, so it is not in the list twice
        arrival_text = fetched.internaldate.astimezone(self.cfg.campaign.tz).strftime("%Y-%m-%d %H:%M:%S")
        new = NewMessage(
            folder=folder, uidvalidity=validity, uid=fetched.uid,
            message_id=parts.message_id,
            raw_sha256=digest, raw_path=raw_path, size=max(fetched.size, len(fetched.raw)), sender=parts.from_addr,
            sender_name=parts.from_name, district=district.name if district else None, subject=parts.subject,
            arrival=fetched.internaldate, outcome=outcome,
            findings=message_findings(outcome, parts, attachments, arrival_text, campaign=self.cfg.campaign),
            attachments=tuple(attachments), auto_reasons=parts.auto_reasons, source=source,
        )
        with self.store.transaction():
            db_id = self.store.insert_message(new)
            stored = self.store.messages([db_id])[0]
            if reply and outcome in REPLIES:
                self._queue_reply(stored, known)
        failpoint("after_record")
        known.append(stored)
        return stored

    def _record_error(
        self, meta: MessageMeta, validity: int, reason: str, summary: PollSummary, raw: bytes = b""
    ) -> None:
        """Record a message that could not be processed, so it is never retried forever."""
        digest, raw_path = "", ""
        if raw:
            try:
                digest, raw_path = self.archive.put(raw, "eml")
            except OSError as e:  # the error being recorded may be this very failure
                log.error("uid=%s: original not archived: %s", meta.uid, e)
        parts = _safe_parse(raw)
        new = NewMessage(
            folder=self.cfg.mailbox.folder, uidvalidity=validity, uid=meta.uid,
            message_id=parts.message_id if parts else None, raw_sha256=digest, raw_path=raw_path,
            size=meta.size, sender=parts.from_addr if parts else "", sender_name=parts.from_name if parts else "",
            district=None, subject=parts.subject if parts else "", arrival=meta.internaldate,
            outcome=Outcome.ERROR, error=reason,
        )
        with self.store.transaction():
            self.store.insert_message(new)
        summary.outcomes[Outcome.ERROR] += 1
        log.error("uid=%s recorded as error: %s", meta.uid, reason)

    def _attachments(self, parts: MailParts, outcome: Outcome) -> list[NewAttachment]:
        """Archive every attachment; read the documents of mail whose files matter (in the parser pool)."""
        problems = {p.filename: p for p in parts.problems if p.filename}
        out: list[NewAttachment | dict[str, Any]] = []
        to_read: list[tuple[bytes, str, str]] = []
        for att in parts.attachments:
            digest, path = self.archive.put(att.data, att.sniffed)
            base = dict(filename=att.filename, content_type=att.content_type, sniffed=att.sniffed,
                        sha256=digest, size=len(att.data), path=path, container=att.container)
            problem = problems.get(att.filename)
            if problem is not None:
                out.append(NewAttachment(**base, kind="error", error_code=problem.code,
                                         error_reason=problem.reason))
            elif att.sniffed in ARCHIVE_TYPES and att.container is None:
                out.append(NewAttachment(**base, kind=DocKind.ARCHIVE))
            elif outcome in PARSED:
                out.append(base)  # read below, with the message's other documents, two at a time
                to_read.append((att.data, att.filename, att.sniffed))
            else:
                out.append(NewAttachment(**base, kind=DocKind.UNRECOGNIZED))
        results = iter(self.parsers.read_many(to_read))
        return [a if isinstance(a, NewAttachment) else NewAttachment(**a, **next(results)) for a in out]

    # -- replies ----------------------------------------------------------
    def _queue_reply(self, stored: StoredMessage, known: list[StoredMessage]) -> None:
        """Render the reply against the state after this message and queue it (same transaction)."""
        kind = ReplyKind.RECEIPT if stored.outcome is Outcome.PROCESSED else ReplyKind.LATE
        ledger = build_ledger([*known, stored], self.cfg)
        projects = district_view(ledger, stored.district or "")
        unmatched = [u.filename for u in ledger.unmatched_forms
                     if u.district == stored.district and u.uid == stored.uid]
        rendered = render_reply(
            kind, stored, projects, unmatched, campaign=self.cfg.campaign.name,
            deadline=self.cfg.campaign.deadline, tz=self.cfg.campaign.tz,
            templates_dir=self.cfg.paths.templates_dir, contact=self.cfg.campaign.contact,
            paper_address=self.cfg.campaign.paper_address, now=self.clock(),
        )
        domain = parseaddr(self.cfg.smtp.sender)[1].rpartition("@")[2] or "localhost"
        msg, reply_id = build_reply(
            sender=self.cfg.smtp.sender, to=stored.sender, subject=rendered.subject, text=rendered.text,
            html=rendered.html, in_reply_to=stored.message_id, kind=kind.value, domain=domain, date=self.clock(),
        )
        state = ReplyState.DRY_RUN if self.dry_run else ReplyState.QUEUED
        self.store.insert_reply(stored.id, kind, stored.sender, reply_id, msg.as_bytes(), state)

    def _send_replies(self, mb: Mailbox, summary: PollSummary) -> None:
        """Send queued replies (rate-limited), stamp each, keep a copy in the Sent folder."""
        now = self.clock()
        queued = [*self.store.outbox([ReplyState.QUEUED, ReplyState.DRY_RUN]),
                  *self.store.notices([ReplyState.QUEUED])]  # staff notices: 结果通知, 状态变更通知, 补发
        due = [i for i in queued if i.next_attempt_at is None or i.next_attempt_at <= now]
        due = due[: self.cfg.smtp.max_replies_per_poll]
        if not due:
            return
        try:
            mailer = self.mailer_factory(self.cfg.smtp).__enter__()
        except SendError as e:
            for item in due:
                self._defer(item, str(e), now, summary)
            return
        try:
            for item in due:
                self._send_one(mailer, mb, item, now, summary)
        finally:
            mailer.__exit__(None, None, None)

    def _send_one(self, mailer: Mailer, mb: Mailbox, item: OutboxItem, now: datetime, summary: PollSummary) -> None:
        self.store.set_reply_state(item.id, ReplyState.SENDING, queue=item.queue)
        msg = email.message_from_bytes(item.rfc822, policy=email.policy.SMTP)
        try:
            mailer.send(msg)  # type: ignore[arg-type]
        except SendError as e:
            if e.temporary:
                self._defer(item, str(e), now, summary)
            else:
                self.store.set_reply_state(item.id, ReplyState.FAILED, error=str(e), count_attempt=True,
                                           queue=item.queue)
                summary.send_failed += 1
                log.error("reply %s to %s refused for good: %s", item.reply_message_id, item.to_addr, e)
            return
        failpoint("after_smtp_send")
        self._keep_sent_copy(mb, item.rfc822)
        failpoint("after_sent_copy")
        self.store.set_reply_state(item.id, ReplyState.SENT, count_attempt=True, queue=item.queue)
        summary.sent += 1

    def _defer(self, item: OutboxItem, error: str, now: datetime, summary: PollSummary) -> None:
        attempts = item.attempts + 1
        self.store.set_reply_state(item.id, ReplyState.QUEUED, error=error, count_attempt=True,
                                   next_attempt_at=now + retry_delay(attempts), queue=item.queue)
        summary.send_failed += 1
        log.warning("reply deferred (attempt %d): %s", attempts, error)

    def _keep_sent_copy(self, mb: Mailbox, raw: bytes) -> None:
        if not self.cfg.mailbox.sent_folder:
            return
        try:
            mb.append(self.cfg.mailbox.sent_folder, raw)
        except MailboxError as e:
            log.warning("reply sent but no copy kept in %s: %s", self.cfg.mailbox.sent_folder, e)

    def _resolve_unstamped(self, mb: Mailbox) -> None:
        """Replies left ``sending`` by a crash: sent if the Sent folder has them, else queued again."""
        for item in [*self.store.outbox([ReplyState.SENDING]), *self.store.notices([ReplyState.SENDING])]:
            folder = self.cfg.mailbox.sent_folder
            if folder and mb.contains_message_id(folder, item.reply_message_id):
                self.store.set_reply_state(item.id, ReplyState.SENT, queue=item.queue)
                log.info("reply %s found in %s after a crash: stamped sent", item.reply_message_id, folder)
            else:
                self.store.set_reply_state(item.id, ReplyState.QUEUED, queue=item.queue)
                log.warning("reply %s interrupted before it was proven sent: queued again",
                            item.reply_message_id)

    # -- mailbox ----------------------------------------------------------
    def _finish_mailbox_actions(self, mb: Mailbox) -> int:
        """Flag (and move) every recorded message whose outcome is committed but not yet acted on."""
        pending = self.store.pending_mailbox_actions(self.cfg.mailbox.folder, mb.uidvalidity)
        if not pending:
            return 0
        present = set(mb.uids_from(min(p.uid for p in pending)))
        uids = [p.uid for p in pending if p.uid in present]
        mb.mark_processed(uids, self.cfg.mailbox.processed_folder)
        self.store.mark_mailbox_done([p.message_db_id for p in pending])
        return len(uids)


def _read_document(data: bytes, filename: str, sniffed: str) -> dict[str, Any]:
    """What the parsers make of one file, in this process (the worker itself reads through ``self.parsers``)."""
    return read_document(data, filename, sniffed)


def _safe_parse(raw: bytes) -> MailParts | None:
    try:
        return parse_mail(raw) if raw else None
    except Exception:  # noqa: BLE001 - only used to describe a message already failing
        return None


