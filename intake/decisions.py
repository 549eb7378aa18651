"""Staff decisions (spec 10.4) as pure logic: laid over a ledger, and checked before they are kept.

A decision is (受理编号, status, reason, who, when), kept in the store for good. It is keyed by the
受理编号 alone, never by a message, so rebuilding the ledger or processing the mail again keeps it.

- ``apply_decisions`` lays the decisions over a ledger built by the rules: each project keeps the rules'
  status as ``auto_status`` (自动判定) and takes the latest decision's status, unless material newer
  than the decision arrived since (then the decision is *stale*: kept and shown, but ``status`` is
  the rules' again until staff decide anew).
- ``apply_final`` lays the close-out's final list (终审结果) over a ledger.
- ``decide`` and ``check_rows`` turn one command-line decision or the rows of a workbook into new
  decisions, or into the reasons they are refused; nothing here writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from intake.models import Code, Decision, FinalResult, Finding, Ledger, Project, Severity, Status
from intake.store import NewDecision
from reports.labels import ledger_time

STATUSES: Mapping[str, Status] = {s.value: s for s in Status}
NOT_CORRECTED_TEXT = "逾期未补正"


# -- laid over a ledger ---------------------------------------------------------------------------


def latest_decisions(decisions: Iterable[Decision]) -> dict[str, Decision]:
    """The decision in force per 受理编号: the one made last."""
    latest: dict[str, Decision] = {}
    for d in sorted(decisions, key=lambda d: d.id):
        latest[d.number] = d
    return latest


def is_stale(decision: Decision, project: Project) -> bool:
    """Whether material for the project arrived after the material the decision was made on."""
    return (project.arrival is not None and decision.material_at is not None
            and project.arrival > decision.material_at)


def apply_decisions(ledger: Ledger, decisions: Sequence[Decision]) -> Ledger:
    """The ledger with each project's decision laid over the rules' status (a new ledger; the given one
    is left as it is). A decided project keeps the rules' status in ``auto_status`` (undecided ones leave it
    ``None``: their status is the rules'); ``Ledger.decisions`` lists all, oldest first."""
    latest = latest_decisions(decisions)
    projects = [_decided(p, latest.get(p.number)) for p in ledger.projects]
    return replace(ledger, projects=projects, decisions=sorted(decisions, key=lambda d: d.id))


def _decided(p: Project, decision: Decision | None) -> Project:
    if decision is None:
        return p  # auto_status stays None: the status is the rules'
    auto = p.auto_status or p.status
    stale = is_stale(decision, p)
    return replace(p, auto_status=auto, decision=decision, decision_stale=stale,
                   status=auto if stale else decision.status)


def apply_final(ledger: Ledger, final: Sequence[FinalResult] | None) -> Ledger:
    """The ledger after the close-out: each listed project takes its final status (with ``NOT_CORRECTED``
    among its findings when the close-out gave it), and ``Ledger.final`` holds the list."""
    if final is None:
        return ledger
    by_number = {r.number: r for r in final}
    projects = [_final(p, by_number.get(p.number)) for p in ledger.projects]
    return replace(ledger, projects=projects, final=list(final))


def _final(p: Project, result: FinalResult | None) -> Project:
    if result is None:
        return p
    findings = list(p.findings)
    if result.code == Code.NOT_CORRECTED.value and all(f.code is not Code.NOT_CORRECTED for f in findings):
        findings.append(Finding(Code.NOT_CORRECTED, not_corrected_text(p)))
    return replace(p, status=result.status, findings=findings)


def not_corrected_text(p: Project) -> str:
    """The NOT_CORRECTED sentence: 逾期未补正, and what was left to correct."""
    left = "；".join(f.message.rstrip("。") for f in p.findings if f.severity is Severity.FIX)
    if not left:
        return f"{NOT_CORRECTED_TEXT}，不予受理。"
    return f"{NOT_CORRECTED_TEXT}：截止时间前未补正（{left}），不予受理。"


# -- deciding -----------------------------------------------------------------------------------------


class Refused(ValueError):
    """A decision that cannot be kept, with the reason in one line."""


