"""The ledger workbook (spec section 6): four sheets staff open in Excel, WPS or LibreOffice.

Each sheet is first built as plain rows (numbers, text, ``Link``), then streamed into a
write-only openpyxl workbook. Only the cells that need it become styled cells: headers,
status and severity labels, links, multi-line text and formula-looking text. That keeps
the writer close to a bare dump of the same values (``benchmarks/bench_ledger.py``).

Every text cell is written as a string: openpyxl would turn a ``str`` starting with
``=`` into a formula, so such cells get ``data_type = "s"`` and Excel's quote prefix
(the ``'`` that keeps ``+1``/``-a``/``@x`` text when a user edits the cell).
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.packaging.relationship import Relationship
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.xml.constants import REL_NS
from openpyxl.xml.functions import Element, SubElement

from intake.models import (
    REPLY_LABEL,
    REVIEW_STALE_NOTE,
    SEVERITY_LABEL,
    Decision,
    FinalResult,
    Finding,
    Ledger,
    OtherFile,
    Outcome,
    Project,
    ReplyInfo,
    ReplyState,
    Severity,
    Status,
    StoredAttachment,
    StoredMessage,
)
from reports.files import atomic_write
from reports.labels import STATUS_ORDER, attachment_line, ledger_datetime, ledger_time

PROJECT_HEADERS = (
    "受理编号", "区县", "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "项目类别",
    "技术领域", "合作服务机构", "有效专利数", "有效发明专利数", "PCT申请数", "折算有效发明专利数",
    "申请资助金额（万元）", "市级承担（万元）", "区级承担（万元）", "状态", "问题代码", "问题说明",
    "来件时间", "来源邮件", "申报书文件", "识别方式", "盖章",
    "自动判定", "复核结论", "复核意见", "复核人", "复核时间",  # staff decisions (spec 10.4)
)
MESSAGE_HEADERS = (
    "UID", "Message-ID", "发件人", "区县", "主题", "收到时间", "附件", "处理结果", "问题代码",
    "回复类型", "回复时间", "补发",
)
FINDING_HEADERS = ("区县", "项目名称", "问题代码", "严重程度", "说明", "受理编号")
DISTRICT_HEADERS = (
    "区县", "项目数", "受理", "待补正", "待审核", "不予受理", "名额",
    "申请资助合计（万元）", "市级承担合计（万元）", "区级承担合计（万元）", "盖章汇总表",
)
OTHER_FILE_HEADERS = ("区县", "UID", "文件名", "识别为", "所属项目类型", "说明")  # spec 10.7: 其他来件
DECISION_HEADERS = ("受理编号", "区县", "项目名称", "自动判定", "复核结论", "复核意见", "复核人", "复核时间", "来源",
                    "当前效力")  # 复核记录 (spec 10.4): every decision ever, oldest first
FINAL_HEADERS = ("受理编号", "区县", "项目名称", "牵头申报单位", "最终状态", "原因")  # 终审结果 (spec 10.5)
DECISION_STANDING = {"in_force": "有效", "replaced": "已被后来的复核取代", "stale": REVIEW_STALE_NOTE}
TOTAL_LABEL = "合计"
STAMPED_TEXT = {True: "已收到", False: "未收到"}
OUTCOME_TEXT = {  # 来件登记's 处理结果 (spec 10.7)
    Outcome.PROCESSED: "已处理", Outcome.LATE: "逾期", Outcome.DUPLICATE: "重复", Outcome.AUTO_REPLY: "自动回复",
    Outcome.UNKNOWN_SENDER: "未知发件人", Outcome.ERROR: "出错",
}
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"  # times are date-time cells (Asia/Shanghai), so date filters work

# Project columns taken straight from the summary row (spec section 3 canonical names).
VALUE_COLUMNS = ("项目名称", "牵头申报单位", "统一社会信用代码", "单位性质")
NUMBER_COLUMNS = ("有效专利数", "有效发明专利数", "PCT申请数")
MONEY_DIGITS = 4  # 万元 to the yuan

# Light fills staff know from Excel's conditional formats; chart bars use stronger tones.
STATUS_FILLS = {
    status: PatternFill("solid", fgColor=rgb)
    for status, rgb in (
        (Status.ACCEPTED, "C6EFCE"), (Status.REVIEW, "FFEB9C"), (Status.NEEDS_FIX, "FCD5B4"),
        (Status.REJECTED, "FFC7CE"),
    )
}
SEVERITY_STATUS = {
    Severity.REJECT: Status.REJECTED, Severity.FIX: Status.NEEDS_FIX, Severity.REVIEW: Status.REVIEW,
}
LABEL_FILLS: dict[str, PatternFill] = {
    **STATUS_FILLS, **{SEVERITY_LABEL[sev]: STATUS_FILLS[st] for sev, st in SEVERITY_STATUS.items()}
}
BAR_COLOURS = {Status.ACCEPTED: "70AD47", Status.NEEDS_FIX: "ED7D31", Status.REVIEW: "FFC000",
               Status.REJECTED: "C00000"}
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
LINK_FONT = Font(color="0563C1", underline="single")
WRAP = Alignment(wrap_text=True)  # bottom, like the unstyled cells beside it
HEADER_ALIGNMENT = Alignment(wrap_text=True, vertical="center")
FORMULA_START = ("=", "+", "-", "@")
NEEDS_CARE = re.compile(r"^[=+\-@]|[\n\000-\010\013\014\016-\037]")  # ILLEGAL_CHARACTERS_RE, and more
REPLY_STATE_TEXT = {ReplyState.QUEUED: "待发送", ReplyState.SENDING: "发送中",
                    ReplyState.UNKNOWN: "发送结果不明，下次收件时核对已发送文件夹",
                    ReplyState.DRY_RUN: "试运行，未发送"}
MIN_WIDTH, MAX_WIDTH, HEADER_WIDTH = 8, 40, 12  # a longer header wraps
LINE_HEIGHT, MAX_LINES = 15, 20  # points a line at the default 11 pt font; Excel caps a row at 409
PAPER_A3, PAPER_A4 = 8, 9  # the 24 columns of 项目台账 are legible on A3 only


class Link(NamedTuple):
    """A cell showing ``text`` that opens ``target`` (relative to the workbook)."""

    text: str
    target: str


@dataclass
class Table:
    """One sheet as plain rows, and how its columns look.

    ``fill_columns`` are coloured by their label (状态, 严重程度). ``text_widths`` are the
    long-text columns and their widths: a text there that may not fit wraps.
    Column indexes are 0-based.
    """

    title: str
    headers: Sequence[str]
    rows: list[list[Any]]
    fill_columns: frozenset[int] = field(default_factory=frozenset)
    text_widths: Mapping[int, int] = field(default_factory=dict)
    paper: int = PAPER_A4
    footer_rows: int = 0  # trailing rows (合计) kept out of the filter


def write_ledger(
    path: Path,
    ledger: Ledger,
    messages: Sequence[StoredMessage],
    replies: Mapping[int, ReplyInfo],
    tz: tzinfo,
    *,
    data_dir: Path,
) -> None:
    """Write the ledger workbook to ``path``, atomically replacing any previous one.

    ``replies`` is keyed by ``StoredMessage.id``; ``data_dir`` is the directory the
    archived paths (``StoredAttachment.path``) are relative to.
    """
    by_uid = {m.uid: m for m in messages}
    link_base = Path(os.path.relpath(data_dir, path.parent))
    districts = district_table(ledger)
    tables = (
        project_table(ledger.projects, by_uid, tz, link_base),
        message_table(messages, ledger, replies, tz),
        finding_table(ledger.projects, messages),
        districts,
        other_file_table(ledger.other_files),
        decision_table(ledger, tz),
        *([final_table(ledger.final)] if ledger.final is not None else []),
    )
    wb, looks = Workbook(write_only=True), _Looks()
    sheets = [_write_table(wb, t, looks) for t in tables]
    district_rows = districts.rows[: len(districts.rows) - districts.footer_rows]
    _add_status_chart(sheets[tables.index(districts)], len(district_rows),
                      max((r[1] for r in district_rows), default=0))
    save_atomically(wb, path)


# -- the four sheets as plain rows ------------------------------------------


def project_table(
    projects: Sequence[Project], by_uid: Mapping[int, StoredMessage], tz: tzinfo, link_base: Path
) -> Table:
    """项目台账: one row per project; ``link_base`` leads from the workbook to the data directory."""
    link_prefix = "" if link_base == Path(".") else f"{link_base.as_posix()}/"
    rows = [_project_row(p, by_uid, tz, link_prefix) for p in projects]
    col = PROJECT_HEADERS.index
    widths = {col("问题代码"): 24, col("问题说明"): 50}  # 来源邮件 is clipped: 来件登记 has the details
    return Table("项目台账", PROJECT_HEADERS, rows, frozenset({col("状态")}), widths, PAPER_A3)


def _project_row(p: Project, by_uid: Mapping[int, StoredMessage], tz: tzinfo, link_prefix: str) -> list[Any]:
    v = p.values
    name, applicant, code, nature = (v.get(k) for k in VALUE_COLUMNS)
    return [
        p.number, p.district, name, applicant, _identifier(code), nature, p.project_type,
        v.get("技术领域"), v.get("合作服务机构"), *(v.get(k) for k in NUMBER_COLUMNS),
        p.converted_invention, _money(v.get("申请资助金额")),
        _money(p.city_amount), _money(p.district_amount),
        p.status.value, finding_codes(p.findings), _explanation(p),
        ledger_datetime(p.arrival, tz), _sources(p.source_uids, by_uid), _form_link(p, link_prefix),
        *form_reading(p.form), *review_columns(p, tz),
    ]


def _explanation(p: Project) -> str:
    """问题说明: the findings' sentences; a stale decision's note first."""
    lines = [f.message for f in p.findings]
    return "\n".join([REVIEW_STALE_NOTE, *lines] if p.decision is not None and p.decision_stale else lines)


def review_columns(p: Project, tz: tzinfo) -> list[Any]:
    """自动判定, 复核结论, 复核意见, 复核人, 复核时间 (the latest decision, stale or not)."""
    d = p.decision
    auto = (p.auto_status or p.status).value
    if d is None:
        return [auto, "", "", "", None]
    return [auto, d.status.value, d.reason, d.by, ledger_datetime(d.at, tz)]


def decision_table(ledger: Ledger, tz: tzinfo) -> Table:
    """复核记录: every decision ever made, oldest first, and whether it is still the one in force."""
    projects = {p.number: p for p in ledger.projects}
    latest = {d.number: d.id for d in ledger.decisions}
    rows = [_decision_row(d, projects.get(d.number), latest[d.number], tz) for d in ledger.decisions]
    col = DECISION_HEADERS.index
    return Table("复核记录", DECISION_HEADERS, rows, frozenset({col("自动判定"), col("复核结论")}),
                 {col("复核意见"): 50})


def _decision_row(d: Decision, p: Project | None, latest: int, tz: tzinfo) -> list[Any]:
    standing = ("replaced" if d.id != latest else "stale" if p is not None and p.decision_stale else "in_force")
    return [d.number, p.district if p else "", p.values.get("项目名称") if p else "",
            d.auto_status.value if d.auto_status else "", d.status.value, d.reason, d.by, ledger_datetime(d.at, tz),
            d.source or "命令行", DECISION_STANDING[standing]]


def final_table(results: Sequence[FinalResult]) -> Table:
    """终审结果: the final list the close-out fixed (spec 10.5)."""
    rows = [[r.number, r.district, r.name, r.applicant, r.status.value, r.reason] for r in results]
    col = FINAL_HEADERS.index
    return Table("终审结果", FINAL_HEADERS, rows, frozenset({col("最终状态")}), {col("原因"): 60})


def resend_text(resends: Iterable[ReplyInfo], tz: tzinfo) -> str:
    """补发: each staff re-send of the message's reply, ``2024-11-06 10:00:00 已发送`` (or its state)."""
    return "\n".join(
        f"{ledger_time(r.sent_at, tz)} 已发送" if r.state is ReplyState.SENT
        else f"发送失败：{r.error or '原因不明'}" if r.state is ReplyState.FAILED else "待发送"
        for r in resends
    )


