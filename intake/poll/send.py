"""Stage 5: send the queued replies, fairly and at a bounded rate.

Which go out this poll: the due ones (``next_attempt_at`` passed), taken round-robin by district (one
district's backlog of receipts never delays another's), without the ones whose address already had
``smtp.max_replies_per_sender_per_day`` replies today (they stay queued, are shown by ``intake status`` and
alerted to staff, and go out the next day), at most ``smtp.max_replies_per_poll`` in all.

The Sent folder is looked at once for all the replies about to go (``resolve.look_in_sent``). Each reply:
found there (or sent earlier in this stage with the same keys), it is stamped sent and not sent again →
state ``sending`` (committed) → SMTP, the stored bytes as they are → state ``sent`` (committed, noting that
its copy is on its way) → a copy APPENDed to the Sent folder (by ``CopyKeeper``'s thread, while the next
reply goes out) → the note cleared (or the APPEND's failure kept in its place). The only moment a kill can
make a reply go twice is between the server's acceptance and the ``sent`` commit (one SQLite write): the
reply is ``sending``, the Sent folder has no copy, and the next poll sends it again.

A temporary refusal (or an SMTP server that cannot be reached) leaves it queued with a growing delay (1, 2,
4 … minutes, at most two hours); a permanent refusal marks it ``failed`` for staff (``intake status``, the
digest, an alert); a connection lost after the message went out marks it ``unknown``, settled by the Sent
folder at the next poll (``resolve``), never sent again blindly. A Sent folder that cannot be searched fails
this step: the replies wait, queued (each with the reason), and new mail is recorded all the same. In a dry
run nothing is sent: each reply that would go out is logged, and the throw-away store it was queued in is
discarded after the poll.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import logging
import queue
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from intake.errors import MailboxError, SendError
from intake.failpoints import failpoint
from intake.mailbox import Mailbox
from intake.mailer import Mailer
from intake.models import ReplyState
from intake.poll.context import PollContext
from intake.poll.resolve import keys_of, look_in_sent
from intake.sentcopies import SentCopies
from intake.store import OutboxItem, Store

log = logging.getLogger("intake")


COPY_PENDING = "sent; its copy was being added to"  # then the folder: kept when the APPEND never finished


@dataclass(frozen=True)
class Sent:
    sent: int = 0
    failed: int = 0  # deferred or refused for good
    would_send: int = 0  # dry run


def retry_delay(attempts: int) -> timedelta:
    """Backoff for a temporarily refused reply: 1, 2, 4 … minutes, at most two hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


def send_queued(ctx: PollContext, mb: Mailbox) -> Sent:
    """Send the replies that are due; each outcome is stamped on its reply."""
    now = ctx.clock()
    due = round_robin([i for i in _queued(ctx.store) if i.next_attempt_at is None or i.next_attempt_at <= now])
    due, held = within_daily_limit(due, ctx.store, ctx.cfg.smtp.max_replies_per_sender_per_day, now,
                                   ctx.cfg.campaign.tz)
    for addr, count in Counter(i.to_addr.lower() for i in held).items():
        log.warning("%d replies to %s held: %d a day at most (smtp.max_replies_per_sender_per_day)", count, addr,
                    ctx.cfg.smtp.max_replies_per_sender_per_day)
    due = due[: ctx.cfg.smtp.max_replies_per_poll]
    if not due:
        return Sent()
    if ctx.dry_run:
        for item in due:
            log.info("dry run: would send %s to %s: %s", item.kind, item.to_addr, _subject(item))
        return Sent(would_send=len(due))
    try:
        mailer = ctx.mailer_factory(ctx.cfg.smtp).__enter__()
    except SendError as e:
        for item in due:
            _defer(ctx, item, str(e), now)
        return Sent(failed=len(due))
    sent = failed = 0
    try:
        copies = _look_in_sent(ctx, mb, due)
        keeper = CopyKeeper(ctx, mb)
        try:
            for item in due:
                ok = _send_one(ctx, mailer, keeper, copies, item, now)
                sent, failed = sent + ok, failed + (not ok)
                keeper.settle()
        finally:
            keeper.close()
    finally:
        mailer.__exit__(None, None, None)
    return Sent(sent, failed)


class CopyKeeper:
    """APPENDs the Sent copies of the replies sent in one stage, in order, on a thread of its own, while the
    next reply goes out over SMTP: the APPEND (an IMAP round trip and the server's disk write) is no longer
    waited for reply by reply. Each reply is stamped sent before its copy is handed over, so this changes
    nothing about what a kill can send twice. The mailbox connection is this thread's alone until ``close``
    (the send loop does not use it). Each APPEND's outcome is written to its reply's note by ``settle`` and
    ``close``, on the caller's thread (the store's connection stays on one thread)."""

    def __init__(self, ctx: PollContext, mb: Mailbox) -> None:
        self.ctx, self.mb = ctx, mb
        self.folder = ctx.cfg.mailbox.sent_folder
        self.todo: queue.Queue[tuple[OutboxItem, str] | None] = queue.Queue()
        self.done: queue.Queue[tuple[OutboxItem, str, str | None]] = queue.Queue()
        self.thread: threading.Thread | None = None

    def keep(self, item: OutboxItem, pending: str) -> None:
        """Hand over the copy of ``item``, stamped sent with the note ``pending``."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="sent-copies", daemon=True)
            self.thread.start()
        self.todo.put((item, pending))

    def _run(self) -> None:
        while (job := self.todo.get()) is not None:
            item, pending = job
            try:
                self.mb.append(self.folder, item.rfc822)
                note = None
            except Exception as e:  # noqa: BLE001 - whatever the APPEND raised, the reply was sent all the same
                log.warning("reply sent but no copy kept in %s: %s", self.folder, e)
                note = f"sent, but no copy kept in {self.folder}: {e}"
            self.done.put((item, pending, note))

    def settle(self) -> None:
        """Write the outcome of every APPEND finished so far to its reply. Called between two replies (no
        reply is then between its SMTP transaction and its stamp), which is where the crash tests stop the
        process once a copy is kept (failpoint ``after_sent_copy``): a failpoint on the thread would stop the
        send loop at a moment of its own, not one a test can name."""
        while True:
            try:
                item, pending, note = self.done.get_nowait()
            except queue.Empty:
                return
            failpoint("after_sent_copy")
            self.ctx.store.replace_reply_note(item.id, pending, note, queue=item.queue)

    def close(self) -> None:
        """Wait for the copies handed over, then settle them; the mailbox connection is the caller's again."""
        if self.thread is not None:
            self.todo.put(None)
            self.thread.join()
            self.thread = None
        self.settle()


