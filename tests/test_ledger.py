"""The ledger workbook (spec sections 6 and 10.7), read back with openpyxl."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from report_factories import (
    SHANGHAI,
    attachment,
    finding,
    message,
    project,
    sample_ledger,
)

from intake.models import (
    Code,
    Ledger,
    OtherFile,
    Outcome,
    ReplyInfo,
    ReplyKind,
    ReplyState,
    UnmatchedForm,
)
from reports import ledger as ledger_module
from reports.ledger import display_width, write_ledger

# Copied from INTAKE-SPEC.md sections 6 and 10.7, on purpose not from reports.ledger.
SPEC_SHEETS = {
    "项目台账": [
        "受理编号", "区县", "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "项目类别",
        "技术领域", "合作服务机构", "有效专利数", "有效发明专利数", "PCT申请数", "折算有效发明专利数",
        "申请资助金额（万元）", "市级承担（万元）", "区级承担（万元）", "状态", "问题代码", "问题说明",
        "来件时间", "来源邮件", "申报书文件", "识别方式", "盖章",
        "自动判定", "复核结论", "复核意见", "复核人", "复核时间",
    ],
    "来件登记": [
        "UID", "Message-ID", "发件人", "区县", "主题", "收到时间", "附件", "处理结果", "问题代码",
        "回复类型", "回复时间", "补发",
    ],
    "问题清单": ["区县", "项目名称", "问题代码", "严重程度", "说明", "受理编号"],
    "区县汇总": [
        "区县", "项目数", "受理", "待补正", "待审核", "不予受理", "名额", "申请资助合计（万元）",
        "市级承担合计（万元）", "区级承担合计（万元）", "盖章汇总表",
    ],
    "其他来件": ["区县", "UID", "文件名", "识别为", "所属项目类型", "说明"],
    "复核记录": ["受理编号", "区县", "项目名称", "自动判定", "复核结论", "复核意见", "复核人", "复核时间", "来源",
             "当前效力"],
    # 统计: the spec names the sheet and its dimensions; these headers are the ledger's own
    "统计": ["区县", "项目类别", "受理", "待补正", "待审核", "不予受理", "项目数", "受理（万元）", "待补正（万元）",
           "待审核（万元）", "不予受理（万元）", "申请资助金额（万元）"],
}
FORMULA_LOOKING = ['=HYPERLINK("http://x","y")', "+1", "-a", "@SUM(A1)"]


# -- builders -----------------------------------------------------------------


def small_ledger() -> tuple[Ledger, list[Any], dict[int, ReplyInfo]]:
    """Two districts, one project of each status, three messages with different replies."""
    form = attachment("徐工集团申报书.pdf", id=7)
    files = (attachment("汇总表.xlsx", "summary_table", id=1), form,
             attachment("扫描.pdf", "error", id=3, error_code="UNREADABLE_FILE", error_reason="文件已加密"))
    messages = [
        message(1, "云龙区", attachments=files, arrival=datetime(2024, 11, 5, 1, 2, 3, tzinfo=UTC),
                findings=(finding(Code.UNREADABLE_FILE, "文件“扫描.pdf”无法读取：文件已加密", "扫描.pdf"),)),
        message(2, "鼓楼区", attachments=(attachment("汇总表.xlsx", "summary_table", id=4),)),
        message(3, "云龙区", outcome=Outcome.LATE, findings=(finding(Code.LATE),),
                arrival=datetime(2024, 11, 9, 2, 0, tzinfo=UTC)),
    ]
    projects = [
        project("XZ2024-云龙-001", "云龙区", "工程机械智能控制专利培育", form=form, source_uids=[1],
                arrival=datetime(2024, 11, 5, 1, 2, 3, tzinfo=UTC)),
        project("XZ2024-云龙-002", "云龙区", "矿山安全监测专利培育",
                findings=[finding(Code.MISMATCH), finding(Code.FUNDING_OVER_CAP)]),
        project("XZ2024-鼓楼-001", "鼓楼区", "光电材料专利培育", findings=[finding(Code.SCANNED_FORM)],
                values={"申请资助金额": 40}, city_amount=40.0, district_amount=0.0),
        project("XZ2024-鼓楼-002", "鼓楼区", "多晶硅专利培育",
                findings=[finding(Code.PATENTS_BELOW_THRESHOLD)]),
    ]
    replies = {
        1: ReplyInfo(1, ReplyKind.RECEIPT, ReplyState.SENT, datetime(2024, 11, 5, 1, 10, tzinfo=UTC)),
        3: ReplyInfo(3, ReplyKind.LATE, ReplyState.FAILED, error="554 DT:SPM"),
    }
    quotas = {"云龙区": 3, "鼓楼区": 1, "泉山区": 4}
    ledger = Ledger(projects, [UnmatchedForm("鼓楼区", "多余.pdf", 2)], quotas)
    return ledger, messages, replies


def write(tmp_path: Path, ledger: Ledger, messages: list[Any], replies: dict[int, ReplyInfo]) -> Path:
    path = tmp_path / "ledger.xlsx"
    write_ledger(path, ledger, messages, replies, SHANGHAI, data_dir=tmp_path)
    return path


@pytest.fixture
def book(tmp_path: Path) -> Any:
    path = write(tmp_path, *small_ledger())
    return load_workbook(path)


def rows(ws: Worksheet) -> list[dict[str, Any]]:
    header = [c.value for c in ws[1]]
    return [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]


def column(ws: Worksheet, name: str) -> list[Any]:
    """The cells of the column headed ``name``, without the header."""
    index = [c.value for c in ws[1]].index(name)
    return [r[index] for r in ws.iter_rows(min_row=2)]


# -- structure ------------------------------------------------------------------


def test_sheet_names_and_headers_match_the_spec(book: Any) -> None:
    """The sheets come in the spec's order with the spec's header text in row 1."""
    assert book.sheetnames == list(SPEC_SHEETS)
    for title, headers in SPEC_SHEETS.items():
        assert [c.value for c in book[title][1]] == headers, title


def test_every_sheet_has_frozen_header_and_filter_over_all_rows(book: Any) -> None:
    """Staff scroll and filter: row 1 is frozen and the filter spans every column and row (but 合计)."""
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2"
        if ws.title == "统计":  # the filter covers its first table, without 合计
            last = [c.value for c in ws["A"]].index("合计")
        else:
            last = ws.max_row - (ws.title == "区县汇总")
        assert ws.auto_filter.ref == f"A1:{ws.cell(1, ws.max_column).column_letter}{last}"


def test_an_empty_ledger_still_has_the_headers(tmp_path: Path) -> None:
    """Before any mail arrives the workbook already shows the four sheets and their headers."""
    book = load_workbook(write(tmp_path, Ledger([], [], {"云龙区": 3}), [], {}))
    assert [c.value for c in book["项目台账"][1]] == SPEC_SHEETS["项目台账"]
    assert book["项目台账"].max_row == 1
    assert [c.value for c in book["区县汇总"][2]][:2] == ["云龙区", 0]


# -- 项目台账 ------------------------------------------------------------------------


def test_project_row_carries_the_project_values(book: Any) -> None:
    """A project row shows its values, codes, reasons, sources and arrival in Shanghai time."""
    first, second = rows(book["项目台账"])[:2]
    assert first["受理编号"] == "XZ2024-云龙-001" and first["项目类别"] == "新建"
    assert first["统一社会信用代码"] == "91320300MA1MXXXX0X"
    assert first["来件时间"] == datetime(2024, 11, 5, 9, 2, 3)
    assert first["来源邮件"] == "UID 1"
    assert second["问题代码"] == "FUNDING_OVER_CAP,MISMATCH"
    reasons = [finding(Code.MISMATCH).message, finding(Code.FUNDING_OVER_CAP).message]
    assert second["问题说明"].split("\n") == reasons
    assert second["状态"] == "待补正"


def test_numbers_are_numeric_cells(book: Any) -> None:
    """Counts and amounts are numbers staff can sum, not text."""
    ws = book["项目台账"]
    for name in ("有效专利数", "有效发明专利数", "PCT申请数", "折算有效发明专利数", "申请资助金额（万元）",
                 "市级承担（万元）", "区级承担（万元）"):
        cells = column(ws, name)
        assert all(c.data_type == "n" and isinstance(c.value, int | float) for c in cells), name
    assert column(ws, "申请资助金额（万元）")[2].value == 40


def test_credit_code_stored_as_number_is_written_as_text(tmp_path: Path) -> None:
    """A credit code a spreadsheet held as a number comes out as its digits, as text."""
    p = project("XZ2024-云龙-001", values={"统一社会信用代码": 913203000000000001.0})
    book = load_workbook(write(tmp_path, Ledger([p], [], {"云龙区": 3}), [], {}))
    cell = column(book["项目台账"], "统一社会信用代码")[0]
    assert cell.data_type == "s" and cell.value == str(int(913203000000000001.0))


def test_form_cell_links_to_the_archived_original(book: Any) -> None:
    """申报书文件 shows the file name and links to the archived copy, relative to the workbook."""
    cell = column(book["项目台账"], "申报书文件")[0]
    form = attachment("徐工集团申报书.pdf", id=7)
    assert cell.value == "徐工集团申报书.pdf"
    assert cell.hyperlink.target == form.path
    assert cell.font.u == "single" and cell.data_type == "s"
    assert column(book["项目台账"], "申报书文件")[1].value is None


def test_every_form_cell_links_to_its_own_form(tmp_path: Path) -> None:
    """Each project's 申报书文件 cell, and no other cell, links to that project's archived form."""
    ledger, messages, replies = sample_ledger(40, 12)
    book = load_workbook(write(tmp_path, ledger, messages, replies))
    cells = column(book["项目台账"], "申报书文件")
    assert len(cells) == len(ledger.projects) and any(p.form is None for p in ledger.projects)
    for p, cell in zip(ledger.projects, cells, strict=True):
        if p.form is None:
            assert cell.value is None and cell.hyperlink is None
        else:
            assert (cell.value, cell.hyperlink.target) == (p.form.filename, p.form.path)
    linked = [c.coordinate for ws in book.worksheets for r in ws.iter_rows() for c in r if c.hyperlink]
    assert linked == [c.coordinate for c in cells if c.hyperlink]


def test_status_cells_are_coloured_by_status(book: Any) -> None:
    """受理 green, 待补正 orange, 待审核 yellow, 不予受理 red, each a light solid fill."""
    expected = {"受理": "00C6EFCE", "待补正": "00FCD5B4", "待审核": "00FFEB9C", "不予受理": "00FFC7CE"}
    cells = column(book["项目台账"], "状态")
    assert {c.value for c in cells} == set(expected)
    for c in cells:
        assert c.fill.fill_type == "solid" and c.fill.fgColor.rgb == expected[c.value]


# -- text that looks like a formula ---------------------------------------------------


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A ledger whose every sender-supplied text looks like a formula."""
    a, b, c, d = FORMULA_LOOKING
    p = project("XZ2024-云龙-001", name=a, values={"牵头申报单位": b, "技术领域": c, "合作服务机构": d},
                findings=[finding(Code.MISMATCH, a)], form=attachment(a + ".pdf", id=9))
    m = message(1, subject=a, sender=b, message_id=c, attachments=(attachment(d, "unrecognized", id=8),))
    return write(tmp_path, Ledger([p], [], {"云龙区": 3}), [m], {})