def decide(ledger: Ledger, number: str, status: str, reason: str) -> NewDecision:
    """One decision on the project ``number`` of ``ledger`` (decisions laid over), or ``Refused``."""
    project = next((p for p in ledger.projects if p.number == number.strip()), None)
    if project is None:
        raise Refused(f"unknown 受理编号 {number.strip()!r}")
    if status.strip() not in STATUSES:
        raise Refused(f"unknown status {status.strip()!r} (one of {', '.join(STATUSES)})")
    if not reason.strip():
        raise Refused("a decision needs a reason (复核意见)")
    return NewDecision(project.number, STATUSES[status.strip()], reason.strip(), project.auto_status or project.status,
                       project.arrival)


@dataclass(frozen=True)
class ReviewRow:
    """A row of a staff copy of 项目台账, as read (``row`` is its row number in the sheet)."""

    row: int
    number: str
    conclusion: str  # 复核结论
    comment: str  # 复核意见
    auto: str  # 自动判定 in the copy
    material: str  # 来件时间 in the copy, ``YYYY-MM-DD HH:MM:SS``
    decided_at: str  # 复核时间 in the copy, ``YYYY-MM-DD HH:MM:SS`` or ""


@dataclass(frozen=True)
class ReviewPlan:
    """What a workbook would do: one line per row with a 复核结论, and the decisions to keep (all of them
    when nothing was refused; none otherwise)."""

    lines: list[str]
    decisions: list[NewDecision]
    refused: int

    @property
    def ok(self) -> bool:
        return self.refused == 0


def check_rows(rows: Sequence[ReviewRow], ledger: Ledger, tz: tzinfo) -> ReviewPlan:
    """Check every row of a staff copy against the current ledger (decisions laid over): all or nothing."""
    projects = {p.number: p for p in ledger.projects}
    seen: dict[str, int] = {}
    lines: list[str] = []
    decisions: list[NewDecision] = []
    refused = 0
    for r in rows:
        if not r.conclusion:
            continue  # blank 复核结论: no change
        try:
            new = _check_row(r, projects.get(r.number), seen, tz)
        except Refused as e:
            lines.append(f"row {r.row} {r.number or '(no 受理编号)'}: refused: {e}")
            refused += 1
            continue
        seen[r.number] = r.row
        if new is None:
            lines.append(f"row {r.row} {r.number}: unchanged ({r.conclusion}, already decided)")
            continue
        before = projects[r.number].status.value
        lines.append(f"row {r.row} {r.number}: {before} -> {new.status.value}")
        decisions.append(new)
    return ReviewPlan(lines, decisions if not refused else [], refused)


def _check_row(r: ReviewRow, project: Project | None, seen: Mapping[str, int], tz: tzinfo) -> NewDecision | None:
    """The row's new decision; None when it repeats the decision in force; ``Refused`` with the reason."""
    if project is None:
        raise Refused(f"unknown 受理编号 {r.number!r}" if r.number else "no 受理编号")
    if r.number in seen:
        raise Refused(f"受理编号 given twice (also row {seen[r.number]})")
    if r.conclusion not in STATUSES:
        raise Refused(f"unknown status {r.conclusion!r} in 复核结论 (one of {', '.join(STATUSES)})")
    changed = _changed_since_copy(r, project, tz)
    if changed:
        raise Refused(f"the project changed since this copy was made ({changed}); review it in a fresh copy")
    d = project.decision
    if d is not None and not project.decision_stale and (d.status.value, d.reason) == (r.conclusion, r.comment):
        return None
    if not r.comment:
        raise Refused("复核意见 is empty: a decision needs a reason")
    return NewDecision(project.number, STATUSES[r.conclusion], r.comment, project.auto_status or project.status,
                       project.arrival)


def _changed_since_copy(r: ReviewRow, project: Project, tz: tzinfo) -> str:
    """What differs between the copy's row and the project now: 自动判定, 来件时间 or 复核时间; "" if nothing."""
    auto = (project.auto_status or project.status).value
    if r.auto != auto:
        return f"自动判定 was {r.auto or '(blank)'}, is now {auto}"
    material = ledger_time(project.arrival, tz)
    if r.material != material:
        return f"来件时间 was {r.material or '(blank)'}, is now {material}"
    decided_at = ledger_time(project.decision.at, tz) if project.decision else ""
    if r.decided_at != decided_at:
        return f"复核时间 was {r.decided_at or '(blank)'}, is now {decided_at or '(blank)'}"
    return ""


def cell_text(value: Any) -> str:
    """A workbook cell as the text the checks compare: times as ``YYYY-MM-DD HH:MM:SS``, blanks as ""."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
