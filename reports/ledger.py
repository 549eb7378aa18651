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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.packaging.relationship import Relationship
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.page import PageMargins
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
    Project,
    ReplyInfo,
    ReplyState,
    Severity,
    Status,
    StoredAttachment,
    StoredMessage,
)
from reports.files import atomic_write
from reports.labels import OUTCOME_TEXT, STATUS_ORDER, attachment_line, ledger_datetime, ledger_time
from reports.replies import BUREAU

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
STATISTICS_HEADERS = (  # 统计 (spec 10.7): per status the projects, then the 申请资助金额 (万元)
    "区县", "项目类别", "受理", "待补正", "待审核", "不予受理", "项目数",
    "受理（万元）", "待补正（万元）", "待审核（万元）", "不予受理（万元）", "申请资助金额（万元）",
)
PROJECT_TYPE_ORDER = ("新建", "升级")
BLANK_LABEL = "（未填写）"
DEFAULT_TITLE = "项目台账"
DECISION_HEADERS = ("受理编号", "区县", "项目名称", "自动判定", "复核结论", "复核意见", "复核人", "复核时间", "来源",
                    "当前效力")  # 复核记录 (spec 10.4): every decision ever, oldest first
FINAL_HEADERS = ("受理编号", "区县", "项目名称", "牵头申报单位", "最终状态", "原因")  # 终审结果 (spec 10.5)
DECISION_STANDING = {"in_force": "有效", "replaced": "已被后来的复核取代", "stale": REVIEW_STALE_NOTE}
TOTAL_LABEL = "合计"
STAMPED_TEXT = {True: "已收到", False: "未收到"}
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"  # times are date-time cells (Asia/Shanghai), so date filters work
DATE_FORMAT = "yyyy-mm-dd"

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
THIN = Side(style="thin", color="A6A6A6")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="top")  # every body cell: text wraps, rows read from the top
HEADER_ALIGNMENT = Alignment(wrap_text=True, vertical="center")
FORMULA_START = ("=", "+", "-", "@")
NEEDS_CARE = re.compile(r"^[=+\-@]|[\000-\010\013\014\016-\037]")  # ILLEGAL_CHARACTERS_RE, and more
REPLY_STATE_TEXT = {ReplyState.QUEUED: "待发送", ReplyState.SENDING: "发送中",
                    ReplyState.UNKNOWN: "发送结果不明，下次收件时核对已发送文件夹",
                    ReplyState.DRY_RUN: "试运行，未发送"}
LINE_HEIGHT, MAX_LINES = 15, 20  # points a line at the default 11 pt font; Excel caps a row at 409
PAPER_A4 = 9
# Column width units one A4 landscape page holds with the text printed at about 7 pt or more (LibreOffice
# prints 11 pt text at about 115 units across the page); a wider sheet is printed over more page widths.
PAGE_WIDTH = 180

# Column widths (Excel character units; a Chinese character takes two) by header, the same in every sheet.
# Chosen for reading on paper (a long text wraps within its column instead of widening it); 项目台账's
# columns fit two A4 landscape page widths at about 8 pt (LibreOffice: 7.8 pt with the five 复核 columns).
# A header not listed gets DEFAULT_WIDTH.
DEFAULT_WIDTH = 10
WIDTHS: dict[str, float] = {
    # 项目台账
    "受理编号": 15, "区县": 8, "项目名称": 14, "牵头申报单位": 14, "统一社会信用代码": 10, "单位性质": 6,
    "项目类别": 6, "技术领域": 8, "合作服务机构": 12, "有效专利数": 6, "有效发明专利数": 6, "PCT申请数": 6,
    "折算有效发明专利数": 6, "申请资助金额（万元）": 7, "市级承担（万元）": 7, "区级承担（万元）": 7, "状态": 9,
    "问题代码": 13, "问题说明": 26, "来件时间": 19, "来源邮件": 12, "申报书文件": 13, "识别方式": 6, "盖章": 6,
    "自动判定": 9, "复核结论": 9, "复核意见": 16, "复核人": 7, "复核时间": 19,
    # 来件登记
    "UID": 6, "Message-ID": 16, "发件人": 18, "主题": 22, "收到时间": 19, "附件": 28, "处理结果": 9,
    "回复类型": 9, "回复时间": 19, "补发": 20,
    # 问题清单, 其他来件
    "严重程度": 9, "说明": 46, "文件名": 30, "识别为": 10, "所属项目类型": 20,
    # 区县汇总, 统计
    "项目数": 7, "受理": 7, "待补正": 7, "待审核": 7, "不予受理": 9, "名额": 6, "申请资助合计（万元）": 12,
    "市级承担合计（万元）": 12, "区级承担合计（万元）": 12, "盖章汇总表": 10,
    # 复核记录, 终审结果
    "来源": 10, "当前效力": 16, "最终状态": 9, "原因": 40,
}