def test_formula_looking_text_reads_back_as_the_same_text(hostile: Path) -> None:
    """=HYPERLINK(...), +1, -a and @SUM(A1) from senders come back identical, as strings."""
    book = load_workbook(hostile)
    ledger_row = {c.value: c for c in book["项目台账"][2]}
    assert set(FORMULA_LOOKING) <= set(ledger_row)
    for text in FORMULA_LOOKING:
        assert ledger_row[text].data_type == "s"
    subject = column(book["来件登记"], "主题")[0]
    assert subject.value == FORMULA_LOOKING[0] and subject.data_type == "s"
    assert column(book["问题清单"], "说明")[0].value == FORMULA_LOOKING[0]


def test_no_sheet_contains_a_formula(hostile: Path) -> None:
    """The file itself holds no formula element, so no spreadsheet program can evaluate one."""
    with zipfile.ZipFile(hostile) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == len(SPEC_SHEETS)
        assert not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)


def test_formula_looking_text_keeps_the_quote_prefix(hostile: Path) -> None:
    """Such cells carry Excel's quote prefix, so editing one in Excel keeps it text."""
    cells = {c.value: c for c in load_workbook(hostile)["项目台账"][2]}
    assert all(cells[t].quotePrefix for t in FORMULA_LOOKING)


