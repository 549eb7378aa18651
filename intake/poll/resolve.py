"""Stage 4: replies whose sending was interrupted, settled by the Sent folder before anything new is sent.

A reply is marked ``sending`` before the SMTP transaction and ``sent`` after its copy is in the Sent folder;
it is marked ``unknown`` when the connection was lost after the message went out (a timeout waiting for the
answer to DATA), so the server may have taken it. Found ``sending`` or ``unknown`` at the start of a poll, it
is looked up in ``mailbox.sent_folder`` (``already_sent``): found means sent; not found means it never left,
and it is queued again. The send stage asks the same question before every send, so a reply is never sent
when the Sent folder already holds it (a data directory restored from an old backup, or lost).
"""

from __future__ import annotations

import email.parser
import email.policy
import logging

from intake.mailbox import Mailbox
from intake.models import ReplyState
from intake.poll.context import PollContext
from intake.store import OutboxItem

log = logging.getLogger("intake")


def resolve_unsent(ctx: PollContext, mb: Mailbox) -> int:
    """Settle every reply left ``sending`` or ``unknown``; returns how many there were."""
    states = [ReplyState.SENDING, ReplyState.UNKNOWN]
    interrupted = [*ctx.store.outbox(states), *ctx.store.notices(states)]
    for item in interrupted:
        if already_sent(ctx, mb, item):
            ctx.store.set_reply_state(item.id, ReplyState.SENT, queue=item.queue)
            log.info("reply %s (%s) found in %s: stamped sent", item.reply_message_id, item.state,
                     ctx.cfg.mailbox.sent_folder)
        else:
            ctx.store.set_reply_state(item.id, ReplyState.QUEUED, queue=item.queue)
            log.warning("reply %s (%s) not in %s: it never left, queued again", item.reply_message_id,
                        item.state, ctx.cfg.mailbox.sent_folder or "(no Sent folder configured)")
    return len(interrupted)


def already_sent(ctx: PollContext, mb: Mailbox, item: OutboxItem) -> bool:
    """Whether ``mailbox.sent_folder`` holds this reply: its own Message-ID, or, for the reply owed to a
    message (the outbox: a receipt or late notice), a message answering the same original (``In-Reply-To``)
    with the same ``X-Intake-Outcome`` (a reply rendered again after the data directory was lost has a new
    Message-ID). Notices are found by their Message-ID alone, which their key fixes (a copy sent again on
    purpose is a notice too). Raises ``MailboxError`` when the folder cannot be searched."""
    folder = ctx.cfg.mailbox.sent_folder
    if not folder:
        return False
    head = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(item.rfc822)
    original = (str(head.get("In-Reply-To") or "").strip() or None) if item.queue == "outbox" else None
    return mb.find_replies(folder, message_id=item.reply_message_id, in_reply_to=original,
                           outcome=str(head.get("X-Intake-Outcome") or item.kind))
