"""The staff digest: one self-contained HTML page on how the call stands (issue 5, "Staff report").

Per district the projects by status and the funding asked, then the open problems
staff must act on: project findings, forms matching no row, messages that failed or
came from unknown senders, replies the SMTP server refused. Rendered from
``digest.html.j2`` (a copy in ``templates_dir`` overrides it, as for the replies),
autoescaped, so nothing a sender wrote can become markup.

``render_digest`` is pure: the clock comes in as ``now``. ``write_digest`` swaps the
page in atomically beside the workbook.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from intake.models import (
    REPLY_LABEL,
    SEVERITY_LABEL,
    Ledger,
    Outcome,
    Project,
    ReplyInfo,
    ReplyState,
    StoredMessage,
)
from reports.files import atomic_write
from reports.labels import OUTCOME_TEXT, STATUS_ORDER, ledger_time
from reports.replies import environment

TEMPLATE = "digest.html.j2"
PROBLEM_OUTCOMES = (Outcome.ERROR, Outcome.UNKNOWN_SENDER)
OUTCOME_LABEL = OUTCOME_TEXT  # the words of 来件登记's 处理结果, so the page and the workbook read alike
PENDING_REPLY_STATES = (ReplyState.QUEUED, ReplyState.SENDING)
MONEY_DIGITS = 4  # 万元 to the yuan, as in the workbook
UNKNOWN_SENDER_TEXT = ("发件地址不属于任何区县，未处理；"
                       "如确为区县来件，请在配置中添加该地址后用 intake import 导入。")


def render_digest(
    ledger: Ledger,
    messages: Sequence[StoredMessage],
    replies: Mapping[int, ReplyInfo],
    *,
    campaign: str,
    deadline: datetime,
    now: datetime,
    tz: tzinfo,
    districts: Sequence[str],
    templates_dir: Path | None = None,
    attention: Sequence[str] = (),
) -> str:
    """The digest page; ``districts`` orders the rows (config order), ``replies`` are keyed by message id;
    ``attention`` lists what needs a person (one line each, e.g. a poll step failing since when)."""
    context = digest_context(ledger, messages, replies, campaign=campaign, deadline=deadline, now=now,
                             tz=tz, districts=districts)
    context["attention"] = list(attention)
    return environment(templates_dir).get_template(TEMPLATE).render(context)


def digest_context(
    ledger: Ledger,
    messages: Sequence[StoredMessage],
    replies: Mapping[int, ReplyInfo],
    *,
    campaign: str,
    deadline: datetime,
    now: datetime,
    tz: tzinfo,
    districts: Sequence[str],
) -> dict[str, Any]:
    """The plain values the template shows."""
    names = list(districts) + sorted({p.district for p in ledger.projects} - set(districts))
    rows = [_district_row(d, [p for p in ledger.projects if p.district == d], ledger.quotas.get(d))
            for d in names]
    by_id = {m.id: m for m in messages}
    outcomes = Counter(m.outcome for m in messages)
    return {
        "campaign": campaign,
        "generated_at": ledger_time(now, tz),
        "deadline": ledger_time(deadline, tz),
        "time_left": time_left(deadline, now),
        "passed": now > deadline,
        "statuses": [s.value for s in STATUS_ORDER],
        "districts": rows,
        "total": _total_row(rows),
        "outcomes": [{"label": OUTCOME_LABEL[o], "count": outcomes[o]} for o in Outcome],
        "message_count": len(messages),
        "problem_projects": [_problem_project(p) for p in ledger.projects if p.findings],
        "unmatched": [{"district": u.district, "filename": u.filename, "uid": u.uid}
                      for u in ledger.unmatched_forms],
        "problem_messages": [_problem_message(m, tz) for m in messages if m.outcome in PROBLEM_OUTCOMES],
        "failed_replies": [_failed_reply(r, by_id.get(r.message_db_id))
                           for r in replies.values() if r.state is ReplyState.FAILED],
        "pending_replies": sum(r.state in PENDING_REPLY_STATES for r in replies.values()),
    }


def time_left(deadline: datetime, now: datetime) -> str:
    """``还剩 2天3小时15分`` until the deadline, ``已截止`` after it."""
    if now > deadline:  # the deadline itself is the last instant on time (spec section 8)
        return "已截止"
    seconds = int((deadline - now).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = ([f"{days}天"] if days else []) + ([f"{hours}小时"] if days or hours else []) + [f"{minutes}分"]
    return "还剩 " + "".join(parts)


def _district_row(name: str, projects: Sequence[Project], quota: int | None) -> dict[str, Any]:
    counts = Counter(p.status for p in projects)
    return {
        "name": name,
        "projects": len(projects),
        "counts": {s.value: counts[s] for s in STATUS_ORDER},
        "quota": quota,
        "over_quota": quota is not None and len(projects) > quota,
        **_money(amount=_sum(p.values.get("申请资助金额") for p in projects),
                 city_amount=_sum(p.city_amount for p in projects)),
    }


def _total_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """合计: the districts' numbers added (the amounts as numbers, ``amount_value``, not as the text shown)."""
    quotas = [r["quota"] for r in rows if r["quota"] is not None]
    return {
        "projects": sum(r["projects"] for r in rows),
        "counts": {s.value: sum(r["counts"][s.value] for r in rows) for s in STATUS_ORDER},
        "quota": sum(quotas) if quotas else None,
        **_money(amount=_sum(r["amount_value"] for r in rows), city_amount=_sum(r["city_amount_value"] for r in rows)),
    }