def test_control_characters_are_dropped_not_fatal(tmp_path: Path) -> None:
    """A subject with characters XML cannot hold is written without them instead of failing the poll."""
    m = message(1, subject="申报\x01材料\x0b")
    book = load_workbook(write(tmp_path, Ledger([], [], {}), [m], {}))
    assert column(book["来件登记"], "主题")[0].value == "申报材料"


# -- 来件登记, 问题清单, 区县汇总 -----------------------------------------------------------


def test_message_sheet_has_one_row_per_message(book: Any) -> None:
    """Each message shows its files as recognized, its outcome, codes and the reply owed."""
    first, second, third = rows(book["来件登记"])
    assert first["UID"] == 1 and first["区县"] == "云龙区" and first["收到时间"] == datetime(2024, 11, 5, 9, 2, 3)
    assert first["附件"].split("\n") == ["汇总表.xlsx（汇总表）", "徐工集团申报书.pdf（申报书）",
                                         "扫描.pdf（无法读取：文件已加密）"]
    assert (first["处理结果"], first["问题代码"]) == ("已处理", "UNREADABLE_FILE")
    assert (first["回复类型"], first["回复时间"]) == ("回执", datetime(2024, 11, 5, 9, 10))
    assert (second["回复类型"], second["回复时间"]) == ("无", None)
    assert (third["处理结果"], third["回复类型"]) == ("逾期", "逾期通知")
    assert third["回复时间"] == "发送失败：554 DT:SPM"


