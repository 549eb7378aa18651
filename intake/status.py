"""``intake status``: what the worker has done, read from the database alone (no mailbox)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from intake.attention import KIND_TEXT, Trouble, needs_attention
from intake.config import Config
from intake.models import ReplyState
from intake.poll.send import held_replies
from intake.store import Store
from intake.view import current_ledger
from reports.labels import STATUS_ORDER

HEALTHY, STALE, NEVER, ATTENTION = 0, 5, 6, 7  # ATTENTION: polls run, but something needs a person
MAX_FAILED_SHOWN = 10


@dataclass(frozen=True)
class StatusReport:
    lines: list[str]
    exit_code: int


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


def status(cfg: Config, store: Store, now: datetime) -> StatusReport:
    """The status lines and the exit code (stale: the last good poll is older than three intervals; attention:
    polling is fine but something needs a person, listed with since when)."""
    tz = cfg.campaign.tz
    lines = [f"data directory: {cfg.paths.data_dir}"]
    last = store.last_poll(ok_only=True)
    if last is None:
        lines.append("last successful poll: never")
        code = NEVER
    else:
        finished = datetime.fromisoformat(last["finished_at"])
        took = (finished - datetime.fromisoformat(last["started_at"])).total_seconds()
        age = now - finished
        code = STALE if age > timedelta(minutes=3 * cfg.schedule.interval_minutes) else HEALTHY
        lines.append(
            f"last successful poll: {finished.astimezone(tz):%Y-%m-%d %H:%M:%S} ({_ago(age)} ago),"
            f" took {took:.1f} s" + ("  ** STALE: more than three intervals ago **" if code == STALE else "")
        )
    failed = store.last_poll(ok_only=False)
    if failed is not None and not failed["ok"]:
        lines.append(f"last poll FAILED: {failed['error']}")
    counts = store.outcome_counts()
    lines.append("messages: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    lines.extend(_projects(cfg, store))
    replies = Counter(r.state.value for r in store.replies().values())
    states = ("sent", "queued", "sending", "unknown", "failed", "render_failed")
    lines.append("replies: " + ", ".join(f"{s} {replies.get(s, 0)}" for s in states))
    lines.extend(_held(cfg, store, now))
    lines.extend(_failed_replies(store))
    lines.extend(_staff(store, tz))
    left = cfg.campaign.deadline - now
    when = f"{cfg.campaign.deadline.astimezone(tz):%Y-%m-%d %H:%M:%S}"
    lines.append(f"deadline: {when} ({_ago(left)} left)" if left.total_seconds() > 0
                 else f"deadline: {when} (passed)")
    if last is not None and last["summary"]:
        s = json.loads(last["summary"])
        lines.append(f"last poll: new {s.get('new', 0)}, replies sent {s.get('sent', 0)}")
    lines.extend(_steps(store, tz))
    troubles = needs_attention(cfg, store, now)
    lines.extend(_attention(troubles, tz))
    if troubles and code == HEALTHY:
        code = ATTENTION
    return StatusReport(lines, code)


def _steps(store: Store, tz: tzinfo) -> list[str]:
    """Each poll step failing now, since when, with its last error (retried at every poll)."""
    return [f"step {f.step} FAILING since {f.since.astimezone(tz):%Y-%m-%d %H:%M:%S} ({f.failures} polls):"
            f" {f.last_error}" for f in store.step_failures()]


def _attention(troubles: list[Trouble], tz: tzinfo) -> list[str]:
    """What needs a person, grouped by kind (the first few of each), oldest first."""
    if not troubles:
        return []
    out = [f"NEEDS A PERSON: {len(troubles)} item(s)"]
    for kind in dict.fromkeys(t.kind for t in troubles):
        of_kind = [t for t in troubles if t.kind == kind]
        out += [f"  {t.line(tz)}" for t in of_kind[:MAX_FAILED_SHOWN]]
        if len(of_kind) > MAX_FAILED_SHOWN:
            out.append(f"  ... and {len(of_kind) - MAX_FAILED_SHOWN} more {KIND_TEXT[kind][0]}")
    return out


def _projects(cfg: Config, store: Store) -> list[str]:
    ledger = current_ledger(store, cfg)
    by_district: dict[str, Counter[str]] = {d.name: Counter() for d in cfg.districts}
    for p in ledger.projects:
        by_district.setdefault(p.district, Counter())[p.status] += 1
    out = [f"projects: {len(ledger.projects)}"]
    for name, counter in by_district.items():
        detail = ", ".join(f"{s} {counter[s]}" for s in STATUS_ORDER)
        out.append(f"  {name}: {sum(counter.values())} ({detail})")
    return out


def _staff(store: Store, tz: tzinfo) -> list[str]:
    """Staff re-sends (each its own reply), notices to districts by kind and state (a failed 结果通知 needs a
    person), decisions, and whether the close-out ran."""
    resends = [r for rs in store.resends().values() for r in rs]
    by_state = Counter(r.state.value for r in resends)
    out = [f"re-sends (补发): {len(resends)}"
           + (" (" + ", ".join(f"{s} {n}" for s, n in sorted(by_state.items())) + ")" if resends else "")]
    counts = store.notice_counts()
    for kind, label in (("update", "状态变更通知"), ("final", "结果通知")):
        states = {state: n for (k, state), n in counts.items() if k == kind}
        if states:
            out.append(f"{label} ({kind}): " + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
    decisions = store.decisions()
    out.append(f"staff decisions: {len(decisions)} on {len({d.number for d in decisions})} project(s)")
    closed = store.closeout()
    out.append("close-out: not run" if closed is None else
               f"close-out: ran {closed.closed_at.astimezone(tz):%Y-%m-%d %H:%M:%S}"
               + (" (--force)" if closed.forced else "") + f", {len(closed.results)} project(s) in 终审结果")
    return out


def _held(cfg: Config, store: Store, now: datetime) -> list[str]:
    """Queued replies waiting for tomorrow because their address reached the daily limit."""
    held = Counter(i.to_addr.lower() for i in held_replies(store, cfg.smtp.max_replies_per_sender_per_day, now,
                                                           cfg.campaign.tz))
    return [f"  held until tomorrow: {n} to {addr} (smtp.max_replies_per_sender_per_day ="
            f" {cfg.smtp.max_replies_per_sender_per_day})" for addr, n in sorted(held.items())]


def _failed_replies(store: Store) -> list[str]:
    """One line per reply the SMTP server refused for good, with its answer (the first few)."""
    failed = [r for r in store.replies().values() if r.state is ReplyState.FAILED]
    if not failed:
        return []
    by_id = {m.id: m for m in store.messages([r.message_db_id for r in failed[:MAX_FAILED_SHOWN]])}
    out = []
    for r in failed[:MAX_FAILED_SHOWN]:
        m = by_id.get(r.message_db_id)
        where = f"UID {m.uid} {m.sender}" if m else f"message {r.message_db_id}"
        out.append(f"  failed {r.kind} to {where}: {r.error or 'no reason recorded'}")
    if len(failed) > MAX_FAILED_SHOWN:
        out.append(f"  ... and {len(failed) - MAX_FAILED_SHOWN} more (see the ledger's 来件登记 sheet)")
    return out
