"""Stage 6: flag (and move) the recorded messages of one folder, last, after their outcome is committed.

Every message recorded from the folder and not yet acted on is flagged ``\\Seen`` and, when
``mailbox.processed_folder`` is set, moved there. A refused STORE or MOVE fails this step alone: the
messages stay pending (the store remembers them) and the next poll tries again. Never run in a dry run.
"""

from __future__ import annotations

from intake.mailbox import Mailbox
from intake.poll.context import PollContext
from intake.poll.fetch import select


def finish_mailbox_actions(ctx: PollContext, mb: Mailbox, folder: str) -> int:
    """Act on every pending message of ``folder``; returns how many were flagged."""
    pending = ctx.store.pending_mailbox_actions(folder, select(mb, folder))
    if not pending:
        return 0
    present = set(mb.uids_from(min(p.uid for p in pending)))
    uids = [p.uid for p in pending if p.uid in present]
    target = ctx.cfg.mailbox.processed_folder
    mb.mark_processed(uids, target if target != folder else "")
    ctx.store.mark_mailbox_done([p.message_db_id for p in pending])
    return len(uids)