def form_reading(form: StoredAttachment | None) -> tuple[str, str]:
    """识别方式 (文字层 / OCR / 未能识别) and 盖章 (检测到 / 未检测到; blank: not checked) of a project's form."""
    if form is None:
        return "", ""
    parsed = form.parsed or {}
    how = "未能识别" if form.kind == "error" else ("OCR" if parsed.get("source") == "ocr" else "文字层")
    seal = parsed.get("seal")
    return how, "" if seal is None else ("检测到" if seal else "未检测到")


def message_table(
    messages: Sequence[StoredMessage], ledger: Ledger, replies: Mapping[int, ReplyInfo], tz: tzinfo
) -> Table:
    """来件登记: one row per message, with its files and the reply owed to it."""
    unmatched: dict[int, set[str]] = {}
    for u in ledger.unmatched_forms:
        unmatched.setdefault(u.uid, set()).add(u.filename)
    rows = [[*_message_row(m, replies.get(m.id), unmatched.get(m.uid, set()), tz),
             resend_text(ledger.resends.get(m.id, ()), tz)] for m in messages]
    col = MESSAGE_HEADERS.index
    return Table("来件登记", MESSAGE_HEADERS, rows, text_widths={col("主题"): 36, col("附件"): 50})


def _message_row(m: StoredMessage, reply: ReplyInfo | None, unmatched: set[str], tz: tzinfo) -> list[Any]:
    return [
        m.uid, m.message_id, m.sender, m.district, m.subject, ledger_datetime(m.arrival, tz),
        "\n".join(attachment_line(a, unmatched) for a in m.attachments), OUTCOME_TEXT[m.outcome],
        finding_codes(m.findings), REPLY_LABEL[reply.kind] if reply else "无", _reply_time(reply, tz),
    ]


