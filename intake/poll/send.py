"""Stage 5: send the queued replies, at most ``smtp.max_replies_per_poll`` per poll.

Each reply: state ``sending`` → SMTP → a copy APPENDed to the Sent folder → state ``sent``. A temporary
refusal (or an SMTP server that cannot be reached) leaves it queued with a growing delay (1, 2, 4 … minutes,
at most two hours); a permanent refusal marks it ``failed`` for staff (``intake status``, the digest, an
alert). In a dry run nothing is sent: each reply that would go out is logged, and the throw-away store it
was queued in is discarded after the poll.
"""

from __future__ import annotations

import email
import email.policy
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from intake.errors import MailboxError, SendError
from intake.failpoints import failpoint
from intake.mailbox import Mailbox
from intake.mailer import Mailer
from intake.models import ReplyState
from intake.poll.context import PollContext
from intake.store import OutboxItem

log = logging.getLogger("intake")


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
    queued = [*ctx.store.outbox([ReplyState.QUEUED]),
              *ctx.store.notices([ReplyState.QUEUED])]  # notices to districts: 状态变更通知 and the like
    due = [i for i in queued if i.next_attempt_at is None or i.next_attempt_at <= now]
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
        for item in due:
            ok = _send_one(ctx, mailer, mb, item, now)
            sent, failed = sent + ok, failed + (not ok)
    finally:
        mailer.__exit__(None, None, None)
    return Sent(sent, failed)


def _send_one(ctx: PollContext, mailer: Mailer, mb: Mailbox, item: OutboxItem, now: datetime) -> bool:
    ctx.store.set_reply_state(item.id, ReplyState.SENDING, queue=item.queue)
    msg = email.message_from_bytes(item.rfc822, policy=email.policy.SMTP)
    try:
        mailer.send(msg)  # type: ignore[arg-type]
    except SendError as e:
        if e.temporary:
            _defer(ctx, item, str(e), now)
        else:
            ctx.store.set_reply_state(item.id, ReplyState.FAILED, error=str(e), count_attempt=True,
                                      queue=item.queue)
            log.error("reply %s to %s refused for good: %s", item.reply_message_id, item.to_addr, e)
        return False
    failpoint("after_smtp_send")
    _keep_sent_copy(ctx, mb, item.rfc822)
    failpoint("after_sent_copy")
    ctx.store.set_reply_state(item.id, ReplyState.SENT, count_attempt=True, queue=item.queue)
    return True


def _defer(ctx: PollContext, item: OutboxItem, error: str, now: datetime) -> None:
    attempts = item.attempts + 1
    ctx.store.set_reply_state(item.id, ReplyState.QUEUED, error=error, count_attempt=True,
                              next_attempt_at=now + retry_delay(attempts), queue=item.queue)
    log.warning("reply deferred (attempt %d): %s", attempts, error)


def _keep_sent_copy(ctx: PollContext, mb: Mailbox, raw: bytes) -> None:
    folder = ctx.cfg.mailbox.sent_folder
    if not folder:
        return
    try:
        mb.append(folder, raw)
    except MailboxError as e:
        log.warning("reply sent but no copy kept in %s: %s", folder, e)


def _subject(item: OutboxItem) -> str:
    msg = email.message_from_bytes(item.rfc822, policy=email.policy.default)
    return str(msg.get("Subject", ""))
