"""``intake reprocess``: run recorded messages again from their archived originals, after a fix or a config
change (a district's new address, a parser that no longer fails).

Each message is decided again exactly as a poll decides new mail (``intake.poll.record.decide``): from the
original ``.eml`` in the archive, with its recorded arrival time, folder and UID, and as a duplicate only when
an *earlier* message has its Message-ID. When the decision differs from what is recorded, the message's
results (outcome, district, attachments, findings, hence the projects its material makes) are replaced in one
transaction, together with the reply it is owed:

- a reply now owed and never sent (an ``unknown_sender`` that is now a district, an ``error`` now processed)
  is noted as owed, rendered from the new results and sent once by the next poll;
- a reply that went out, or may have (``sent``, ``sending``, ``unknown``, ``failed``), is never repeated;
  a reply queued but not sent yet is rendered again from the new results;
- every district whose projects change status through the reprocessed message gets one 状态变更通知
  (queued in the same transaction), except a district that is getting the message's receipt now, since the
  receipt shows its projects. So a district whose receipt was already sent learns of a change that way.

A message whose decision is unchanged is left as it is: running reprocess twice changes nothing the second
time. A crash leaves each message either wholly before or wholly after; running the command again completes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from intake.changes import status_changes, update_notice
from intake.failpoints import failpoint
from intake.mailbox import FetchedMessage
from intake.models import Ledger, NewAttachment, NewMessage, Outcome, ReplyKind, StoredAttachment, StoredMessage
from intake.poll.context import PollContext
from intake.poll.record import decide, read_parts, reply_kind
from intake.view import current_ledger

log = logging.getLogger("intake")

OUTCOMES = (Outcome.ERROR.value, Outcome.UNKNOWN_SENDER.value)  # what --outcome selects


@dataclass(frozen=True)
class Reprocessed:
    """What became of one message."""

    folder: str
    uid: int
    before: str
    after: str | None = None  # None: it could not be run again (``error`` says why)
    changed: bool = False
    reply: str = "none"  # owed, none, or the state of a reply that stays (sent, unknown, failed …)
    notices: int = 0
    error: str | None = None

    def line(self) -> str:
        where = f"{self.folder} uid {self.uid}"
        if self.after is None:
            return f"{where}: not reprocessed: {self.error}"
        if not self.changed:
            return f"{where}: {self.before}, unchanged"
        reply = {"owed": "reply owed: sent by the next poll", "none": "no reply"}.get(
            self.reply, f"reply already {self.reply}: not sent again")
        notices = f", {self.notices} 状态变更通知 queued" if self.notices else ""
        return f"{where}: {self.before} -> {self.after} ({reply}{notices})"


def select(
    ctx: PollContext, *, uids: Sequence[int] = (), folder: str | None = None, outcome: str | None = None
) -> tuple[list[sqlite3.Row], list[str]]:
    """The recorded messages to run again, in store order, and a line for each UID not recorded.

    By UID in ``folder`` (default ``mailbox.folder``; the latest record when the server renumbered it), or
    every message of ``outcome`` (``error`` or ``unknown_sender``).
    """
    if outcome is not None:
        if outcome not in OUTCOMES:
            raise ValueError(f"--outcome: one of {', '.join(OUTCOMES)}")
        return ctx.store.message_rows("outcome = ?", [outcome]), []
    folder = folder or ctx.cfg.mailbox.folder
    rows: dict[int, sqlite3.Row] = {}
    for uid in dict.fromkeys(uids):
        found = ctx.store.message_rows("folder = ? AND uid = ?", [folder, uid])
        if found:
            rows[found[-1]["id"]] = found[-1]
    missing = [f"{folder} uid {u}: not recorded" for u in dict.fromkeys(uids)
               if not any(r["uid"] == u for r in rows.values())]
    return [rows[i] for i in sorted(rows)], missing


def reprocess(ctx: PollContext, rows: Sequence[sqlite3.Row]) -> list[Reprocessed]:
    """Run each message again, one transaction each; the parser children end with the last one."""
    done = []
    try:
        for row in rows:
            done.append(reprocess_one(ctx, row))
            log.info("reprocess %s", done[-1].line())
            failpoint("after_reprocess_one")
    finally:
        if ctx.parsers is not None:
            ctx.parsers.close()
    return done


def reprocess_one(ctx: PollContext, row: sqlite3.Row) -> Reprocessed:
    """Decide one recorded message again from its original and replace its results when they differ."""
    folder, uid, before = row["folder"], row["uid"], row["outcome"]
    if not row["raw_path"]:
        return Reprocessed(folder, uid, before, error="its original was not archived")
    try:
        raw = ctx.archive.read(row["raw_path"])
    except OSError as e:
        return Reprocessed(folder, uid, before, error=f"archived original unreadable: {e.strerror or e}")
    fetched = FetchedMessage(uid, datetime.fromisoformat(row["internaldate"]), row["size"], raw)
    try:
        parts = read_parts(fetched)
        earlier = ctx.store.find_earlier(parts.message_id, row["raw_sha256"])
        new = decide(ctx, fetched, parts, (row["raw_sha256"], row["raw_path"]), row["uidvalidity"],
                     folder=folder, source=row["source"], seen_before=earlier is not None and earlier["id"] < row["id"])
    except Exception as e:  # noqa: BLE001 - the message stays as recorded; the others go on
        return Reprocessed(folder, uid, before, error=f"{type(e).__name__}: {e}")
    stored = ctx.store.messages([row["id"]])[0]
    if _same(stored, new):
        return Reprocessed(folder, uid, before, before)
    with ctx.store.transaction():
        old_ledger = current_ledger(ctx.store, ctx.cfg)
        ctx.store.replace_message(row["id"], new)
        kind = reply_kind(new.outcome)
        reply = ctx.store.owe_reply(row["id"], kind)
        failpoint("reprocess_replaced")  # tests: a crash before the commit leaves the message as it was
        receipt_now = {new.district} if reply == "owed" and kind is ReplyKind.RECEIPT else set()
        notices = _queue_notices(ctx, old_ledger, receipt_now, row["id"])
    return Reprocessed(folder, uid, before, new.outcome.value, True, reply, notices)


def _queue_notices(ctx: PollContext, old_ledger: Ledger, receipt_now: set[str | None], db_id: int) -> int:
    """One 状态变更通知 to each district whose projects changed status (except one getting its receipt now);
    inside the message's transaction, keyed by the store's revision so a run again queues nothing twice."""
    messages = ctx.store.messages()
    changes = status_changes(old_ledger, current_ledger(ctx.store, ctx.cfg, messages), {d for d in receipt_now if d})
    revision, through, now = ctx.store.revision(), ctx.store.updates_checked_through(), ctx.clock()
    queued = 0
    for district, changed in sorted(changes.items()):
        n = update_notice(ctx.cfg, district, changed, messages, now, through,
                          key=f"reprocess:{district}:{db_id}:{revision}")
        queued += ctx.store.insert_notice(n.key, n.kind, n.to_addr, n.reply_message_id, n.rfc822, district=district)
    return queued


def _same(stored: StoredMessage, new: NewMessage) -> bool:
    """Whether deciding again gave what is recorded (then nothing is written)."""
    def files(items: Sequence[StoredAttachment | NewAttachment]) -> list[tuple[object, ...]]:
        return [(a.filename, a.sha256, a.size, a.sniffed, a.kind, a.path,
                 json.loads(json.dumps(a.parsed, ensure_ascii=False)), a.error_code, a.error_reason, a.container)
                for a in items]

    return ((stored.message_id, stored.sender, stored.district, stored.subject, stored.outcome, stored.error,
             stored.findings) == (new.message_id, new.sender, new.district, new.subject, new.outcome, new.error,
                                  new.findings)
            and files(stored.attachments) == files(new.attachments))