def test_unmatched_form_is_marked_in_the_message_row(tmp_path: Path) -> None:
    """A form that matched no summary row says so next to its name."""
    m = message(2, "鼓楼区", attachments=(attachment("多余.pdf", id=5),))
    book = load_workbook(write(tmp_path, Ledger([], [UnmatchedForm("鼓楼区", "多余.pdf", 2)], {}), [m], {}))
    assert column(book["来件登记"], "附件")[0].value == "多余.pdf（申报书，未对应到汇总表中的项目）"


def test_finding_sheet_lists_project_then_message_findings(book: Any) -> None:
    """Every project finding has a row, then every message-level finding, named by its message."""
    found = [(r["区县"], r["项目名称"], r["问题代码"], r["严重程度"]) for r in rows(book["问题清单"])]
    assert found == [
        ("云龙区", "矿山安全监测专利培育", "MISMATCH", "需补正"),
        ("云龙区", "矿山安全监测专利培育", "FUNDING_OVER_CAP", "需补正"),
        ("鼓楼区", "光电材料专利培育", "SCANNED_FORM", "待审核"),
        ("鼓楼区", "多晶硅专利培育", "PATENTS_BELOW_THRESHOLD", "不予受理"),
        ("云龙区", "（邮件 UID 1）扫描.pdf", "UNREADABLE_FILE", "需补正"),
        ("云龙区", "（邮件 UID 3）", "LATE", "不予受理"),
    ]
    assert rows(book["问题清单"])[0]["说明"] == finding(Code.MISMATCH).message
    severity = [c.fill.fgColor.rgb for c in column(book["问题清单"], "严重程度")[:4]]
    assert severity == ["00FCD5B4", "00FCD5B4", "00FFEB9C", "00FFC7CE"]


def test_district_summary_counts_and_sums_in_config_order(book: Any) -> None:
    """One row per configured district, in config order, with counts by status, quota and amounts."""
    summary = [list(r.values()) for r in rows(book["区县汇总"])]
    assert summary == [
        ["云龙区", 2, 1, 1, 0, 0, 3, 100, 50, 50, "未收到"],
        ["鼓楼区", 2, 0, 0, 1, 1, 1, 90, 65, 25, "未收到"],
        ["泉山区", 0, 0, 0, 0, 0, 4, 0, 0, 0, "未收到"],
        ["合计", 4, 1, 1, 1, 1, 8, 190, 115, 75, "已收到0个"],
    ]


def test_district_summary_has_a_status_bar_chart(book: Any) -> None:
    """区县汇总 carries a bar chart with one series per status."""
    charts = book["区县汇总"]._charts
    assert len(charts) == 1
    assert charts[0].tagname == "barChart" and len(charts[0].series) == 4


def test_project_of_an_unconfigured_district_still_counts(tmp_path: Path) -> None:
    """A district missing from the config gets its own summary row after the configured ones."""
    book = load_workbook(write(tmp_path, Ledger([project("X-1", "新城区")], [], {"云龙区": 3}), [], {}))
    assert [r["区县"] for r in rows(book["区县汇总"])] == ["云龙区", "新城区", "合计"]
    assert rows(book["区县汇总"])[1]["名额"] is None


