"""The close-out's final list (pure) and the 结果通知 it renders (spec 10.5)."""

from __future__ import annotations

from datetime import UTC, datetime

from report_factories import DEADLINE, SHANGHAI, finding, project

from intake.closeout import NOT_REVIEWED, final_list
from intake.decisions import apply_decisions, apply_final
from intake.models import Code, Decision, Ledger, Status
from reports.replies import render_result

MISSING_FORM = finding(Code.MISSING_FORM)
OVERLIMIT = finding(Code.AGENCY_OVERLIMIT)
BELOW = finding(Code.PATENTS_BELOW_THRESHOLD)


def decided(number: str, status: Status, reason: str = "核实") -> Decision:
    return Decision(1, number, status, reason, "王审核", datetime(2024, 11, 10, tzinfo=UTC), Status.REVIEW,
                    datetime(2024, 11, 5, 1, 1, tzinfo=UTC))


def test_the_final_list_keeps_accepted_and_rejected_and_rejects_what_was_not_corrected() -> None:
    """受理 stays with no reason, 不予受理 keeps its reject findings as the reason, 待补正 becomes 不予受理 with
    NOT_CORRECTED and what was left to correct."""
    ledger = Ledger([project("XZ2024-云龙-001"), project("XZ2024-云龙-002", findings=[BELOW]),
                     project("XZ2024-云龙-003", findings=[MISSING_FORM])], [], {})
    results, undecided = final_list(ledger)
    ok, rejected, fix = results
    assert undecided == []
    assert (ok.status, ok.reason, ok.code) == (Status.ACCEPTED, "", "")
    assert rejected.status is Status.REJECTED and rejected.reason == BELOW.message.rstrip("。")
    assert (fix.status, fix.code) == (Status.REJECTED, "NOT_CORRECTED")
    assert fix.reason == f"逾期未补正：{MISSING_FORM.message.rstrip('。')}"


def test_review_projects_need_a_decision_in_force() -> None:
    """A decided 待审核 project takes the decision (reason 市局复核：…); an undecided or stale one is listed."""
    stale = project("XZ2024-云龙-003", findings=[OVERLIMIT], arrival=datetime(2024, 11, 6, tzinfo=UTC))
    ledger = apply_decisions(Ledger([project("XZ2024-云龙-001", findings=[OVERLIMIT]),
                                     project("XZ2024-云龙-002", findings=[OVERLIMIT]), stale], [], {}),
                             [decided("XZ2024-云龙-001", Status.REVIEW, "待专家论证"),
                              Decision(2, "XZ2024-云龙-003", Status.ACCEPTED, "核实", "王审核",
                                       datetime(2024, 11, 5, 2, 0, tzinfo=UTC), Status.REVIEW,
                                       datetime(2024, 11, 5, 1, 1, tzinfo=UTC))])
    results, undecided = final_list(ledger)
    assert [p.number for p in undecided] == ["XZ2024-云龙-002", "XZ2024-云龙-003"]
    assert (results[0].status, results[0].reason) == (Status.REVIEW, "市局复核：待专家论证")
    assert (results[1].status, results[1].reason) == (Status.REVIEW, NOT_REVIEWED)


def test_a_decision_overrules_not_corrected() -> None:
    """A 待补正 project decided 受理 stays 受理; decided 待补正 it is still not corrected."""
    ledger = apply_decisions(Ledger([project("XZ2024-云龙-001", findings=[MISSING_FORM])], [], {}),
                             [decided("XZ2024-云龙-001", Status.ACCEPTED, "纸质申报书已核")])
    [result], _ = final_list(ledger)
    assert (result.status, result.reason) == (Status.ACCEPTED, "市局复核：纸质申报书已核")
    again = apply_decisions(Ledger([project("XZ2024-云龙-001", findings=[MISSING_FORM])], [], {}),
                            [decided("XZ2024-云龙-001", Status.NEEDS_FIX)])
    assert final_list(again)[0][0].code == "NOT_CORRECTED"


def test_the_final_list_laid_over_the_ledger_adds_not_corrected() -> None:
    """After the close-out the ledger shows the final status and the NOT_CORRECTED finding (逾期未补正)."""
    ledger = Ledger([project("XZ2024-云龙-001", findings=[MISSING_FORM])], [], {})
    results, _ = final_list(ledger)
    [p] = apply_final(ledger, results).projects
    assert p.status is Status.REJECTED
    assert [f.code for f in p.findings] == [Code.MISSING_FORM, Code.NOT_CORRECTED]
    assert p.findings[1].message.startswith("逾期未补正")


def test_the_result_notice_lists_final_statuses_and_escapes_district_text_in_html() -> None:
    """结果通知: subject, each project with 最终状态 and 原因; a project name with markup is text in the HTML."""
    hostile = project("XZ2024-云龙-002", name="<b>项目</b>", findings=[MISSING_FORM])
    results, _ = final_list(Ledger([project("XZ2024-云龙-001"), hostile], [], {}))
    rendered = render_result("云龙区", results, campaign="2024年徐州市高价值专利培育计划", deadline=DEADLINE,
                             tz=SHANGHAI, now=datetime(2024, 11, 9, 1, 0, tzinfo=UTC))
    assert rendered.subject == "结果通知：2024年徐州市高价值专利培育计划"
    assert "XZ2024-云龙-002  <b>项目</b>" in rendered.text and "最终状态：不予受理" in rendered.text
    assert "受理1个，待审核0个，不予受理1个" in rendered.text
    assert "&lt;b&gt;项目&lt;/b&gt;" in rendered.html and "<b>项目</b>" not in rendered.html
    assert rendered.text.rstrip().endswith("2024年11月9日")
