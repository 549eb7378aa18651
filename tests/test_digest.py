"""The staff digest page (reports/digest.py): counts per district, open problems, escaping, the countdown."""

from __future__ import annotations

import html as html_lib
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from report_factories import DEADLINE, QUOTAS, SHANGHAI, finding, message, project, sample_ledger

from intake.models import Code, Ledger, Outcome, ReplyInfo, ReplyKind, ReplyState, Status, UnmatchedForm
from reports.digest import render_digest, time_left, write_digest

CAMPAIGN = "2024年徐州市高价值专利培育计划"
BEFORE = datetime(2024, 11, 6, 9, 0, tzinfo=SHANGHAI)
HOSTILE = "<script>alert(1)</script>"


class _DistrictCells(HTMLParser):
    """The digest's district table as {district: {status or "项目数": number}}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, int]] = {}
        self._row: str | None = None
        self._status: str | None = None
        self._column = 0
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-district"):
            self._row, self._column = a["data-district"], 0
            self.rows[self._row] = {}
        elif tag == "td" and self._row:
            self._column += 1
            self._status, self._text = a.get("data-status"), ""

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row:
            if self._status:
                self.rows[self._row][self._status] = int(self._text)
            elif self._column == 2:
                self.rows[self._row]["项目数"] = int(self._text)
        elif tag == "tr":
            self._row = None


def render(ledger: Ledger, messages: Any = (), replies: Any = None, now: datetime = BEFORE) -> str:
    return render_digest(ledger, list(messages), replies or {}, campaign=CAMPAIGN, deadline=DEADLINE,
                         now=now, tz=SHANGHAI, districts=list(QUOTAS))


def district_cells(page: str) -> dict[str, dict[str, int]]:
    parser = _DistrictCells()
    parser.feed(page)
    return parser.rows


def test_counts_per_district_match_the_projects_statuses() -> None:
    """Each district row counts its projects by the spec's status names, and 合计 adds them up."""
    ledger, messages, replies = sample_ledger(n_projects=12)
    cells = district_cells(render(ledger, messages, replies))
    assert list(cells) == [*QUOTAS, "合计"]
    for district in QUOTAS:
        projects = [p for p in ledger.projects if p.district == district]
        expected = Counter(p.status.value for p in projects)
        assert cells[district] == {"项目数": len(projects), **{s.value: expected[s.value] for s in Status}}
    everything = Counter(p.status.value for p in ledger.projects)
    assert cells["合计"] == {"项目数": len(ledger.projects), **{s.value: everything[s.value] for s in Status}}
    assert sum(everything.values()) == 12 and len(everything) == 4  # the sample has every status


def test_a_district_without_projects_still_has_its_row_of_zeros() -> None:
    """Config order decides the rows; a district that sent nothing shows zeros, not a gap."""
    ledger = Ledger([project("XZ2024-云龙-001")], [], dict(QUOTAS))
    cells = district_cells(render(ledger))
    assert cells["泉山区"] == {"项目数": 0, "受理": 0, "待补正": 0, "待审核": 0, "不予受理": 0}
    assert cells["云龙区"]["受理"] == 1


def test_open_problems_are_listed_in_plain_chinese() -> None:
    """Project findings, unmatched forms, failed/unknown-sender messages and refused replies all appear."""
    bad = project("XZ2024-云龙-002", findings=[finding(Code.FUNDING_OVER_CAP)])
    fine = project("XZ2024-云龙-001", name="没有问题的项目")
    broken = message(3, "云龙区", outcome=Outcome.ERROR, error="附件解码失败：base64 数据不完整")
    stranger = message(4, None, sender="someone@elsewhere.cn", outcome=Outcome.UNKNOWN_SENDER)
    refused = {1: ReplyInfo(1, ReplyKind.RECEIPT, ReplyState.FAILED, error="550 Mailbox not found")}
    ledger = Ledger([fine, bad], [UnmatchedForm("云龙区", "多余的申报书.pdf", 1)], dict(QUOTAS))
    page = render(ledger, [message(1), broken, stranger], refused)
    assert "新建项目申请资助金额不得超过50万元" in page and "【需补正】" in page
    assert "XZ2024-云龙-002" in page and "没有问题的项目" not in page  # only projects with findings
    assert "多余的申报书.pdf" in page
    assert "附件解码失败：base64 数据不完整" in page and "someone@elsewhere.cn" in page
    assert "550 Mailbox not found" in page