# -- spec 10.7: outcomes in Chinese, date-time cells, 合计, 盖章汇总表, 受理编号, 其他来件 ------------------


def test_every_outcome_reads_in_chinese(tmp_path: Path) -> None:
    """处理结果 is 已处理, 逾期, 重复, 自动回复, 未知发件人 or 出错, never the English outcome."""
    messages = [message(i, outcome=o) for i, o in enumerate(Outcome, start=1)]
    book = load_workbook(write(tmp_path, Ledger([], [], {}), messages, {}))
    assert [c.value for c in column(book["来件登记"], "处理结果")] == [
        "已处理", "逾期", "重复", "自动回复", "未知发件人", "出错"]


def test_times_are_date_time_cells_in_shanghai_shown_as_date_and_time(book: Any) -> None:
    """来件时间, 收到时间 and 回复时间 are date-time cells (Beijing time) formatted yyyy-mm-dd hh:mm:ss."""
    cells = [column(book["项目台账"], "来件时间")[0], column(book["来件登记"], "收到时间")[0],
             column(book["来件登记"], "回复时间")[0]]
    assert [c.value for c in cells] == [datetime(2024, 11, 5, 9, 2, 3), datetime(2024, 11, 5, 9, 2, 3),
                                        datetime(2024, 11, 5, 9, 10)]
    assert all(c.is_date and c.number_format == "yyyy-mm-dd hh:mm:ss" for c in cells)
    assert column(book["来件登记"], "回复时间")[2].value == "发送失败：554 DT:SPM", "a state stays text"


def test_a_date_in_a_districts_table_stays_a_date(tmp_path: Path) -> None:
    """A date a summary table held (in any column) is a date cell shown yyyy-mm-dd, next to normal cells."""
    p = project("X-1", values={"合作服务机构": date(2024, 10, 30), "技术领域": "新材料"})
    book = load_workbook(write(tmp_path, Ledger([p, project("X-2")], [], {}), [], {}))
    cells = column(book["项目台账"], "合作服务机构")
    assert cells[0].is_date and cells[0].value == datetime(2024, 10, 30) and cells[0].number_format == "yyyy-mm-dd"
    assert cells[1].value == "徐州某知识产权代理有限公司" and not cells[1].is_date
    assert column(book["项目台账"], "技术领域")[1].number_format == "General"


def test_district_summary_marks_the_stamped_tables_and_its_total_row_counts_them(tmp_path: Path) -> None:
    """盖章汇总表 says 已收到 for a district whose stamped table arrived, 未收到 otherwise; 合计 sums."""
    ledger, messages, replies = small_ledger()
    ledger.stamped_tables = {"鼓楼区"}
    summary = rows(load_workbook(write(tmp_path, ledger, messages, replies))["区县汇总"])
    assert [(r["区县"], r["盖章汇总表"]) for r in summary] == [
        ("云龙区", "未收到"), ("鼓楼区", "已收到"), ("泉山区", "未收到"), ("合计", "已收到1个")]


def test_total_row_sums_decimal_amounts_and_the_chart_leaves_it_out(tmp_path: Path) -> None:
    """合计 adds decimal amounts exactly (to 4 places); the status chart covers the districts only."""
    projects = [project("XZ2024-云龙-001", values={"申请资助金额": 12.35}, city_amount=6.175, district_amount=6.175),
                project("XZ2024-鼓楼-001", "鼓楼区", values={"申请资助金额": 0.1}, city_amount=0.1,
                        district_amount=0.0)]
    book = load_workbook(write(tmp_path, Ledger(projects, [], {"云龙区": 3, "鼓楼区": 2}), [], {}))
    total = rows(book["区县汇总"])[-1]
    assert (total["区县"], total["项目数"], total["名额"]) == ("合计", 2, 5)
    assert (total["申请资助合计（万元）"], total["市级承担合计（万元）"], total["区级承担合计（万元）"]) == (
        12.45, 6.275, 6.175)
    [chart] = book["区县汇总"]._charts
    assert chart.series[0].val.numRef.f.endswith("$3"), "rows 2-3: the two districts, not 合计"