class Link(NamedTuple):
    """A cell showing ``text`` that opens ``target`` (relative to the workbook)."""

    text: str
    target: str


@dataclass
class Table:
    """One sheet as plain rows, and how its columns look.

    ``fill_columns`` are coloured by their label (状态, 严重程度). A column's width comes from
    ``WIDTHS`` by its header (``DEFAULT_WIDTH`` for a header not listed); ``text_widths`` sets
    a sheet's own width for a column instead. Every cell wraps, so a longer text makes its row
    taller, never its column wider. ``header_rows`` are rows (indexes into ``rows``) styled as
    a header, e.g. the second table of 统计. Column indexes are 0-based.
    """

    title: str
    headers: Sequence[str]
    rows: list[list[Any]]
    fill_columns: frozenset[int] = field(default_factory=frozenset)
    text_widths: Mapping[int, float] = field(default_factory=dict)
    footer_rows: int = 0  # trailing rows (合计) kept out of the filter
    header_rows: frozenset[int] = field(default_factory=frozenset)


def write_ledger(
    path: Path,
    ledger: Ledger,
    messages: Sequence[StoredMessage],
    replies: Mapping[int, ReplyInfo],
    tz: tzinfo,
    *,
    data_dir: Path,
    title: str = DEFAULT_TITLE,
    form_links: Mapping[str, str] | None = None,
) -> None:
    """Write the ledger workbook to ``path``, atomically replacing any previous one.

    ``replies`` is keyed by ``StoredMessage.id``; ``data_dir`` is the directory the
    archived paths (``StoredAttachment.path``) are relative to. ``title`` becomes the
    workbook's document title (its author is the bureau). ``form_links`` maps an archived
    path to the link target a form's cell gets instead (``intake export --bundle``: the
    copy beside the workbook).
    """
    link_base = Path(os.path.relpath(data_dir, path.parent))
    districts = district_table(ledger)
    tables = (
        project_table(ledger.projects, tz, link_base, form_links),
        message_table(messages, ledger, replies, tz),
        finding_table(ledger.projects, messages),
        districts,
        other_file_table(ledger.other_files),
        decision_table(ledger, tz),
        statistics_table(ledger),
        *([final_table(ledger.final)] if ledger.final is not None else []),
    )
    wb, looks = Workbook(write_only=True), _Looks()
    wb.properties.title, wb.properties.creator = title, BUREAU
    wb.properties.lastModifiedBy = BUREAU
    sheets = [_write_table(wb, t, looks) for t in tables]
    district_rows = districts.rows[: len(districts.rows) - districts.footer_rows]
    _add_status_chart(sheets[tables.index(districts)], len(district_rows),
                      max((r[1] for r in district_rows), default=0))
    save_atomically(wb, path)


# -- the sheets as plain rows -------------------------------------------------


def project_table(
    projects: Sequence[Project], tz: tzinfo, link_base: Path,
    form_links: Mapping[str, str] | None = None,
) -> Table:
    """项目台账: one row per project; ``link_base`` leads from the workbook to the data directory
    (``form_links``, when given, holds each form's own target instead)."""
    link_prefix = "" if link_base == Path(".") else f"{link_base.as_posix()}/"
    rows = [_project_row(p, tz, link_prefix, form_links) for p in projects]
    col = PROJECT_HEADERS.index
    return Table("项目台账", PROJECT_HEADERS, rows, frozenset({col("状态")}))


