"""Summary tables (申报汇总表) as district offices lay them out: for the demo and the tests.

``summary_table_xlsx(district, rows)`` writes the typical layout of spec
section 3 with openpyxl: a merged title, the 填报单位 row, a header row (or a
two-level header with 专利情况 over the three patent columns), one row per
project, a 合计 row with formulas and a 注 row. Keyword options switch each
part off or change the header texts, so the parser's tests can cover the
variants offices produce.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from samples.projects import sample_project

COLUMNS = ("序号", "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "是否部省市属事业单位", "项目类别",
           "技术领域", "合作服务机构", "有效专利数（件）", "有效发明专利数（件）", "PCT申请数（件）",
           "申请资助金额（万元）", "联系人", "联系电话", "备注")
CANONICAL = ("序号", "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "部省市属事业单位", "项目类别",
             "技术领域", "合作服务机构", "有效专利数", "有效发明专利数", "PCT申请数", "申请资助金额", "联系人",
             "联系电话", "备注")
PATENT_GROUP = ("有效专利数", "有效发明专利数", "PCT申请数")
TITLE = "2024年徐州市高价值专利培育计划项目申报汇总表"
NOTE = "注：1.项目类别填写新建或升级；2.申请资助金额单位为万元；3.每个项目须另附申报书。"


class Formula(str):
    """A cell value written as a real formula (``Formula("=40+10")``); other text starting with ``=`` is text."""


def sample_row(i: int, **overrides: Any) -> dict[str, Any]:
    """Project ``i``'s summary row (canonical column -> value) with ``overrides``.

    The projects of ``samples.projects.sample_project``: valid GB 32100-2015 codes, Xuzhou companies.
    """
    return {**sample_project(i).row, **overrides}


def summary_table_xlsx(
    district: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: bool = True,
    filler_row: bool = True,
    two_level_header: bool = False,
    total_row: bool = True,
    note_row: bool = True,
    header_variants: Mapping[str, str] | None = None,
    sheet_name: str = "汇总表",
    extra_sheets: Sequence[str] = (),
    blank_rows: int = 0,
    columns: Sequence[str] | None = None,
    title_text: str = TITLE,
) -> bytes:
    """An .xlsx holding one summary table; ``rows`` map canonical column names to cell values.

    ``header_variants`` overrides header texts by canonical name (e.g. ``{"申请资助金额": "申请资金\\n(万元)"}``);
    ``extra_sheets`` are empty-ish sheets placed before the table's sheet; ``columns`` (canonical
    names) keeps only those columns, for tables that lack some; ``blank_rows`` blank rows go above the
    header. An empty mapping in ``rows`` writes a blank row; a ``Formula`` value is written as a formula
    (without a cached value: openpyxl computes none). ``title_text`` is the title (another program's,
    another year's).
    """
    keep = [i for i, c in enumerate(CANONICAL) if columns is None or c in columns]
    names = [CANONICAL[i] for i in keep]
    wb = Workbook()
    first = wb.active
    for name in extra_sheets:
        ws = first if first.title == "Sheet" and first.max_row == 1 else wb.create_sheet()
        ws.title = name
        ws.append(["填表说明"])
        ws.append(["请按模板填写，每个项目一行。"])
    ws = wb.create_sheet(sheet_name) if extra_sheets else first
    ws.title = sheet_name
    texts = [(header_variants or {}).get(CANONICAL[i], COLUMNS[i]) for i in keep]
    width = len(texts)
    if title:
        ws.append([title_text])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=width)
        ws.cell(ws.max_row, 1).font = Font(size=16, bold=True)
    if filler_row:
        ws.append([f"填报单位（盖章）：{district}知识产权局", None, None, None, None, None, None, None, None, None,
                   "填报日期：2024年11月5日"])
    for _ in range(blank_rows):
        ws.append([])
    header_top = ws.max_row + 1 if ws.max_row > 1 or title or filler_row else 1
    if two_level_header:
        _two_level(ws, texts, names, header_top)
    else:
        ws.append(texts)
    first_data = ws.max_row + 1
    for row in rows:
        values = [row.get(c) for c in names]
        ws.append(values)
        for cell, value in zip(ws[ws.max_row], values, strict=False):
            if isinstance(value, str) and value.startswith("=") and not isinstance(value, Formula):
                cell.data_type = "s"  # text a district typed, not a formula (openpyxl would make it one)
    if total_row and rows:
        total: list[Any] = ["合计"] + [None] * (width - 1)
        for c in (*PATENT_GROUP, "申请资助金额"):
            if c in names:
                col = get_column_letter(names.index(c) + 1)
                total[names.index(c)] = f"=SUM({col}{first_data}:{col}{ws.max_row})"
        ws.append(total)
    if note_row:
        ws.append([NOTE])
    for i, text in enumerate(texts, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(8, min(30, 2 * len(text)))
        ws.cell(header_top, i).alignment = Alignment(wrap_text=True, vertical="center")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _two_level(ws: Any, texts: list[str], names: list[str], top: int) -> None:
    """专利情况 merged over the three patent columns; every other header merged over both rows."""
    upper, lower = list(texts), [None] * len(texts)
    group = [names.index(c) for c in PATENT_GROUP]
    for i in group:
        upper[i], lower[i] = None, texts[i]
    upper[group[0]] = "专利情况"
    ws.append(upper)
    ws.append(lower)
    ws.merge_cells(start_row=top, start_column=group[0] + 1, end_row=top, end_column=group[-1] + 1)
    for i in range(len(texts)):
        if i not in group:
            ws.merge_cells(start_row=top, start_column=i + 1, end_row=top + 1, end_column=i + 1)


TRADEMARK_COLUMNS = ("序号", "项目名称", "申报单位", "统一社会信用代码", "有效注册商标数", "马德里国际注册数",
                     "申请资助金额（万元）", "联系人", "联系电话", "备注")


def trademark_table_xlsx(district: str, rows: Sequence[Sequence[Any]], *, year: int = 2024) -> bytes:
    """Another program's summary table, as a district sends it beside ours: the notice's
    高价值商标品牌培育计划 (附件7), titled with its program, columns of its own (``TRADEMARK_COLUMNS``)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总表"
    ws.append([f"{year}年徐州市高价值商标品牌培育计划项目申报汇总表"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(TRADEMARK_COLUMNS))
    ws.cell(1, 1).font = Font(size=16, bold=True)
    ws.append([f"填报单位（盖章）：{district}知识产权局"])
    ws.append(list(TRADEMARK_COLUMNS))
    for n, row in enumerate(rows, start=1):
        ws.append([n, *row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