def test_finding_sheet_names_the_project_number(book: Any) -> None:
    """问题清单's last column is the project's 受理编号, empty for a message-level finding."""
    numbers = [r["受理编号"] for r in rows(book["问题清单"])]
    assert numbers == ["XZ2024-云龙-002", "XZ2024-云龙-002", "XZ2024-鼓楼-001", "XZ2024-鼓楼-002", None, None]


def test_other_files_sheet_lists_what_was_not_merged(tmp_path: Path) -> None:
    """其他来件 has one row per file recorded but not merged: district, UID, name, kind, program, note."""
    other = [OtherFile("云龙区", 4, "云龙区商标品牌汇总表.xlsx", "汇总表", "高价值商标品牌培育计划",
                       "其他项目的材料，未并入项目台账"),
             OtherFile("泉山区", 6, "=cmd.pdf", "申报书", "知识产权质押融资", "")]
    book = load_workbook(write(tmp_path, Ledger([], [], {}, other_files=other), [], {}))
    found = [tuple(r.values()) for r in rows(book["其他来件"])]
    assert found == [("云龙区", 4, "云龙区商标品牌汇总表.xlsx", "汇总表", "高价值商标品牌培育计划",
                      "其他项目的材料，未并入项目台账"),
                     ("泉山区", 6, "=cmd.pdf", "申报书", "知识产权质押融资", None)]
    assert column(book["其他来件"], "文件名")[1].data_type == "s"


# -- 统计 ------------------------------------------------------------------------------


