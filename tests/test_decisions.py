"""Staff decisions (spec 10.4): laid over the ledger, kept in the store, made one by one or from a workbook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from report_factories import finding, project
from support import SENDERS, imap_settings, make_config, on_time

from intake.cli import main
from intake.compose import compose
from intake.config import Config
from intake.decisions import ReviewRow, apply_decisions, check_rows
from intake.mailbox import FetchedMessage
from intake.models import Code, Decision, Ledger, Status
from intake.review import ReviewError, review_file, review_one
from intake.store import Store
from intake.worker import Worker
from samples.forms import form_pdf
from samples.projects import SampleProject, sample_project
from samples.tables import summary_table_xlsx

CST = on_time().tzinfo
SEEN = datetime(2024, 11, 5, 1, 1, tzinfo=UTC)  # the factories' project arrival
OVERLIMIT = finding(Code.AGENCY_OVERLIMIT)


def decision(i: int, number: str = "XZ2024-云龙-001", status: Status = Status.ACCEPTED, *,
             material_at: datetime = SEEN, reason: str = "经核实，机构仅实际参与一个项目") -> Decision:
    return Decision(i, number, status, reason, "王审核", datetime(2024, 11, 10, 9, 0, tzinfo=UTC) + timedelta(hours=i),
                    Status.REVIEW, material_at)


# -- laid over a ledger (pure) ----------------------------------------------------------------------


def test_a_decision_sets_the_status_and_keeps_the_rules_status_as_auto() -> None:
    """待审核 by the rules, 受理 by decision: 状态 受理, 自动判定 待审核; an undecided project is left alone."""
    ledger = Ledger([project("XZ2024-云龙-001", findings=[OVERLIMIT]), project("XZ2024-云龙-002")], [], {})
    decided = apply_decisions(ledger, [decision(1)])
    p, other = decided.projects
    assert (p.status, p.auto_status, p.decision_stale) == (Status.ACCEPTED, Status.REVIEW, False)
    assert other is ledger.projects[1] and other.auto_status is None
    assert ledger.projects[0].status is Status.REVIEW, "the rules' ledger is not changed"


def test_the_latest_decision_wins_and_all_are_listed_oldest_first() -> None:
    """Two decisions on one project: the later one is in force; Ledger.decisions keeps both in order."""
    ledger = Ledger([project("XZ2024-云龙-001", findings=[OVERLIMIT])], [], {})
    decided = apply_decisions(ledger, [decision(2, status=Status.REJECTED), decision(1)])
    assert decided.projects[0].status is Status.REJECTED
    assert [d.id for d in decided.decisions] == [1, 2]


def test_newer_material_makes_a_decision_stale_and_the_status_the_rules_again() -> None:
    """Material that arrived after the one decided on: 复核结论 kept, 状态 back to 自动判定."""
    p = project("XZ2024-云龙-001", findings=[OVERLIMIT], arrival=SEEN + timedelta(hours=1))
    [q] = apply_decisions(Ledger([p], [], {}), [decision(1)]).projects
    assert q.decision_stale and q.status is Status.REVIEW and q.decision is not None
    assert q.decision.status is Status.ACCEPTED


# -- rows of a staff copy (pure) ---------------------------------------------------------------------


def row(n: int, number: str = "XZ2024-云龙-001", conclusion: str = "受理", comment: str = "核实无误", *,
        auto: str = "待审核", material: str = "2024-11-05 09:01:00", decided_at: str = "") -> ReviewRow:
    return ReviewRow(n, number, conclusion, comment, auto, material, decided_at)


def reviewed_ledger() -> Ledger:
    return Ledger([project("XZ2024-云龙-001", findings=[OVERLIMIT]), project("XZ2024-云龙-002")], [], {})


def test_rows_with_a_conclusion_become_decisions_and_blank_rows_change_nothing() -> None:
    """A filled 复核结论 is a decision (with the project's 自动判定 and 来件时间); a blank one is skipped."""
    plan = check_rows([row(2), row(3, "XZ2024-云龙-002", "", "", auto="受理")], reviewed_ledger(), CST)
    assert plan.ok and plan.lines == ["row 2 XZ2024-云龙-001: 待审核 -> 受理"]
    [new] = plan.decisions
    assert (new.number, new.status, new.reason, new.auto_status, new.material_at) == (
        "XZ2024-云龙-001", Status.ACCEPTED, "核实无误", Status.REVIEW, SEEN)


@pytest.mark.parametrize(("bad", "reason"), [
    (row(3, "XZ2024-云龙-099"), "unknown 受理编号 'XZ2024-云龙-099'"),
    (row(3, "XZ2024-云龙-002", "通过", auto="受理"), "unknown status '通过'"),
    (row(3, "XZ2024-云龙-002", auto="待审核"), "自动判定 was 待审核, is now 受理"),
    (row(3, "XZ2024-云龙-002", auto="受理", material="2024-11-04 09:00:00"), "来件时间 was 2024-11-04 09:00:00"),
    (row(3, "XZ2024-云龙-002", "不予受理", "", auto="受理"), "复核意见 is empty"),
    (row(3), "受理编号 given twice (also row 2)"),
])
def test_one_bad_row_refuses_the_whole_file_with_a_line_naming_it(bad: ReviewRow, reason: str) -> None:
    """Unknown 受理编号, unknown status, a row changed since the copy, no reason, a project twice: the row is
    refused with its reason, and no decision of the file is kept."""
    plan = check_rows([row(2), bad], reviewed_ledger(), CST)
    assert not plan.ok and plan.decisions == [] and plan.refused == 1
    assert plan.lines[0] == "row 2 XZ2024-云龙-001: 待审核 -> 受理"
    assert plan.lines[1].startswith("row 3 ") and "refused" in plan.lines[1] and reason in plan.lines[1]


def test_a_row_repeating_the_decision_in_force_is_not_a_new_decision() -> None:
    """A copy made after a decision shows it in 复核结论/复核意见: left as it is, nothing new is kept; a
    decision made by someone else since the copy (复核时间 differs) refuses the row."""
    ledger = apply_decisions(reviewed_ledger(), [decision(1, reason="核实无误")])
    same = row(2, decided_at="2024-11-10 18:00:00")
    plan = check_rows([same], ledger, CST)
    assert plan.ok and plan.decisions == [] and "unchanged" in plan.lines[0]
    older_copy = check_rows([row(2, "XZ2024-云龙-001", "不予受理", "重新认定")], ledger, CST)
    assert not older_copy.ok and "复核时间 was (blank), is now 2024-11-10 18:00:00" in older_copy.lines[0]


# -- kept in the store, through the ledger ------------------------------------------------------------


def mail(n: int, district: str, projects: list[SampleProject], day: int, *, forms: bool = True) -> bytes:
    files = [(f"{district}申报汇总表.xlsx", summary_table_xlsx(district, [p.row for p in projects]))]
    if forms:
        files += [(f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"]))
                  for p in projects]
    return compose(sender=SENDERS[district], sender_name=f"{district}知识产权局", subject=f"{district}申报材料{n}",
                   attachments=files, message_id=f"<dec{n}@example.cn>", arrival=on_time(day))


def record(cfg: Config, store: Store, uid: int, raw: bytes, day: int) -> None:
    Worker(cfg, store).record(FetchedMessage(uid, on_time(day), len(raw), raw), 1, reply=False)


SHARED = sample_project(0).row["合作服务机构"]


def two_districts_sharing_an_agency(cfg: Config, store: Store) -> None:
    """云龙区 and 泉山区, one project each with the same agency: both 待审核 (AGENCY_OVERLIMIT)."""
    record(cfg, store, 1, mail(1, "云龙区", [sample_project(0, district="云龙区")], 4), 4)
    other = sample_project(1, district="泉山区").with_values(合作服务机构=SHARED)
    record(cfg, store, 2, mail(2, "泉山区", [other], 5), 5)


def sheet(path: Path, title: str) -> list[dict[str, Any]]:
    ws = load_workbook(path)[title]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path / "var", imap=imap_settings("127.0.0.1", 1, "staff", "unused"))


def test_a_decision_shows_in_the_ledger_and_in_review_record_after_every_rebuild(cfg: Config) -> None:
    """`intake review` keeps the decision; 项目台账 shows 状态 受理 with 自动判定 待审核 and the 复核 columns,
    复核记录 lists it; a rebuild from the store shows the same."""
    with Store(cfg.paths.data_dir / "intake.db") as store:
        two_districts_sharing_an_agency(cfg, store)
        line = review_one(store, cfg, "XZ2024-云龙-001", "受理", "机构实际只服务本项目", "王审核",
                          datetime(2024, 11, 10, 1, 0, tzinfo=UTC))
        assert line == "XZ2024-云龙-001: 待审核 -> 受理 (decided by 王审核)"
        for _ in range(2):
            Worker(cfg, store).write_ledger()
            rows = {r["受理编号"]: r for r in sheet(cfg.paths.data_dir / "ledger.xlsx", "项目台账")}
            yl = rows["XZ2024-云龙-001"]
            assert (yl["状态"], yl["自动判定"], yl["复核结论"], yl["复核意见"], yl["复核人"]) == (
                "受理", "待审核", "受理", "机构实际只服务本项目", "王审核")
            assert yl["复核时间"] == datetime(2024, 11, 10, 9, 0)
            qs = rows["XZ2024-泉山-001"]
            assert (qs["状态"], qs["自动判定"], qs["复核结论"]) == ("待审核", "待审核", None)
            [record_row] = sheet(cfg.paths.data_dir / "ledger.xlsx", "复核记录")
            assert (record_row["受理编号"], record_row["区县"], record_row["复核结论"], record_row["当前效力"]) == (
                "XZ2024-云龙-001", "云龙区", "受理", "有效")


def test_a_decision_survives_the_mail_being_recorded_again(cfg: Config) -> None:
    """Decisions are keyed by 受理编号, not by message: the messages' rows deleted and the same mail recorded
    again (new rows, as processing mail again does), the decision still holds."""
    with Store(cfg.paths.data_dir / "intake.db") as store:
        two_districts_sharing_an_agency(cfg, store)
        review_one(store, cfg, "XZ2024-云龙-001", "受理", "核实", "王审核", datetime(2024, 11, 10, tzinfo=UTC))
        with store.transaction() as db:
            for table in ("attachments", "findings", "reply_due", "outbox", "notices"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM messages")
        two_districts_sharing_an_agency(cfg, store)
        [yl] = [p for p in Worker(cfg, store).ledger().projects if p.district == "云龙区"]
        assert (yl.status, yl.auto_status) == (Status.ACCEPTED, Status.REVIEW)


def test_newer_material_makes_the_decision_stale_in_the_ledger(cfg: Config) -> None:
    """云龙区 sends its table again after the decision: 状态 back to 待审核, 复核结论 kept, 问题说明 asks for a
    new review, and 复核记录 says so."""
    with Store(cfg.paths.data_dir / "intake.db") as store:
        two_districts_sharing_an_agency(cfg, store)
        review_one(store, cfg, "XZ2024-云龙-001", "受理", "核实", "王审核", datetime(2024, 11, 10, tzinfo=UTC))
        record(cfg, store, 3, mail(3, "云龙区", [sample_project(0, district="云龙区")], 6), 6)
        Worker(cfg, store).write_ledger()
    [yl] = [r for r in sheet(cfg.paths.data_dir / "ledger.xlsx", "项目台账") if r["区县"] == "云龙区"]
    assert (yl["状态"], yl["自动判定"], yl["复核结论"]) == ("待审核", "待审核", "受理")
    assert yl["问题说明"].startswith("材料已更新，请重新复核\n")
    assert sheet(cfg.paths.data_dir / "ledger.xlsx", "复核记录")[0]["当前效力"] == "材料已更新，请重新复核"


def staff_copy(cfg: Config, tmp_path: Path, fill: dict[str, tuple[str, str]]) -> Path:
    """A copy of ledger.xlsx with 复核结论/复核意见 filled in for the given 受理编号."""
    book = load_workbook(cfg.paths.data_dir / "ledger.xlsx")
    ws = book["项目台账"]
    headers = [c.value for c in ws[1]]
    number, conclusion, comment = (headers.index(h) + 1 for h in ("受理编号", "复核结论", "复核意见"))
    for r in range(2, ws.max_row + 1):
        if (values := fill.get(ws.cell(r, number).value)) is not None:
            ws.cell(r, conclusion).value, ws.cell(r, comment).value = values
    copy = tmp_path / "复核.xlsx"
    book.save(copy)
    return copy


def test_review_from_a_workbook_applies_every_row_or_none(cfg: Config, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`intake review --from`: a copy with an unknown status is refused as a whole (exit 1, the row named,
    nothing kept); corrected, both rows are kept and shown in the rewritten ledger."""
    from support import config_toml

    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    with Store(cfg.paths.data_dir / "intake.db") as store:
        two_districts_sharing_an_agency(cfg, store)
        Worker(cfg, store).write_ledger()
    bad = staff_copy(cfg, tmp_path, {"XZ2024-云龙-001": ("受理", "核实"), "XZ2024-泉山-001": ("同意", "核实")})
    assert main(["review", "--config", str(config_path), "--from", str(bad), "--by", "王审核"]) == 1
    out = capsys.readouterr().out
    assert "row 2 XZ2024-云龙-001: 待审核 -> 受理" in out
    assert "row 3 XZ2024-泉山-001: refused: unknown status '同意'" in out and "nothing applied" in out
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert store.decisions() == []
    good = staff_copy(cfg, tmp_path, {"XZ2024-云龙-001": ("受理", "核实"), "XZ2024-泉山-001": ("不予受理", "重复申报")})
    assert main(["review", "--config", str(config_path), "--from", str(good), "--by", "王审核"]) == 0
    assert "2 decision(s) kept" in capsys.readouterr().out
    rows = {r["受理编号"]: r for r in sheet(cfg.paths.data_dir / "ledger.xlsx", "项目台账")}
    assert rows["XZ2024-云龙-001"]["状态"] == "受理" and rows["XZ2024-泉山-001"]["状态"] == "不予受理"
    assert [r["来源"] for r in sheet(cfg.paths.data_dir / "ledger.xlsx", "复核记录")] == ["复核.xlsx", "复核.xlsx"]
    # the same copy again: the rows repeat the decisions in force, so nothing new
    assert main(["review", "--config", str(config_path), "--from", str(good)]) == 1  # 复核时间 blank in the copy
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert len(store.decisions()) == 2


def test_a_row_changed_since_the_copy_was_made_is_refused(cfg: Config, tmp_path: Path) -> None:
    """Mail arriving after the copy was made (the project's 来件时间 changed): the row is refused, nothing kept."""
    with Store(cfg.paths.data_dir / "intake.db") as store:
        two_districts_sharing_an_agency(cfg, store)
        Worker(cfg, store).write_ledger()
        copy = staff_copy(cfg, tmp_path, {"XZ2024-云龙-001": ("受理", "核实")})
        record(cfg, store, 3, mail(3, "云龙区", [sample_project(0, district="云龙区")], 6), 6)
        applied = review_file(store, cfg, copy, "王审核", datetime(2024, 11, 10, tzinfo=UTC))
        assert not applied.ok and store.decisions() == []
        assert applied.lines[0].startswith(
            "row 2 XZ2024-云龙-001: refused: the project changed since this copy was made (来件时间")


def test_review_of_an_unknown_project_or_without_a_reason_is_refused(cfg: Config) -> None:
    """One line saying why; nothing kept."""
    with Store(cfg.paths.data_dir / "intake.db") as store:
        two_districts_sharing_an_agency(cfg, store)
        now = datetime(2024, 11, 10, tzinfo=UTC)
        with pytest.raises(ReviewError, match="unknown 受理编号 'XZ2024-云龙-009'"):
            review_one(store, cfg, "XZ2024-云龙-009", "受理", "核实", "王审核", now)
        with pytest.raises(ReviewError, match="needs a reason"):
            review_one(store, cfg, "XZ2024-云龙-001", "受理", " ", "王审核", now)
        assert store.decisions() == []


def test_resend_of_a_reply_not_sent_yet_is_refused(cfg: Config) -> None:
    """A district message recorded but not yet answered (its receipt is rendered and sent by the next poll):
    `intake resend` refuses with one line and queues nothing."""
    from intake.resend import ResendRefused, queue_resend

    with Store(cfg.paths.data_dir / "intake.db") as store:
        raw = mail(1, "云龙区", [sample_project(0, district="云龙区")], 4)
        Worker(cfg, store).record(FetchedMessage(1, on_time(4), len(raw), raw), 1)
        with pytest.raises(ResendRefused, match="not rendered yet: the next poll sends it"):
            queue_resend(store, cfg.mailbox.folder, 1, datetime.now(UTC))
        assert store.resends() == {}
