"""What needs a person: replies and notices refused for good, replies not rendering, replies held by the
daily limit per address, messages recorded as ``error`` or from an unknown sender (a district address that
failed SPF/DKIM apart), poll steps failing for more than an hour. Read from the store alone.

``intake status`` lists these (and exits non-zero), the digest page shows them, and the ``alerts`` stage
mails staff about the new ones (``intake.staff.send_alerts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from intake.config import Config
from intake.models import Code
from intake.poll.send import held_replies
from intake.store import Store

STEP_GRACE = timedelta(hours=1)  # a step failing for longer than this needs a person

KIND_TEXT = {  # kind: (English for the CLI, Chinese for staff)
    "reply_refused": ("reply refused for good", "回复被邮件服务器拒收"),
    "notice_refused": ("notice refused for good", "通知被邮件服务器拒收"),
    "reply_not_rendered": ("reply does not render", "回复无法生成（模板有误？）"),
    "message_error": ("message recorded as error", "来件处理出错"),
    "unknown_sender": ("unknown sender", "非区县发件人来件"),
    "unauthenticated_sender": ("district address failing SPF/DKIM (possibly forged), not merged",
                               "区县地址来件未通过发件认证（可能被冒用），未纳入台账"),
    "reply_held": ("replies held by smtp.max_replies_per_sender_per_day", "回复超过每日发送上限，暂缓发送"),
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
    for n in store.failed_notices():
        out.append(Trouble("notice_refused", str(n["id"]), datetime.fromisoformat(n["since"]),
                           f"{n['kind']} to {n['district'] or '?'} <{n['to_addr']}>: {n['last_error'] or '?'}"))
    by_id = {m.id: m for m in store.messages([d.message_db_id for d in store.replies_due() if d.attempts])}
    for d in store.replies_due():
        if d.attempts:
            m = by_id.get(d.message_db_id)
            where = f"UID {m.uid} {m.sender}" if m else f"message {d.message_db_id}"
            out.append(Trouble("reply_not_rendered", str(d.message_db_id), d.since, f"{where}: {d.last_error}"))
    out.extend(_held(cfg, store, now))
    forged = store.messages_with_code(Code.UNAUTHENTICATED_SENDER)
    for row in store.messages_needing_staff():
        kind = "message_error" if row["outcome"] == "error" else "unknown_sender"
        kind = "unauthenticated_sender" if row["id"] in forged else kind
        what = row["error"] if kind == "message_error" else row["subject"]
        out.append(Trouble(kind, str(row["id"]), datetime.fromisoformat(row["recorded_at"]),
                           f"{row['folder']} UID {row['uid']} from {row['sender'] or '?'}: {what}"))
    for f in store.step_failures():
        if now - f.since >= step_grace:
            out.append(Trouble("step_failing", f"{f.step}@{f.since.isoformat()}", f.since,
                               f"{f.step} ({f.failures} polls): {f.last_error}"))
    return out


def _held(cfg: Config, store: Store, now: datetime) -> list[Trouble]:
    """One item per address whose replies wait for tomorrow (mailed once per address and day)."""
    tz = cfg.campaign.tz
    held: dict[str, int] = {}
    for item in held_replies(store, cfg.smtp.max_replies_per_sender_per_day, now, tz):
        held[item.to_addr.lower()] = held.get(item.to_addr.lower(), 0) + 1
    midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return [Trouble("reply_held", f"{addr}@{midnight:%Y-%m-%d}", midnight,
                    f"{n} replies to {addr} wait for tomorrow ({cfg.smtp.max_replies_per_sender_per_day} a day)")
            for addr, n in sorted(held.items())]