def _look_in_sent(ctx: PollContext, mb: Mailbox, due: Sequence[OutboxItem]) -> SentCopies:
    """One look at the Sent folder for every reply about to go; when it cannot be searched, each stays
    queued with the reason and the step fails (status, an alert after an hour), retried at the next poll."""
    try:
        return look_in_sent(ctx, mb, due)
    except MailboxError as e:
        for item in due:
            ctx.store.set_reply_state(item.id, ReplyState.QUEUED, error=f"Sent folder not searched: {e}",
                                      queue=item.queue)
        raise


def round_robin(items: Sequence[OutboxItem]) -> list[OutboxItem]:
    """``items`` taken one district at a time in turn (oldest first within a district; districts in the order
    of their oldest item); an item without a district is grouped by its recipient."""
    groups: dict[str, list[OutboxItem]] = {}
    for item in items:
        groups.setdefault(item.district or item.to_addr.lower(), []).append(item)
    turns = itertools.zip_longest(*groups.values())
    return [item for turn in turns for item in turn if item is not None]


def within_daily_limit(
    items: Sequence[OutboxItem], store: Store, limit: int, now: datetime, tz: tzinfo
) -> tuple[list[OutboxItem], list[OutboxItem]]:
    """``items`` split into those that may go today and those held: an address gets at most ``limit`` replies
    per calendar day (in ``tz``), counting the ones sent since midnight and those whose outcome is open."""
    midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    used = Counter(store.replies_sent_since(midnight))
    allowed: list[OutboxItem] = []
    held: list[OutboxItem] = []
    for item in items:
        addr = item.to_addr.lower()
        if used[addr] >= limit:
            held.append(item)
            continue
        used[addr] += 1
        allowed.append(item)
    return allowed, held


def held_replies(store: Store, limit: int, now: datetime, tz: tzinfo) -> list[OutboxItem]:
    """The queued replies the daily limit per address holds back now (``intake status``, alerts)."""
    return within_daily_limit(round_robin(_queued(store)), store, limit, now, tz)[1]


def _queued(store: Store) -> list[OutboxItem]:
    """Every queued reply: the outbox (receipts, late notices) and the notices to districts (状态变更通知,
    结果通知, re-sends)."""
    return [*store.outbox([ReplyState.QUEUED]), *store.notices([ReplyState.QUEUED])]


def _send_one(ctx: PollContext, mailer: Mailer, keeper: CopyKeeper, copies: SentCopies, item: OutboxItem,
              now: datetime) -> bool:
    keys = keys_of(item)
    if copies.holds(keys):
        ctx.store.set_reply_state(item.id, ReplyState.SENT, queue=item.queue)
        log.warning("reply %s to %s is already in %s: stamped sent, not sent again", item.reply_message_id,
                    item.to_addr, ctx.cfg.mailbox.sent_folder)
        return True
    ctx.store.set_reply_state(item.id, ReplyState.SENDING, queue=item.queue)
    try:
        mailer.send_bytes(item.rfc822)
    except SendError as e:
        if e.unknown:
            ctx.store.set_reply_state(item.id, ReplyState.UNKNOWN, error=str(e), count_attempt=True,
                                      queue=item.queue)
            log.warning("reply %s to %s may have been delivered (%s): the Sent folder decides at the next poll",
                        item.reply_message_id, item.to_addr, e)
        elif e.temporary:
            _defer(ctx, item, str(e), now)
        else:
            ctx.store.set_reply_state(item.id, ReplyState.FAILED, error=str(e), count_attempt=True,
                                      queue=item.queue)
            log.error("reply %s to %s refused for good: %s", item.reply_message_id, item.to_addr, e)
        return False
    copies.add(keys)  # gone out: a later reply of this stage with the same keys is not sent again
    failpoint("after_smtp_send")
    # Stamped sent the moment the server took it, before the Sent copy: a kill during the APPEND (an IMAP
    # round trip, the disk write of the server) then leaves a reply known to be sent, not one sent again.
    folder = ctx.cfg.mailbox.sent_folder
    pending = f"{COPY_PENDING} {folder}" if folder else None
    ctx.store.set_reply_state(item.id, ReplyState.SENT, error=pending, count_attempt=True, queue=item.queue)
    failpoint("after_sent_stamp")
    if pending:
        keeper.keep(item, pending)
    return True


def _defer(ctx: PollContext, item: OutboxItem, error: str, now: datetime) -> None:
    attempts = item.attempts + 1
    ctx.store.set_reply_state(item.id, ReplyState.QUEUED, error=error, count_attempt=True,
                              next_attempt_at=now + retry_delay(attempts), queue=item.queue)
    log.warning("reply deferred (attempt %d): %s", attempts, error)


def _subject(item: OutboxItem) -> str:
    msg = email.message_from_bytes(item.rfc822, policy=email.policy.default)
    return str(msg.get("Subject", ""))
