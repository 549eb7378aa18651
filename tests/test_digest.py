"""The staff digest page (reports/digest.py): counts per district, open problems, escaping, the countdown."""

from __future__ import annotations

import html as html_lib
from collections import Counter
from datetime import datetime, timedelta
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