def _project_row(
    p: Project, tz: tzinfo, link_prefix: str,
    form_links: Mapping[str, str] | None,
) -> list[Any]:
    v = p.values
    name, applicant, code, nature = (v.get(k) for k in VALUE_COLUMNS)
    return [
        p.number, p.district, name, applicant, _identifier(code), nature, p.project_type,
        v.get("技术领域"), v.get("合作服务机构"), *(v.get(k) for k in NUMBER_COLUMNS),
        p.converted_invention, _money(v.get("申请资助金额")),
        _money(p.city_amount), _money(p.district_amount),
        p.status.value, finding_codes(p.findings), _explanation(p),
        ledger_datetime(p.arrival, tz), _sources(p.source_uids), _form_link(p, link_prefix, form_links),
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
    return Table("来件登记", MESSAGE_HEADERS, rows)


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
    return Table("问题清单", FINDING_HEADERS, rows, frozenset({col("严重程度")}))


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
    return Table("其他来件", OTHER_FILE_HEADERS, rows)


def statistics_table(ledger: Ledger) -> Table:
    """统计: projects and 申请资助金额 by 区县 × 项目类别 × 状态, then by 技术领域, each with a 合计 row.

    Two tables on one sheet sharing the columns: per status the count and the amount, then the
    totals. The first table's header is row 1 (filtered, repeated on printed pages); the second
    starts after an empty row with a header of its own. An amount that is not a number counts as
    a project but adds nothing.
    """
    frame = _projects_frame(ledger)
    districts = list(ledger.quotas) + sorted(set(frame["区县"]) - set(ledger.quotas))
    first = _pivot_rows(frame, ["区县", "项目类别"], [districts, _ordered(frame["项目类别"], PROJECT_TYPE_ORDER)])
    fields = Counter(frame["技术领域"])
    second = _pivot_rows(frame, ["技术领域"], [sorted(fields, key=lambda f: (-fields[f], f))])  # most projects first
    second_header = ["技术领域", "", *STATISTICS_HEADERS[2:]]
    rows = [*first, [], second_header, *[[r[0], "", *r[1:]] for r in second]]
    return Table("统计", STATISTICS_HEADERS, rows, text_widths={0: 16}, footer_rows=len(rows) - len(first) + 1,
                 header_rows=frozenset({len(first) + 1}))


def _projects_frame(ledger: Ledger) -> Any:
    import pandas as pd  # only here: the rest of the ledger does without it

    return pd.DataFrame({
        "区县": [p.district for p in ledger.projects],
        "项目类别": [p.project_type or BLANK_LABEL for p in ledger.projects],
        "技术领域": [_label(p.values.get("技术领域")) for p in ledger.projects],
        "状态": [p.status.value for p in ledger.projects],
        "项目数": [1] * len(ledger.projects),
        "金额": [float(a) if _is_number(a) else 0.0 for a in (p.values.get("申请资助金额") for p in ledger.projects)],
    }, columns=["区县", "项目类别", "技术领域", "状态", "项目数", "金额"])


def _pivot_rows(frame: Any, keys: list[str], orders: list[list[str]]) -> list[list[Any]]:
    """One row per combination of ``keys`` that has projects (in ``orders``), then 合计: per status the
    count and the amount, and the totals of both (``pandas.pivot_table`` with margins)."""
    statuses = [s.value for s in STATUS_ORDER]
    if frame.empty:
        return [[TOTAL_LABEL, *([""] * (len(keys) - 1)), *[0] * len(statuses), 0, *[0.0] * len(statuses), 0.0]]
    table = frame.pivot_table(index=keys, columns="状态", values=["项目数", "金额"], aggfunc="sum", fill_value=0,
                              margins=True, margins_name=TOTAL_LABEL)
    rows = []
    index = [k for k in _product(orders) if k in table.index] + [_total_key(len(keys))]
    for key in index:
        counts = [int(table.at[key, ("项目数", s)]) if ("项目数", s) in table.columns else 0 for s in statuses]
        money = [_money(float(table.at[key, ("金额", s)])) if ("金额", s) in table.columns else 0.0 for s in statuses]
        label = list(key) if isinstance(key, tuple) else [key]
        rows.append([*label, *counts, int(table.at[key, ("项目数", TOTAL_LABEL)]), *money,
                     _money(float(table.at[key, ("金额", TOTAL_LABEL)]))])
    if len(keys) > 1:
        rows[-1][1:len(keys)] = [""] * (len(keys) - 1)
    return rows


def _product(orders: list[list[str]]) -> list[Any]:
    keys = [()]
    for order in orders:
        keys = [(*k, v) for k in keys for v in order]
    return [k if len(k) > 1 else k[0] for k in keys]


def _total_key(n: int) -> Any:
    """pandas names the margin row 合计 in the first level and leaves the others empty."""
    return TOTAL_LABEL if n == 1 else (TOTAL_LABEL, *[""] * (n - 1))


def _ordered(values: Any, known: Sequence[str]) -> list[str]:
    present = set(values)
    return [v for v in known if v in present] + sorted(present - set(known))


def _label(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return BLANK_LABEL
    return str(value).strip()


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


def _sources(uids: Iterable[int]) -> str:
    """``UID 12、UID 15``: the messages a project's material came from (来件登记 has their subjects)."""
    return "、".join(f"UID {u}" for u in sorted(uids))


def _form_link(p: Project, link_prefix: str, form_links: Mapping[str, str] | None = None) -> Link | None:
    """A link to the archived form; ``link_prefix`` is ``""`` or the way to the data directory, ending in ``/``
    (``form_links``, when given, maps the archived path to the target, already written as a link).

    Strings joined, not ``Path``s (which took half the table's time at 5,000 projects): the
    archived path is always a plain relative POSIX path, ``archive/ab/<sha256>.pdf``.
    """
    if p.form is None:
        return None
    if form_links is not None:
        target = form_links.get(p.form.path)
        return Link(p.form.filename, target) if target else None
    return Link(p.form.filename, quote(link_prefix + p.form.path, safe="/"))


# -- writing ------------------------------------------------------------------


def _write_table(wb: Workbook, table: Table, looks: _Looks) -> Any:
    """Stream one table into a new sheet: widths, frozen header, print setup, filter, rows.

    Every cell is bordered, top-aligned and wraps; a row is as tall as its longest text needs.
    """
    ws = _LedgerSheet.create(wb, table.title, looks.plain_cell)
    widths = column_widths(table)
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    _print_setup(ws, pages_wide(widths))
    ws.auto_filter.ref = f"A1:{get_column_letter(len(table.headers))}{len(table.rows) + 1 - table.footer_rows}"
    lines = _LineCounter(widths)
    _set_height(ws, 1, lines.of(table.headers))
    ws.append(_header_cells(ws, looks, table.headers))
    for row_idx, row in enumerate(table.rows, 2):
        _set_height(ws, row_idx, lines.of(row))
        if row_idx - 2 in table.header_rows:
            ws.append(_header_cells(ws, looks, row))
            continue
        cells, linked = _row_cells(ws, looks, row, table.fill_columns)
        for i in linked:
            ws.add_link(f"{get_column_letter(i + 1)}{row_idx}", row[i].target)
        ws.append(cells)
    return ws


def _header_cells(ws: Any, looks: _Looks, headers: Sequence[Any]) -> list[Any]:
    return [looks.cell(ws, h, fill=HEADER_FILL, font=HEADER_FONT, alignment=HEADER_ALIGNMENT) if h else None
            for h in headers]


def _set_height(ws: Any, row_idx: int, lines: int) -> None:
    """Give a row of wrapped text its height: LibreOffice does not fit rows when it opens xlsx.
    (The ``<row>`` attributes as ``RowDimension`` would give them: see ``_LedgerSheet``.)"""
    if lines > 1:
        ws.row_dimensions[row_idx] = {"ht": f"{LINE_HEIGHT * min(lines, MAX_LINES)}", "customHeight": "1"}


class _LineCounter:
    """How many lines the tallest cell of a row takes at the sheet's column widths."""

    def __init__(self, widths: Sequence[float]) -> None:
        self.per_line = [max(1, int(w) - 1) for w in widths]  # display columns a line holds

    def of(self, row: Sequence[Any]) -> int:
        most = 1
        for value, per_line in zip(row, self.per_line, strict=False):
            kind = value.__class__
            if kind is Link:
                value, kind = value.text, str
            if kind is not str or (len(value) * 2 <= per_line and "\n" not in value):
                continue  # numbers and dates do not wrap; a short text fits whatever its characters
            if "\n" not in value:
                width = len(value) if value.isascii() else len(value.encode("gbk", "replace"))
                most = max(most, -(-width // per_line))
            else:
                most = max(most, sum(max(1, -(-display_width(line) // per_line)) for line in value.split("\n")))
        return most


def text_lines(text: str, width: float) -> int:
    """How many lines ``text`` takes in a wrapped cell ``width`` columns wide."""
    per_line = max(1, int(width) - 1)
    return sum(max(1, -(-display_width(line) // per_line)) for line in text.split("\n"))


def pages_wide(widths: Sequence[float]) -> int:
    """How many A4 landscape pages a sheet's columns are printed across: one, unless that would print
    the text smaller than about 7 pt (项目台账: two, its first column repeated on each)."""
    return max(1, -(-int(sum(widths)) // PAGE_WIDTH))


def _print_setup(ws: Any, pages: int) -> None:
    """A4 landscape, the columns fitted to ``pages`` page widths, the header row (and, over more than
    one page width, the first column) on every page, narrow margins, the sheet's name and the page
    number in the footer."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = PAPER_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = pages, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"
    if pages > 1:  # the pages of a row side by side, each starting with its 受理编号
        ws.print_title_cols = "A:A"
        ws.page_setup.pageOrder = "overThenDown"
    ws.page_margins = PageMargins(left=0.25, right=0.25, top=0.4, bottom=0.5, header=0.2, footer=0.2)
    ws.oddFooter.center.text = "&A　第 &P 页，共 &N 页"


def _row_cells(
    ws: Any, looks: _Looks, row: list[Any], fill_columns: frozenset[int]
) -> tuple[list[Any], list[int]]:
    """What ``ws.append`` should get (plain values, ``_Styled`` ones where needed) and the columns
    holding a ``Link`` (whose hyperlink ``_LedgerSheet.add_link`` adds).

    Most values need nothing and stay plain: the sheet writes them with the body style
    (bordered, top-aligned, wrapped). Outside the coloured columns one regex search finds the
    few texts that start like a formula or carry characters XML cannot hold.
    """
    cells, linked = list(row), []
    for i, value in enumerate(row):
        kind = value.__class__
        if kind is str:
            if not value:
                cells[i] = None  # an empty bordered cell, no empty inline-string element
            elif i in fill_columns or NEEDS_CARE.search(value):
                fill = LABEL_FILLS.get(value) if i in fill_columns else None
                cells[i] = _text_cell(ws, looks, value, fill)
        elif kind is Link:
            cells[i] = _Styled(ILLEGAL_CHARACTERS_RE.sub("", value.text), looks.body(ws, font=LINK_FONT))
            linked.append(i)
        elif kind is datetime:
            cells[i] = _Styled(value, looks.body(ws, number_format=DATETIME_FORMAT))
        elif kind is date:  # a district's table may hold a date: shown as one, not as a serial number
            cells[i] = _Styled(value, looks.body(ws, number_format=DATE_FORMAT))
    return cells, linked


def _text_cell(ws: Any, looks: _Looks, text: str, fill: PatternFill | None) -> Any:
    """A string cell that can never become a formula; plain ``str`` when no style is needed."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    formula_like = text.startswith(FORMULA_START)
    if not (formula_like or fill):
        return text
    return _Styled(text, looks.body(ws, fill=fill, quote=formula_like))


class _Styled(NamedTuple):
    """A value to be written in ``cell``, a sheet's reused ``_BodyCell`` of one look (a status colour, a
    link, a date-time format, the quote prefix). A text in it is always a string cell, never a formula."""

    value: Any
    cell: Cell


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

    Every other value (and every empty cell, so the borders are whole) goes out in one reused
    ``_BodyCell`` in the body style, whose style index is looked up once per sheet; a value of
    another look (``_Styled``) in its look's reused cell. A row's height is kept as the
    ``<row>`` attributes themselves (openpyxl's ``RowDimension`` costs 30 µs a row to make).

    The file is byte for byte the one openpyxl writes through ``create_sheet``, ``append``
    and ``cell.hyperlink``, so Excel, WPS and LibreOffice read it as before. This leans on
    openpyxl 3.1's write-only internals (``Workbook._add_sheet``,
    ``WriteOnlyWorksheet._get_writer``/``_values_to_row``, ``WorksheetWriter.write_hyperlinks``);
    ``tests/test_ledger.py`` reads every cell, style and link back.
    """

    def __init__(self, wb: Workbook, title: str) -> None:
        super().__init__(parent=wb, title=title)
        self.links: list[tuple[str, str]] = []
        self.body: Cell | None = None
        self.row_dimensions: dict[int, dict[str, str]] = {}  # type: ignore[assignment]  # row → <row> attributes

    @classmethod
    def create(cls, wb: Workbook, title: str, body: Callable[[Any], Cell]) -> _LedgerSheet:
        """A new last sheet of the write-only workbook ``wb``, as ``wb.create_sheet(title)`` adds one;
        ``body`` makes the sheet's reused cell for plain values."""
        ws = cls(wb, title)
        ws.body = body(ws)
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
        """The row's cells for the writer: a ``Cell`` as it is, a ``_Styled`` value in its look's reused cell,
        any other value (``None`` too: an empty bordered cell) in the sheet's reused body cell."""
        cell = self.body
        for column, value in enumerate(values, 1):
            kind = value.__class__
            if kind is _Styled:
                styled = value.cell
                styled.value = value.value
                if styled.data_type == "f":  # openpyxl took a text starting with "=" for a formula
                    styled.data_type = "s"
                styled.column, styled.row = column, row_idx
                yield styled
            elif isinstance(value, Cell):
                value.column, value.row = column, row_idx
                yield value
            else:
                cell.value = value
                cell.column, cell.row = column, row_idx
                yield cell


class _BodyCell(Cell):
    """A cell with a fixed style whose index is known: openpyxl's ``Cell.style_id`` hashes the style
    for every cell it writes."""

    __slots__ = ("_style_id",)
    has_style = True

    def __init__(self, ws: Any, style_array: Any, style_id: int) -> None:
        super().__init__(ws, row=1, column=1, style_array=style_array)
        self._style_id = style_id

    @property
    def style_id(self) -> int:
        return self._style_id


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
        self._bodies: dict[tuple[int, int, int, bool, str | None], Cell] = {}

    def body(
        self, ws: Any, *, fill: PatternFill | None = None, font: Font | None = None, quote: bool = False,
        number_format: str | None = None,
    ) -> Cell:
        """The reused cell of ``ws`` for values of this look (made once per sheet, its style index known)."""
        key = (id(ws), id(fill), id(font), quote, number_format)
        cell = self._bodies.get(key)
        if cell is None:
            array = _style_array(ws, fill, font, None, quote, number_format)
            cell = self._bodies[key] = _BodyCell(ws, array, ws.parent._cell_styles.add(array))
        return cell

    def plain_cell(self, ws: Any) -> Cell:
        """The cell ``ws`` reuses for every plain value: the body style (border, top, wrap) and nothing else."""
        array = _style_array(ws, None, None, None, False)
        return _BodyCell(ws, array, ws.parent._cell_styles.add(array))

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
    prototype.border = BORDER
    prototype.alignment = alignment or WRAP
    if number_format:
        prototype.number_format = number_format
    if fill:
        prototype.fill = fill
    if font:
        prototype.font = font
    prototype.quotePrefix = quote
    return prototype._style  # the cell's style indexes (openpyxl's StyleArray)


def column_widths(table: Table) -> list[float]:
    """Widths in Excel character units: the table's own for a column, else by header (``WIDTHS``)."""
    return [table.text_widths.get(i) or WIDTHS.get(h, DEFAULT_WIDTH) for i, h in enumerate(table.headers)]


def display_width(text: str) -> int:
    """Columns a text needs: GBK encodes CJK (and full-width forms) in two bytes, ASCII in one."""
    if "\n" in text:  # the widest line
        return max(display_width(line) for line in text.split("\n"))
    return len(text) if text.isascii() else len(text.encode("gbk", "replace"))


def _add_status_chart(ws: Any, n_districts: int, max_count: int) -> None:
    """A stacked bar per district: its projects by status, coloured like the status cells; placed under the
    table, so the sheet is no wider than its columns when printed."""
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
    ws.add_chart(chart, f"A{n_districts + 5}")  # below the table and its 合计: the table prints at full width


def save_atomically(wb: Workbook, path: Path) -> None:
    """Save to a temporary file beside ``path``, then swap it in durably; never leave a half file."""
    atomic_write(path, wb.save, _mode_for(path))


def _mode_for(path: Path) -> int:
    """Keep the permissions of the workbook being replaced (mkstemp creates 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o644