def _reply_time(reply: ReplyInfo | None, tz: tzinfo) -> datetime | str | None:
    """When the reply went out (a date-time cell); else its state in words (待发送, 发送失败：…)."""
    if reply is None:
        return ""
    if reply.state is ReplyState.SENT:
        return ledger_datetime(reply.sent_at, tz)
    if reply.state is ReplyState.FAILED:
        return f"发送失败：{reply.error or '原因不明'}"
    if reply.state is ReplyState.RENDER_FAILED:  # render_failed: tried again at each poll
        return f"回复生成失败（render_failed），下次收件时重试：{reply.error or '原因不明'}"
    return REPLY_STATE_TEXT.get(reply.state, "")


def finding_table(projects: Sequence[Project], messages: Sequence[StoredMessage]) -> Table:
    """问题清单: every project finding, then every message-level finding.

    A message-level row names the message instead of a project: ``（邮件 UID 12）`` and
    the file concerned, so staff can find it in 来件登记.
    """
    rows = [_finding_row(p.district, p.values.get("项目名称"), f, p.number) for p in projects for f in p.findings]
    for m in messages:
        place = f"（邮件 UID {m.uid}）"
        rows.extend(_finding_row(m.district or "", place + (f.file or ""), f, "") for f in m.findings)
    col = FINDING_HEADERS.index
    return Table("问题清单", FINDING_HEADERS, rows, frozenset({col("严重程度")}), {col("说明"): 70})