def test_no_problems_says_so() -> None:
    """An all-clear ledger says there is nothing to do instead of showing empty tables."""
    page = render(Ledger([project("XZ2024-云龙-001")], [], dict(QUOTAS)), [message(1)])
    assert "目前没有待处理的问题" in page and 'id="problem-projects"' not in page


def test_sender_text_never_becomes_markup() -> None:
    """A project name, file name, subject, sender, error or SMTP answer holding HTML is shown as text."""
    hostile = project("XZ2024-云龙-001", name=HOSTILE, values={"牵头申报单位": HOSTILE},
                      findings=[finding(Code.MISMATCH, HOSTILE)])
    ledger = Ledger([hostile], [UnmatchedForm("云龙区", HOSTILE + ".pdf", 2)], dict(QUOTAS))
    messages = [message(2, None, sender=HOSTILE, subject=HOSTILE, outcome=Outcome.UNKNOWN_SENDER),
                message(3, outcome=Outcome.ERROR, error=HOSTILE, subject=HOSTILE)]
    replies = {3: ReplyInfo(3, ReplyKind.RECEIPT, ReplyState.FAILED, error=HOSTILE)}
    page = render(ledger, messages, replies)
    assert "<script" not in page.lower()
    assert page.count(html_lib.escape(HOSTILE)) >= 8


def test_hostile_campaign_and_district_names_are_escaped_too() -> None:
    """Even config text (campaign, district names) is escaped: the page is autoescaped throughout."""
    ledger = Ledger([project("X-1", district=HOSTILE)], [], {HOSTILE: 1})
    page = render_digest(ledger, [], {}, campaign=HOSTILE, deadline=DEADLINE, now=BEFORE, tz=SHANGHAI,
                         districts=[HOSTILE])
    assert "<script" not in page.lower()


def test_countdown_before_the_deadline() -> None:
    """Before the deadline the page shows the days, hours and minutes left, in Beijing time."""
    page = render(Ledger([], [], dict(QUOTAS)), now=BEFORE)
    assert "还剩 2天14小时59分" in page and "已截止" not in page
    assert "2024-11-08 23:59:59" in page and "2024-11-06 09:00:00" in page  # deadline, generated at


def test_countdown_after_the_deadline() -> None:
    """One second after the deadline the page says 已截止."""
    page = render(Ledger([], [], dict(QUOTAS)), now=DEADLINE + timedelta(seconds=1))
    assert "已截止" in page and "还剩" not in page


def test_time_left_wording() -> None:
    """The countdown drops leading zero units and counts the deadline instant itself as not yet passed."""
    assert time_left(DEADLINE, DEADLINE - timedelta(minutes=5, seconds=30)) == "还剩 5分"
    assert time_left(DEADLINE, DEADLINE - timedelta(hours=3)) == "还剩 3小时0分"
    assert time_left(DEADLINE, DEADLINE - timedelta(days=1)) == "还剩 1天0小时0分"
    assert time_left(DEADLINE, DEADLINE) == "还剩 0分"
    assert time_left(DEADLINE, DEADLINE + timedelta(microseconds=1)) == "已截止"


def test_rendering_is_pure() -> None:
    """Same inputs, same page: no clock is read while rendering."""
    ledger, messages, replies = sample_ledger()
    assert render(ledger, messages, replies) == render(ledger, messages, replies)


def test_write_digest_replaces_the_page_atomically(tmp_path: Path) -> None:
    """The page is written whole, replacing the previous one, with no temporary file left behind."""
    target = tmp_path / "digest.html"
    target.write_text("old", encoding="utf-8")
    write_digest(target, "<p>新的日报</p>")
    assert target.read_text(encoding="utf-8") == "<p>新的日报</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["digest.html"]
    assert target.stat().st_mode & 0o777 == 0o644


# -- the figures: totals and agreement with the workbook -----------------------------


