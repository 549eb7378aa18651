"""Stage 4: replies whose sending was interrupted, settled by the Sent folder before anything new is sent.

A reply is marked ``sending`` before the SMTP transaction and ``sent`` after its copy is in the Sent folder;
it is marked ``unknown`` when the connection was lost after the message went out (a timeout waiting for the
answer to DATA), so the server may have taken it. Found ``sending`` or ``unknown`` at the start of a poll, it
is looked up in ``mailbox.sent_folder``: found means sent; not found means it never left, and it is queued
again. The send stage asks the same question for every reply it is about to send, so a reply is never sent
when the Sent folder already holds it (a data directory restored from an old backup, or lost).

Each stage looks once (``look_in_sent``) for all the replies it handles: one EXAMINE of the Sent folder, the
replies' keys searched in batches, the candidates' header fields fetched and compared exactly
(``intake.sentcopies``), the current folder selected again. What the stage sends afterwards is added to what
it found, so two replies with the same keys in one stage go out once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from intake.mailbox import Mailbox
from intake.models import ReplyState
from intake.poll.context import PollContext
from intake.sentcopies import ReplyKeys, SentCopies, reply_keys
from intake.store import OutboxItem

log = logging.getLogger("intake")


def resolve_unsent(ctx: PollContext, mb: Mailbox) -> int:
    """Settle every reply left ``sending`` or ``unknown``; returns how many there were."""
    states = [ReplyState.SENDING, ReplyState.UNKNOWN]
    interrupted = [*ctx.store.outbox(states), *ctx.store.notices(states)]
    if not interrupted:
        return 0
    copies = look_in_sent(ctx, mb, interrupted)
    for item in interrupted:
        if copies.holds(keys_of(item)):
            ctx.store.set_reply_state(item.id, ReplyState.SENT, queue=item.queue)
            log.info("reply %s (%s) found in %s: stamped sent", item.reply_message_id, item.state,
                     ctx.cfg.mailbox.sent_folder)
        else:
            ctx.store.set_reply_state(item.id, ReplyState.QUEUED, queue=item.queue)
            log.warning("reply %s (%s) not in %s: it never left, queued again", item.reply_message_id,
                        item.state, ctx.cfg.mailbox.sent_folder or "(no Sent folder configured)")
    return len(interrupted)


def keys_of(item: OutboxItem) -> ReplyKeys:
    """What ``item`` is known by in the Sent folder: its own Message-ID, or, for the reply owed to a message
    (the outbox: a receipt or late notice), also the original it answers (``In-Reply-To``) with its
    ``X-Intake-Outcome`` (a reply rendered again after the data directory was lost has a new Message-ID).
    Notices are found by their Message-ID alone, which their key fixes (a copy sent again on purpose is a
    notice too)."""
    return reply_keys(item.rfc822, item.reply_message_id, str(item.kind), item.queue == "outbox")


def look_in_sent(ctx: PollContext, mb: Mailbox, items: Sequence[OutboxItem]) -> SentCopies:
    """What ``mailbox.sent_folder`` holds of ``items``, in one look; nothing without a Sent folder. Raises
    ``MailboxError`` when the folder cannot be searched."""
    wanted = [keys_of(item) for item in items]
    copies = SentCopies(wanted)
    if ctx.cfg.mailbox.sent_folder and wanted:
        mb.reply_headers(ctx.cfg.mailbox.sent_folder, wanted, copies.add_headers)
    return copies