def statistics_rows(book: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """统计's two tables (without their header rows): by 区县 × 项目类别, then by 技术领域."""
    values = [r for r in book["统计"].iter_rows(min_row=2, values_only=True)]
    gap = values.index((None,) * len(values[0]))
    assert values[gap + 1][0] == "技术领域"
    return values[:gap], values[gap + 2:]


def test_statistics_count_projects_and_sum_the_money_by_district_type_status_and_field(tmp_path: Path) -> None:
    """Per (区县, 项目类别) and per 技术领域: projects and 申请资助金额 for each status, the totals, and 合计."""
    projects = [
        project("XZ2024-云龙-001", values={"申请资助金额": 12.5, "技术领域": "新材料"}),
        project("XZ2024-云龙-002", values={"申请资助金额": 30.25, "技术领域": "新材料"},
                findings=[finding(Code.MISMATCH)]),
        project("XZ2024-云龙-003", project_type="升级", values={"申请资助金额": "四十", "技术领域": None}),
        project("XZ2024-鼓楼-001", "鼓楼区", values={"申请资助金额": 40, "技术领域": "生物医药"},
                findings=[finding(Code.PATENTS_BELOW_THRESHOLD)]),
    ]
    book = load_workbook(write(tmp_path, Ledger(projects, [], {"云龙区": 3, "鼓楼区": 2, "泉山区": 1}), [], {}))
    by_district, by_field = statistics_rows(book)
    #  区县, 项目类别, 受理, 待补正, 待审核, 不予受理, 项目数, then the same in 万元 and the total
    assert by_district == [
        ("云龙区", "新建", 1, 1, 0, 0, 2, 12.5, 30.25, 0, 0, 42.75),
        ("云龙区", "升级", 1, 0, 0, 0, 1, 0, 0, 0, 0, 0),  # 四十 is no number: counted, not added
        ("鼓楼区", "新建", 0, 0, 0, 1, 1, 0, 0, 0, 40, 40),
        ("合计", None, 2, 1, 0, 1, 4, 12.5, 30.25, 0, 40, 82.75),
    ]
    assert by_field == [
        ("新材料", None, 1, 1, 0, 0, 2, 12.5, 30.25, 0, 0, 42.75),
        ("生物医药", None, 0, 0, 0, 1, 1, 0, 0, 0, 40, 40),
        ("（未填写）", None, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0),
        ("合计", None, 2, 1, 0, 1, 4, 12.5, 30.25, 0, 40, 82.75),
    ]
    header = [c for c in book["统计"][len(by_district) + 3]]
    assert header[0].font.b and header[0].fill.fgColor.rgb == "00D9E1F2", "the second table's header is a header"


def test_statistics_agree_with_the_district_summary(tmp_path: Path) -> None:
    """统计's 合计 per district adds up to 区县汇总's counts and 申请资助合计 (the realistic sample)."""
    ledger, messages, replies = sample_ledger(40, 12)
    book = load_workbook(write(tmp_path, ledger, messages, replies))
    by_district, _ = statistics_rows(book)
    for row in rows(book["区县汇总"])[:-1]:
        mine = [r for r in by_district if r[0] == row["区县"]]
        assert sum(r[6] for r in mine) == row["项目数"]
        by_status = [sum(r[i] for r in mine) for i in range(2, 6)]
        assert by_status == [row[s] for s in ("受理", "待补正", "待审核", "不予受理")]
        assert round(sum(r[11] for r in mine), 4) == row["申请资助合计（万元）"]


def test_statistics_of_an_empty_ledger_are_zeros(tmp_path: Path) -> None:
    """Before any project, 统计 shows its headers and 合计 rows of zeros."""
    by_district, by_field = statistics_rows(load_workbook(write(tmp_path, Ledger([], [], {"云龙区": 3}), [], {})))
    assert by_district == by_field == [("合计", None, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]


# -- layout: cells, print, properties ------------------------------------------------


def test_every_cell_is_bordered_top_aligned_and_wraps(book: Any) -> None:
    """Body cells (empty ones too) have thin borders, wrap and read from the top; headers are bold and bordered."""
    for ws in book.worksheets:
        for r, row in enumerate(ws.iter_rows(max_col=len(SPEC_SHEETS[ws.title])), 1):
            for c in row:
                if ws.title == "统计" and all(x.value is None for x in row):
                    continue  # the gap between 统计's tables
                assert c.border.left.style == "thin" and c.border.bottom.style == "thin", (ws.title, c.coordinate)
                assert c.alignment.wrap_text, (ws.title, c.coordinate)
                if r == 1:
                    assert c.font.b and c.alignment.vertical == "center"
                else:
                    assert c.alignment.vertical == "top" or c.font.b, (ws.title, c.coordinate)


def test_sheets_print_on_a4_landscape_with_the_header_row_on_every_page(book: Any) -> None:
    """A4 landscape, fitted to the page width, row 1 repeated, narrow margins, page numbers in the footer."""
    for ws in book.worksheets:
        setup = ws.page_setup
        assert (setup.paperSize, setup.orientation) == (9, "landscape"), ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and setup.fitToHeight == 0
        assert ws.print_title_rows == "$1:$1"
        assert ws.page_margins.left == 0.25 and "&P" in ws.oddFooter.center.text
    # 项目台账 is too wide to be legible on one page width: two, each starting with 受理编号
    assert book["项目台账"].page_setup.fitToWidth == 2 and book["项目台账"].print_title_cols == "$A:$A"
    assert book["区县汇总"].page_setup.fitToWidth == 1 and book["区县汇总"].print_title_cols is None


def test_the_workbook_names_its_title_and_author(tmp_path: Path) -> None:
    """File properties show what the workbook is and who made it (the bureau), not openpyxl."""
    path = tmp_path / "ledger.xlsx"
    ledger, messages, replies = small_ledger()
    write_ledger(path, ledger, messages, replies, SHANGHAI, data_dir=tmp_path, title="2024年高价值专利培育计划项目台账")
    props = load_workbook(path).properties
    assert props.title == "2024年高价值专利培育计划项目台账" and props.creator == "徐州市知识产权局"


# -- widths ---------------------------------------------------------------------------


def test_cjk_characters_count_double_when_sizing_rows(tmp_path: Path) -> None:
    """A Chinese character takes two columns: a text wraps (its row grows) where as many ASCII characters fit."""
    assert display_width("徐工集团") == 8 and display_width("ab（c）") == 7
    p = project("X-1", values={"项目名称": "高" * 13, "技术领域": "x" * 13})
    book = load_workbook(write(tmp_path, Ledger([p], [], {}), [], {}))
    dims = book["项目台账"].column_dimensions
    assert (dims["C"].width, dims["H"].width) == (14, 8)  # by header, whatever the text
    assert ledger_module.text_lines("高" * 13, 15) == 2 and ledger_module.text_lines("x" * 13, 15) == 1


def test_widths_come_from_the_header_and_long_text_wraps_instead(tmp_path: Path) -> None:
    """A column's width is its header's, never the text's: a long 问题说明 makes its row taller."""
    long = finding(Code.MISMATCH, "申报书中的申请资助金额与汇总表不一致，请核对后重新发送。" * 3)
    book = load_workbook(write(tmp_path, Ledger([project("X-1", findings=[long])], [], {}), [], {}))
    ws = book["项目台账"]
    widths = {c.value: ws.column_dimensions[c.column_letter].width for c in ws[1]}
    assert widths["问题说明"] == 26 and widths["受理编号"] == 15 and widths["区县"] == 8
    assert ws.row_dimensions[2].height >= 6 * 15
    assert column(ws, "问题说明")[0].alignment.wrap_text


def test_a_column_the_ledger_does_not_know_gets_the_default_width() -> None:
    """A sheet or column added later (another sheet's header) is sized and styled like the rest."""
    table = ledger_module.Table("新表", ["受理编号", "以后新增的列"], [["X-1", "文字"]], text_widths={})
    assert ledger_module.column_widths(table) == [15, ledger_module.DEFAULT_WIDTH]
    override = ledger_module.Table("新表", ["受理编号", "以后新增的列"], [], text_widths={1: 40})
    assert ledger_module.column_widths(override) == [15, 40]


# -- atomic replace ---------------------------------------------------------------------


def test_rewrite_replaces_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    """A second write swaps in the new workbook whole; only ledger.xlsx remains."""
    ledger, messages, replies = small_ledger()
    path = write(tmp_path, ledger, messages, replies)
    old_inode = path.stat().st_ino
    ledger.projects = ledger.projects[:1]
    write(tmp_path, ledger, messages, replies)
    assert path.stat().st_ino != old_inode
    assert load_workbook(path)["项目台账"].max_row == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.xlsx"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the new file was written but before the swap leaves the old workbook and no debris."""
    path = write(tmp_path, *small_ledger())
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ledger_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path, *small_ledger())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.xlsx"]


def test_replacement_keeps_the_file_permissions(tmp_path: Path) -> None:
    """Staff who could read the old workbook can read the new one (mkstemp alone makes it 0600)."""
    path = write(tmp_path, *small_ledger())
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o640)
    write(tmp_path, *small_ledger())
    assert path.stat().st_mode & 0o777 == 0o640


