"""Stage 4: replies a crash left ``sending``, settled before anything new is sent.

A reply is marked ``sending`` before the SMTP transaction and ``sent`` after its copy is in the Sent folder.
Found ``sending`` at the start of a poll, it is looked up in ``mailbox.sent_folder`` by its own Message-ID:
found means sent; not found means it never left, and it is queued again.
"""

from __future__ import annotations

import logging

from intake.mailbox import Mailbox
from intake.models import ReplyState
from intake.poll.context import PollContext

log = logging.getLogger("intake")


def resolve_unsent(ctx: PollContext, mb: Mailbox) -> int:
    """Settle every reply left ``sending``; returns how many there were."""
    interrupted = [*ctx.store.outbox([ReplyState.SENDING]), *ctx.store.notices([ReplyState.SENDING])]
    folder = ctx.cfg.mailbox.sent_folder
    for item in interrupted:
        if folder and mb.contains_message_id(folder, item.reply_message_id):
            ctx.store.set_reply_state(item.id, ReplyState.SENT, queue=item.queue)
            log.info("reply %s found in %s after a crash: stamped sent", item.reply_message_id, folder)
        else:
            ctx.store.set_reply_state(item.id, ReplyState.QUEUED, queue=item.queue)
            log.warning("reply %s interrupted before it was proven sent: queued again", item.reply_message_id)
    return len(interrupted)
