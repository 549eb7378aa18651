"""``intake close``: after the deadline, fix the final list and queue one 结果通知 per district (spec 10.5).

- ``final_list`` is pure: from the ledger (decisions laid over) it gives each project's final status and
  reason, and the 待审核 projects nobody decided. 受理 and 不予受理 stay; 待补正 becomes 不予受理 with
  ``NOT_CORRECTED`` (逾期未补正) unless a decision in force says otherwise; 待审核 stays only when a decision
  says so, or when staff force the close-out (and then the reason says it was not reviewed).
- ``close`` is the edge: refused before the deadline; run once. The final list and the 结果通知 are kept in
  one transaction; the normal send stage of the next poll sends each notice once (a crash anywhere after
  the commit leaves them queued, and ``resolve`` settles one caught mid-send).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from intake.changes import district_notice
from intake.config import Config
from intake.decisions import NOT_CORRECTED_TEXT
from intake.errors import IntakeError
from intake.failpoints import failpoint
from intake.merge import build_ledger
from intake.models import Code, FinalResult, Ledger, Project, ReplyKind, Severity, Status, StoredMessage
from intake.store import NewNotice, Store
from reports.replies import render_result

log = logging.getLogger("intake")

NOT_REVIEWED = "未经复核（强制结案，保留待审核）"


class CloseRefused(IntakeError):
    """The close-out cannot run now (before the deadline, or 待审核 projects without a decision)."""


@dataclass(frozen=True)
class CloseResult:
    """What ``close`` did, as lines to print."""

    lines: list[str]
    closed: bool  # False: it had run before, nothing changed


def final_list(ledger: Ledger) -> tuple[list[FinalResult], list[Project]]:
    """Each project's final status and reason, and the 待审核 projects without a decision in force."""
    results, undecided = [], []
    for p in ledger.projects:
        decided = p.decision is not None and not p.decision_stale
        if p.status is Status.REVIEW and not decided:
            undecided.append(p)
        results.append(_final(p, decided))
    return results, undecided


def _final(p: Project, decided: bool) -> FinalResult:
    name = str(p.values.get("项目名称") or "（未填写项目名称）")
    applicant = str(p.values.get("牵头申报单位") or "（未填写申报单位）")
    if p.status is Status.NEEDS_FIX:
        fixes = "；".join(f.message.rstrip("。") for f in p.findings if f.severity is Severity.FIX)
        reason = f"{NOT_CORRECTED_TEXT}：{fixes}" if fixes else NOT_CORRECTED_TEXT
        return FinalResult(p.number, p.district, name, applicant, Status.REJECTED, reason, Code.NOT_CORRECTED.value)
    if decided and p.decision is not None:
        reason = f"市局复核：{p.decision.reason}"
    elif p.status is Status.REVIEW:
        reason = NOT_REVIEWED
    elif p.status is Status.REJECTED:
        reason = "；".join(f.message.rstrip("。") for f in p.findings if f.severity is Severity.REJECT)
    else:
        reason = ""
    return FinalResult(p.number, p.district, name, applicant, p.status, reason)


def close(store: Store, cfg: Config, now: datetime, *, force: bool = False) -> CloseResult:
    """Run the close-out once: refused before the deadline; ``CloseRefused`` listing the undecided 待审核
    projects unless ``force``; a second run changes nothing and sends nothing."""
    deadline = cfg.campaign.deadline
    if now <= deadline:
        raise CloseRefused(f"the deadline {deadline.astimezone(cfg.campaign.tz):%Y-%m-%d %H:%M:%S} has not passed;"
                           " the close-out runs after it")
    earlier = store.closeout()
    if earlier is not None:
        return CloseResult([f"already closed on {earlier.closed_at.astimezone(cfg.campaign.tz):%Y-%m-%d %H:%M:%S}:"
                            " nothing changed, nothing sent"], False)
    messages = store.messages()
    ledger = build_ledger(messages, cfg, decisions=store.decisions())
    results, undecided = final_list(ledger)
    if undecided and not force:
        listed = "\n".join(f"  {p.number} {p.district} {p.values.get('项目名称') or ''}" for p in undecided)
        raise CloseRefused(f"{len(undecided)} 待审核 project(s) without a decision; decide them with intake review,"
                           f" or close with --force to leave them 待审核:\n{listed}")
    notices = [result_notice(cfg, district, rows, messages, now) for district, rows in by_district(results, cfg)]
    if not store.close_out(now, force, results, notices):
        return CloseResult(["already closed: nothing changed, nothing sent"], False)
    failpoint("after_close_queued")
    lines = _summary(results, undecided, notices, force)
    for line in lines:
        log.info("close-out: %s", line)
    return CloseResult(lines, True)


def by_district(results: Sequence[FinalResult], cfg: Config) -> list[tuple[str, list[FinalResult]]]:
    """The final list per district: every configured district (one without projects gets an empty list, and
    its notice says nothing was received on time), in config order."""
    order = [d.name for d in cfg.districts]
    grouped: dict[str, list[FinalResult]] = {name: [] for name in order}
    for r in results:
        grouped.setdefault(r.district, []).append(r)
    return sorted(grouped.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))


def result_notice(cfg: Config, district: str, results: Sequence[FinalResult], messages: Sequence[StoredMessage],
                  now: datetime) -> NewNotice:
    """The 结果通知 to ``district`` (subject ``结果通知：<campaign.name>``, ``X-Intake-Outcome: final``), its
    Message-ID fixed by the district so the same notice is never two messages."""
    rendered = render_result(district, results, **cfg.letter(now))
    return district_notice(cfg, district, ReplyKind.FINAL, rendered, f"final:{district}", messages, now)


def _summary(results: Sequence[FinalResult], undecided: Sequence[Project], notices: Sequence[NewNotice],
             force: bool) -> list[str]:
    counts = {s: sum(r.status is s for r in results) for s in Status}
    not_corrected = sum(r.code == Code.NOT_CORRECTED.value for r in results)
    lines = [f"closed: {len(results)} project(s): " + ", ".join(f"{s.value} {counts[s]}" for s in Status)
             + f" ({not_corrected} 待补正 -> 不予受理, NOT_CORRECTED)"]
    if force and undecided:
        lines.append(f"--force: {len(undecided)} 待审核 project(s) without a decision left 待审核: "
                     + ", ".join(p.number for p in undecided))
    lines.append(f"queued {len(notices)} 结果通知 ({', '.join(n.district for n in notices)}); "
                 "the next poll sends them")
    return lines