# -- LibreOffice ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic ledger (its first 项目名称 formula-looking) converted to PDF by LibreOffice."""
    if shutil.which("libreoffice") is None:
        pytest.skip("libreoffice is not installed")
    tmp_path = tmp_path_factory.mktemp("printed")
    ledger, messages, replies = sample_ledger(12, 8)
    ledger.projects[0].values["项目名称"] = "=1+1"
    path = write(tmp_path, ledger, messages, replies)
    profile = (tmp_path / "lo-profile").as_uri()
    subprocess.run(["libreoffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(path)], check=True, capture_output=True, timeout=180)
    return tmp_path / "ledger.pdf"


def test_libreoffice_converts_the_workbook_without_evaluating_text(printed: Path) -> None:
    """LibreOffice turns a realistic ledger into a PDF, showing formula-looking text as typed."""
    assert printed.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(printed), "-"], check=True, capture_output=True,
                              text=True).stdout
        assert "=1+1" in text and "XZ2024-云龙-001" in text


def test_project_sheet_prints_legibly_on_a4_landscape(printed: Path) -> None:
    """As printed by LibreOffice: A4 landscape pages, 项目台账's Chinese text at 7 pt or more, and the right
    half of its first rows on page 2, led by their 受理编号 and under the header row."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument(printed)
    width, height = pdf[0].get_size()
    assert (round(width), round(height)) == (842, 595), "A4 landscape, in points"
    text = pdf[0].get_textpage()
    sizes = sorted(pdfium_c.FPDFText_GetFontSize(text, i) for i in range(text.count_chars())
                   if "\u4e00" <= chr(pdfium_c.FPDFText_GetUnicode(text, i)) <= "\u9fff")
    assert len(sizes) > 200 and sizes[len(sizes) // 2] >= 7.0, f"median {sizes[len(sizes) // 2]:.1f} pt"
    first, second = (pdf[i].get_textpage().get_text_range() for i in (0, 1))
    assert "项目台账" in first and "第 1 页" in first and "受理编号" in first and "项目名称" in first
    assert "受理编号" in second and "问题说明" in second and "XZ2024-云龙-001" in second
    assert "问题说明" not in first