def _finding_row(district: str, name: Any, f: Finding, number: str) -> list[Any]:
    return [district, name, f.code.value, SEVERITY_LABEL[f.severity], f.message, number]


def district_table(ledger: Ledger) -> Table:
    """区县汇总: one row per district in config order (any other district after), then 合计."""
    districts = list(ledger.quotas)
    districts += sorted({p.district for p in ledger.projects} - set(districts))
    rows = [_district_row(d, [p for p in ledger.projects if p.district == d], ledger.quotas.get(d),
                          d in ledger.stamped_tables)
            for d in districts]
    return Table("区县汇总", DISTRICT_HEADERS, [*rows, _total_row(rows)], footer_rows=1)


def _district_row(district: str, projects: Sequence[Project], quota: int | None, stamped: bool) -> list[Any]:
    counts = Counter(p.status for p in projects)
    return [
        district, len(projects), *(counts[s] for s in STATUS_ORDER), quota,
        _total(p.values.get("申请资助金额") for p in projects),
        _total(p.city_amount for p in projects), _total(p.district_amount for p in projects),
        STAMPED_TEXT[stamped],
    ]


def _total_row(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """合计: the counts, quotas and money summed; 盖章汇总表 as how many districts sent theirs."""
    counts = [sum(r[i] for r in rows) for i in range(1, 6)]  # 项目数, 受理 … 不予受理
    quota = sum(r[6] for r in rows if r[6] is not None)
    money = [_total(r[i] for r in rows) for i in range(7, 10)]
    received = sum(r[10] == STAMPED_TEXT[True] for r in rows)
    return [TOTAL_LABEL, *counts, quota, *money, f"已收到{received}个"]


def other_file_table(files: Sequence[OtherFile]) -> Table:
    """其他来件: files recorded but not merged, such as another program's table or form (spec 10.1)."""
    rows = [[f.district, f.uid, f.filename, f.recognized_as, f.program, f.note] for f in files]
    col = OTHER_FILE_HEADERS.index
    return Table("其他来件", OTHER_FILE_HEADERS, rows, text_widths={col("文件名"): 40, col("说明"): 50})


# -- value helpers ------------------------------------------------------------


def finding_codes(findings: Iterable[Finding]) -> str:
    """The codes, sorted and de-duplicated, joined by ``,`` (spec section 6)."""
    return ",".join(sorted({f.code.value for f in findings}))


def _identifier(value: Any) -> Any:
    """Credit codes are text even when a spreadsheet stored digits as a number."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int) else value


def _money(value: Any) -> Any:
    return round(value, MONEY_DIGITS) if _is_number(value) else value


def _total(values: Iterable[Any]) -> float:
    return round(sum(v for v in values if _is_number(v)), MONEY_DIGITS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sources(uids: Iterable[int], by_uid: Mapping[int, StoredMessage]) -> str:
    """``UID 12：主题；UID 15：主题`` for the messages a project's material came from."""
    return "；".join(f"UID {u}：{by_uid[u].subject}" if u in by_uid else f"UID {u}" for u in sorted(uids))


def _form_link(p: Project, link_prefix: str) -> Link | None:
    """A link to the archived form; ``link_prefix`` is ``""`` or the way to the data directory, ending in ``/``.

    Strings joined, not ``Path``s (which took half the table's time at 5,000 projects): the
    archived path is always a plain relative POSIX path, ``archive/ab/<sha256>.pdf``.
    """
    if p.form is None:
        return None
    return Link(p.form.filename, quote(link_prefix + p.form.path, safe="/"))


# -- writing ------------------------------------------------------------------


def _write_table(wb: Workbook, table: Table, looks: _Looks) -> Any:
    """Stream one table into a new sheet: widths, frozen header, print setup, filter, rows."""
    ws = _LedgerSheet.create(wb, table.title)
    widths = column_widths(table)
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    _print_setup(ws, table.paper)
    ws.auto_filter.ref = f"A1:{get_column_letter(len(table.headers))}{len(table.rows) + 1 - table.footer_rows}"
    _set_height(ws, 1, max(text_lines(h, w) for h, w in zip(table.headers, widths, strict=True)))
    ws.append([looks.cell(ws, h, fill=HEADER_FILL, font=HEADER_FONT, alignment=HEADER_ALIGNMENT)
               for h in table.headers])
    wrap_beyond = {i: width // 2 for i, width in table.text_widths.items()}  # CJK: 2 columns a character
    for row_idx, row in enumerate(table.rows, 2):
        cells, wrapped, linked = _row_cells(ws, looks, row, table.fill_columns, wrap_beyond)
        _set_height(ws, row_idx, max((text_lines(row[i], widths[i]) for i in wrapped), default=1))
        for i in linked:
            ws.add_link(f"{get_column_letter(i + 1)}{row_idx}", row[i].target)
        ws.append(cells)
    return ws


def _set_height(ws: Any, row_idx: int, lines: int) -> None:
    """Give a row of wrapped text its height: LibreOffice does not fit rows when it opens xlsx."""
    if lines > 1:
        ws.row_dimensions[row_idx].height = LINE_HEIGHT * min(lines, MAX_LINES)


def text_lines(text: str, width: float) -> int:
    """How many lines ``text`` takes in a wrapped cell ``width`` columns wide."""
    per_line = max(1, int(width) - 1)
    return sum(max(1, -(-display_width(line) // per_line)) for line in text.split("\n"))


def _print_setup(ws: Any, paper: int) -> None:
    """Print landscape, all columns on one page width, the header row on every page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = paper
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"


def _row_cells(
    ws: Any, looks: _Looks, row: list[Any], fill_columns: frozenset[int], wrap_beyond: Mapping[int, int]
) -> tuple[list[Any], list[int], list[int]]:
    """What ``ws.append`` should get (plain values, styled cells where needed), the wrapped columns
    and the columns holding a ``Link`` (whose hyperlink ``_LedgerSheet.add_link`` adds).

    Most texts need nothing and stay plain ``str``: outside the coloured and the long-text
    columns, one regex search finds the few that start like a formula, span lines or
    carry characters XML cannot hold.
    """
    cells, wrapped, linked = list(row), [], []
    for i, value in enumerate(row):
        if isinstance(value, str):
            if not value:
                cells[i] = None  # no empty inline-string elements
            elif i in fill_columns or i in wrap_beyond or NEEDS_CARE.search(value):
                fill = LABEL_FILLS.get(value) if i in fill_columns else None
                wrap = len(value) > wrap_beyond.get(i, len(value)) or "\n" in value
                cells[i] = _text_cell(ws, looks, value, fill, wrap)
                if wrap:
                    wrapped.append(i)
        elif isinstance(value, Link):
            cells[i] = _link_cell(ws, looks, value)
            linked.append(i)
        elif isinstance(value, datetime):
            cells[i] = looks.cell(ws, value, number_format=DATETIME_FORMAT)
    return cells, wrapped, linked


def _text_cell(ws: Any, looks: _Looks, text: str, fill: PatternFill | None, wrap: bool) -> Any:
    """A string cell that can never become a formula; plain ``str`` when no style is needed."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    formula_like = text.startswith(FORMULA_START)
    if not (formula_like or fill or wrap):
        return text
    cell = looks.cell(ws, text, fill=fill, alignment=WRAP if wrap else None, quote=formula_like)
    cell.data_type = "s"  # openpyxl made "=..." a formula
    return cell


def _link_cell(ws: Any, looks: _Looks, link: Link) -> Cell:
    """The cell showing a link's text, in link style; its hyperlink is ``_LedgerSheet.add_link``'s."""
    cell = looks.cell(ws, ILLEGAL_CHARACTERS_RE.sub("", link.text), font=LINK_FONT)
    cell.data_type = "s"  # a file name may start with "="
    return cell


class _LedgerSheet(WriteOnlyWorksheet):
    """openpyxl's write-only sheet, streaming the ledger's rows with less of its generic per-cell work.

    Two steps of openpyxl cost more than the rest of the writer's overhead over a bare dump
    (5,000 projects, ``benchmarks/bench_rebuild.py``):

    - ``append`` first tries each value as a cell value, and a styled ``Cell`` (a status,
      a link, a wrapped text: 11,000 of them) fails that only after openpyxl has formatted
      an error message: about 7 µs a cell. ``_values_to_row`` here passes a ``Cell`` through.
    - ``cell.hyperlink`` makes a ``Hyperlink`` and a ``Relationship`` object per link, each
      serialised through openpyxl's generic descriptor machinery: about 35 µs a link. Here a
      link is a (cell, target) pair until ``_SheetWriter`` writes the sheet's tail.

    The file is byte for byte the one openpyxl writes through ``create_sheet``, ``append``
    and ``cell.hyperlink``, so Excel, WPS and LibreOffice read it as before. This leans on
    openpyxl 3.1's write-only internals (``Workbook._add_sheet``,
    ``WriteOnlyWorksheet._get_writer``/``_values_to_row``, ``WorksheetWriter.write_hyperlinks``);
    ``tests/test_ledger.py`` reads every cell, style and link back.
    """

    def __init__(self, wb: Workbook, title: str) -> None:
        super().__init__(parent=wb, title=title)
        self.links: list[tuple[str, str]] = []

    @classmethod
    def create(cls, wb: Workbook, title: str) -> _LedgerSheet:
        """A new last sheet of the write-only workbook ``wb``, as ``wb.create_sheet(title)`` adds one."""
        ws = cls(wb, title)
        wb._add_sheet(ws)
        return ws

    def add_link(self, ref: str, target: str) -> None:
        """Make cell ``ref`` (``V2``) a hyperlink to ``target`` (a URL, or a path relative to the workbook)."""
        self.links.append((ref, target))

    def _get_writer(self) -> None:
        if self._writer is None:  # on the first row, as openpyxl's does, with the writer below
            self._writer = _SheetWriter(self)
            self._writer.write_top()

    def _values_to_row(self, values: Iterable[Any], row_idx: int) -> Iterator[Cell]:
        """The row's cells for the writer: a ``Cell`` as it is, any other value in one reused cell."""
        cell = WriteOnlyCell(self)
        for column, value in enumerate(values, 1):
            if value is None:
                continue
            if isinstance(value, Cell):
                value.column, value.row = column, row_idx
                yield value
            else:
                cell.value = value
                cell.column, cell.row = column, row_idx
                yield cell


class _SheetWriter(WorksheetWriter):
    """openpyxl's writer of a write-only sheet, writing the ``_LedgerSheet``'s links itself:
    the same ``<hyperlink ref r:id>`` elements and external ``hyperlink`` relationships, made
    directly (half openpyxl's time; the rest is mostly lxml setting attributes)."""

    def write_hyperlinks(self) -> None:
        if self.ws._hyperlinks:  # openpyxl's, from a cell.hyperlink: this writer would drop them
            raise RuntimeError(f"sheet {self.ws.title}: give hyperlinks through _LedgerSheet.add_link")
        if not self.ws.links:
            return
        hyperlinks = Element("hyperlinks")
        for ref, target in self.ws.links:
            rel = _HyperlinkRelationship(target)
            self._rels.append(rel)  # numbers it: rId1, rId2, ...
            SubElement(hyperlinks, "hyperlink", {"ref": ref, f"{{{REL_NS}}}id": rel.Id})
        self.xf.send(hyperlinks)


class _HyperlinkRelationship(Relationship):
    """An external hyperlink target in the sheet's relationships, serialised directly (see ``_LedgerSheet``)."""

    def __init__(self, target: str) -> None:
        super().__init__(type="hyperlink", Target=target, TargetMode="External")

    def to_tree(self, tagname: str | None = None, idx: int | None = None, namespace: str | None = None) -> Any:
        return Element("Relationship", {"Type": self.Type, "Target": self.Target, "TargetMode": "External",
                                        "Id": self.Id})


class _Looks:
    """Makes styled cells for one workbook, registering each combination of styles once.

    Assigning ``cell.fill``/``font``/``alignment`` makes openpyxl hash the style object
    to find its index, about 5 µs a cell: a third of the writer's overhead over a bare
    dump at 5,000 projects. The resulting index array is the same for every cell that
    looks alike, so it is made once on a prototype cell and handed to
    ``Cell(style_array=...)``, which copies it.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[int, int, int, bool, str | None], Any] = {}

    def cell(
        self, ws: Any, value: str | datetime, *, fill: PatternFill | None = None, font: Font | None = None,
        alignment: Alignment | None = None, quote: bool = False, number_format: str | None = None,
    ) -> Cell:
        key = (id(fill), id(font), id(alignment), quote, number_format)  # the styles are module constants
        array = self._arrays.get(key)
        if array is None:
            array = self._arrays[key] = _style_array(ws, fill, font, alignment, quote, number_format)
        return Cell(ws, row=1, column=1, value=value, style_array=array)


def _style_array(
    ws: Any, fill: PatternFill | None, font: Font | None, alignment: Alignment | None, quote: bool,
    number_format: str | None = None,
) -> Any:
    prototype = WriteOnlyCell(ws)
    if number_format:
        prototype.number_format = number_format
    if fill:
        prototype.fill = fill
    if font:
        prototype.font = font
    if alignment:
        prototype.alignment = alignment
    prototype.quotePrefix = quote
    return prototype._style  # the cell's style indexes (openpyxl's StyleArray)


def column_widths(table: Table) -> list[float]:
    """Widths in Excel character units: CJK characters count double, long text is capped."""
    columns = zip(*table.rows, strict=True) if table.rows else ([] for _ in table.headers)
    widths = []
    for i, (header, values) in enumerate(zip(table.headers, columns, strict=True)):
        header_needs = min(display_width(header), HEADER_WIDTH) + 2  # + the filter button
        needed = max(header_needs, _widest(values) + 2)
        widths.append(max(MIN_WIDTH, min(needed, table.text_widths.get(i, MAX_WIDTH))))
    return widths


def _widest(values: Sequence[Any]) -> int:
    """The widest value of a column: each distinct text measured once, numbers by their extremes."""
    texts: set[str] = set()
    numbers = []
    for v in values:  # one pass over the column's values
        if isinstance(v, str):
            texts.add(v)
        elif _is_number(v):
            numbers.append(v)
        elif v is not None:
            texts.add(v.text if isinstance(v, Link) else str(v))
    if numbers:  # the widest number is the largest or the most negative (or, rarely, a long fraction)
        texts.update(f"{v:g}" for v in (max(numbers), min(numbers)))
        texts.update(f"{v:g}" for v in numbers if isinstance(v, float) and not v.is_integer())
    return max(map(display_width, texts), default=0)


def display_width(text: str) -> int:
    """Columns a text needs: GBK encodes CJK (and full-width forms) in two bytes, ASCII in one."""
    if "\n" in text:  # the widest line
        return max(display_width(line) for line in text.split("\n"))
    return len(text) if text.isascii() else len(text.encode("gbk", "replace"))


def _add_status_chart(ws: Any, n_districts: int, max_count: int) -> None:
    """A stacked bar per district: its projects by status, coloured like the status cells."""
    if not n_districts:
        return
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "col", "stacked", 100
    chart.title, chart.y_axis.title, chart.x_axis.title = "各区县项目状态", "项目数", "区县"
    chart.x_axis.delete = chart.y_axis.delete = False  # openpyxl 3.1 hides axes by default
    data = Reference(ws, min_col=3, max_col=2 + len(STATUS_ORDER), min_row=1, max_row=n_districts + 1)
    chart.add_data(data, titles_from_data=True)
    if max_count <= 10:
        chart.y_axis.majorUnit = 1  # whole projects, not 0.5 steps
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=n_districts + 1))
    for series, status in zip(chart.series, STATUS_ORDER, strict=True):
        series.graphicalProperties.solidFill = BAR_COLOURS[status]
        series.graphicalProperties.line.solidFill = BAR_COLOURS[status]
    chart.width, chart.height = max(16.0, 2.5 * n_districts), 9.0
    ws.add_chart(chart, f"{get_column_letter(len(DISTRICT_HEADERS) + 2)}2")


def save_atomically(wb: Workbook, path: Path) -> None:
    """Save to a temporary file beside ``path``, then swap it in durably; never leave a half file."""
    atomic_write(path, wb.save, _mode_for(path))


def _mode_for(path: Path) -> int:
    """Keep the permissions of the workbook being replaced (mkstemp creates 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o644