def _sum(values: Any) -> float:
    """The sum of the numbers among ``values`` (an amount a district wrote as text adds nothing), to the yuan."""
    return round(sum(v for v in values if isinstance(v, int | float) and not isinstance(v, bool)), MONEY_DIGITS)


def _money(**amounts: float) -> dict[str, Any]:
    """Each amount as the template shows it (``name``) and as a number (``name_value``)."""
    return {k: v for name, value in amounts.items()
            for k, v in ((name, money_text(value)), (f"{name}_value", value))}


def money_text(value: float) -> str:
    """A 万元 amount as staff write it: ``95``, ``47.5``, ``123456.75`` (to four places, never in exponent form)."""
    text = f"{value:.{MONEY_DIGITS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _problem_project(p: Project) -> dict[str, Any]:
    return {
        "number": p.number,
        "district": p.district,
        "name": p.values.get("项目名称") or "（未填写项目名称）",
        "applicant": p.values.get("牵头申报单位") or "（未填写申报单位）",
        "status": p.status.value,
        "findings": [{"code": f.code.value, "severity": SEVERITY_LABEL[f.severity], "message": f.message}
                     for f in p.findings],
    }


def _problem_message(m: StoredMessage, tz: tzinfo) -> dict[str, Any]:
    if m.outcome is Outcome.UNKNOWN_SENDER:
        reason = UNKNOWN_SENDER_TEXT
    else:
        reason = m.error or "处理出错，原因未记录"
    return {"uid": m.uid, "sender": m.sender, "subject": m.subject or "（无主题）",
            "arrival": ledger_time(m.arrival, tz), "outcome": OUTCOME_LABEL[m.outcome], "reason": reason}


def _failed_reply(r: ReplyInfo, m: StoredMessage | None) -> dict[str, Any]:
    return {
        "uid": m.uid if m else None,
        "district": (m.district or "") if m else "",
        "to": m.sender if m else "",
        "subject": (m.subject or "（无主题）") if m else "",
        "kind": REPLY_LABEL[r.kind],
        "error": r.error or "原因不明",
    }


def write_digest(path: Path, html: str) -> None:
    """Write the page atomically (``reports.files``): readers never see half a page."""
    atomic_write(path, lambda fh: fh.write(html.encode("utf-8")))