class _Tables(HTMLParser):
    """Every table of the page as {id: [[cell text, ...], ...]} (header cells included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None


def page_tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def district_table(page: str) -> dict[str, dict[str, str]]:
    header, *body = page_tables(page)["districts"]
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def test_total_row_adds_decimal_amounts() -> None:
    """合计 adds the amounts as numbers: 12.5 + 30.25 + 0.1 is 42.85, and a large total keeps its decimals."""
    projects = [project("XZ2024-云龙-001", values={"申请资助金额": 12.5}, city_amount=6.25),
                project("XZ2024-云龙-002", values={"申请资助金额": 30.25}, city_amount=15.125),
                project("XZ2024-鼓楼-001", "鼓楼区", values={"申请资助金额": 0.1}, city_amount=0.1),
                project("XZ2024-泉山-001", "泉山区", values={"申请资助金额": "五十"}, city_amount=0.0)]
    table = district_table(render(Ledger(projects, [], dict(QUOTAS))))
    assert (table["云龙区"]["申请资助合计（万元）"], table["云龙区"]["市级承担合计（万元）"]) == ("42.75", "21.375")
    assert (table["合计"]["申请资助合计（万元）"], table["合计"]["市级承担合计（万元）"]) == ("42.85", "21.475")
    assert table["泉山区"]["申请资助合计（万元）"] == "0", "an amount written as text adds nothing"
    big = [project(f"XZ2024-云龙-{i:03}", values={"申请资助金额": 41152.25}) for i in range(3)]
    assert district_table(render(Ledger(big, [], dict(QUOTAS))))["合计"]["申请资助合计（万元）"] == "123456.75"


def test_every_figure_of_the_digest_is_the_workbooks(tmp_path: Path) -> None:
    """The digest and ledger.xlsx, written from the same ledger, show the same numbers: per district and 合计
    the projects by status, quota and amounts (区县汇总), the messages by outcome (来件登记), the projects with
    problems (问题清单), the forms matching no row."""
    from openpyxl import load_workbook

    from reports.ledger import write_ledger

    ledger, messages, replies = sample_ledger(n_projects=40, n_messages=12)
    ledger.projects[0].values["申请资助金额"] = 12.35
    ledger.projects[1].values["申请资助金额"] = 30.25
    ledger.projects[2].city_amount = 6.175
    ledger.unmatched_forms.append(UnmatchedForm("云龙区", "多余.pdf", messages[0].uid))
    messages[1] = replace(messages[1], outcome=Outcome.ERROR, error="附件解码失败")
    page = render(ledger, messages, replies)
    write_ledger(tmp_path / "ledger.xlsx", ledger, messages, replies, SHANGHAI, data_dir=tmp_path)
    book = load_workbook(tmp_path / "ledger.xlsx")

    summary = {r[0]: r for r in book["区县汇总"].iter_rows(min_row=2, values_only=True)}
    headers = [c.value for c in book["区县汇总"][1]]
    digest = district_table(page)
    assert list(digest) == list(summary)  # the same districts, in the same order, and 合计
    for district, row in summary.items():
        sheet = dict(zip(headers, row, strict=True))
        shown = digest[district]
        for name in ("项目数", "受理", "待补正", "待审核", "不予受理"):
            assert int(shown[name]) == sheet[name], (district, name)
        assert (int(shown["名额"]) if shown["名额"] else None) == sheet["名额"], district
        for name in ("申请资助合计（万元）", "市级承担合计（万元）"):
            assert Decimal(shown[name]) == Decimal(str(sheet[name])), (district, name)

    outcomes = Counter(c.value for c in book["来件登记"]["H"][1:])
    shown_outcomes = re.search(r"来件处理结果：([^<]*)</p>", page).group(1)
    for part in shown_outcomes.split("，"):
        label, count = part.rsplit(" ", 1)
        assert int(count) == outcomes.get(label, 0), label
    assert re.search(r"来件 (\d+) 封", page).group(1) == str(book["来件登记"].max_row - 1)
    problem_numbers = {r[5] for r in book["问题清单"].iter_rows(min_row=2, values_only=True) if r[5]}
    assert f"有问题的项目（{len(problem_numbers)}个）" in page
    assert len(page_tables(page)["problem-projects"]) - 1 == len(problem_numbers)
    failed = sum(str(v).startswith("出错") for v in outcomes.elements())
    assert f"未能处理的来件（{failed + outcomes.get('未知发件人', 0)}封）" in page
    assert f"未对应到汇总表的申报书（{len(ledger.unmatched_forms)}份）" in page
