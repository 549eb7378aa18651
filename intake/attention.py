"""What needs a person: replies refused for good or not rendering, messages recorded as ``error`` or from an
unknown sender, poll steps failing for more than an hour. Read from the store alone.

``intake status`` lists these (and exits non-zero), the digest page shows them, and the ``alerts`` stage
mails staff about the new ones (``intake.staff.send_alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from intake.config import Config
from intake.store import Store

STEP_GRACE = timedelta(hours=1)  # a step failing for longer than this needs a person

KIND_TEXT = {  # kind: (English for the CLI, Chinese for staff)
    "reply_refused": ("reply refused for good", "回复被邮件服务器拒收"),
    "reply_not_rendered": ("reply does not render", "回复无法生成（模板有误？）"),
    "message_error": ("message recorded as error", "来件处理出错"),
    "unknown_sender": ("unknown sender", "非区县发件人来件"),
    "step_failing": ("poll step failing", "收件流程某一步持续失败"),
}


@dataclass(frozen=True)
class Trouble:
    kind: str
    key: str  # identifies the item within its kind (an alert is mailed once per key)
    since: datetime
    detail: str

    def line(self, tz: tzinfo) -> str:
        return f"{KIND_TEXT[self.kind][0]} since {self.since.astimezone(tz):%Y-%m-%d %H:%M:%S}: {self.detail}"

    def line_zh(self, tz: tzinfo) -> str:
        return f"{KIND_TEXT[self.kind][1]}（自 {self.since.astimezone(tz):%Y-%m-%d %H:%M:%S} 起）：{self.detail}"


def needs_attention(cfg: Config, store: Store, now: datetime, step_grace: timedelta = STEP_GRACE) -> list[Trouble]:
    """Every open item that needs a person, oldest first within each kind."""
    out: list[Trouble] = []
    for r in store.failed_replies():
        out.append(Trouble("reply_refused", str(r["id"]), datetime.fromisoformat(r["since"]),
                           f"{r['folder']} UID {r['uid']} to {r['to_addr']}: {r['last_error'] or '?'}"))
    by_id = {m.id: m for m in store.messages([d.message_db_id for d in store.replies_due() if d.attempts])}
    for d in store.replies_due():
        if d.attempts:
            m = by_id.get(d.message_db_id)
            where = f"UID {m.uid} {m.sender}" if m else f"message {d.message_db_id}"
            out.append(Trouble("reply_not_rendered", str(d.message_db_id), d.since, f"{where}: {d.last_error}"))
    for row in store.messages_needing_staff():
        kind = "message_error" if row["outcome"] == "error" else "unknown_sender"
        what = row["error"] if kind == "message_error" else row["subject"]
        out.append(Trouble(kind, str(row["id"]), datetime.fromisoformat(row["recorded_at"]),
                           f"{row['folder']} UID {row['uid']} from {row['sender'] or '?'}: {what}"))
    for f in store.step_failures():
        if now - f.since >= step_grace:
            out.append(Trouble("step_failing", f"{f.step}@{f.since.isoformat()}", f.since,
                               f"{f.step} ({f.failures} polls): {f.last_error}"))
    return out
