"""Stage 1: the new mail of one folder.

New means a UID above the highest recorded for this folder and UIDVALIDITY (or one whose earlier attempt
failed), and not recorded yet. When the server renumbered the folder (a new UIDVALIDITY), messages already
recorded are re-attached by Message-ID instead of being done again. Messages over the size limit are
returned apart, to be recorded as ``error`` without fetching their bodies. A UID the server does not answer
for is logged and remembered, so the next poll asks for it again even after higher UIDs are recorded.
Bodies come in batches (``mailbox.batch_size`` and ``max_fetch_bytes``) as the caller consumes them, so a
backlog never sits in memory at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from intake.errors import MailboxError
from intake.mailbox import FetchedMessage, Mailbox, MessageMeta
from intake.poll.context import PollContext

log = logging.getLogger("intake")

MAX_MESSAGE_BYTES = 80 * 1024 * 1024  # 163's own limit is 50 MB for ordinary attachments


@dataclass
class NewMail:
    """What a folder holds that is not recorded yet."""

    folder: str
    uidvalidity: int
    count: int = 0  # new UIDs (after re-attaching)
    remapped: int = 0
    too_big: list[MessageMeta] = field(default_factory=list)
    bodies: Iterator[FetchedMessage] = field(default_factory=lambda: iter(()))


def new_mail(ctx: PollContext, mb: Mailbox, folder: str) -> NewMail:
    """Select ``folder`` and find its new messages; their bodies are fetched as ``bodies`` is read."""
    validity = select(mb, folder)
    found = NewMail(folder, validity)
    candidates = mb.uids_from(ctx.store.search_start(folder, validity))
    known = ctx.store.known_uids(folder, validity, candidates)
    todo = [u for u in candidates if u not in known]
    if todo and _uidvalidity_changed(ctx, folder, validity):
        todo = _remap_by_message_id(ctx, mb, folder, todo, found)
    found.count = len(todo)
    if not todo:
        return found
    def missing(uid: int, reason: str) -> None:
        log.warning("%s uid=%s: %s; asked again at the next poll", folder, uid, reason)
        ctx.store.note_missing(folder, validity, uid, reason)

    metas = mb.meta(todo, on_missing=missing)
    found.too_big = [m for m in metas if m.size > MAX_MESSAGE_BYTES]
    found.bodies = mb.fetch([m for m in metas if m.size <= MAX_MESSAGE_BYTES], on_missing=missing)
    return found


def select(mb: Mailbox, folder: str) -> int:
    """Make ``folder`` the current one (no round trip when it already is); returns its UIDVALIDITY."""
    if mb.folder != folder:
        try:
            mb.select(folder)
        except MailboxError:
            mb.folder = ""  # a failed SELECT leaves no folder selected on the server either
            raise
    return mb.uidvalidity


def _uidvalidity_changed(ctx: PollContext, folder: str, validity: int) -> bool:
    known = ctx.store.known_uidvalidities(folder)
    return bool(known) and validity not in known


def _remap_by_message_id(ctx: PollContext, mb: Mailbox, folder: str, uids: list[int], found: NewMail) -> list[int]:
    """After a UIDVALIDITY change, re-attach known messages by Message-ID instead of redoing them."""
    ids = mb.message_ids(uids)
    rest = []
    for uid in uids:
        earlier = ctx.store.find_earlier(ids[uid], "") if uid in ids else None
        if earlier is not None and earlier["folder"] == folder:
            ctx.store.remap(earlier["id"], mb.uidvalidity, uid)
            found.remapped += 1
        else:
            rest.append(uid)
    log.warning("%s: UIDVALIDITY changed to %s: %d messages re-attached by Message-ID", folder, mb.uidvalidity,
                found.remapped)
    return rest
