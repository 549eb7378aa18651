"""Summary tables (申报汇总表, spec section 3) from .xlsx, .xlsm and .xls bytes.

``parse_summary_table(data, filename, sniffed)`` finds the sheet and the header
row that hold the table wherever they are (title rows, a 填报单位 row, blank
rows, a two-level header such as 专利情况 over three columns), maps the headers
to the spec's canonical columns and reads one ``SummaryRow`` per project.

- Recognized as a summary table by its header row (at least three canonical
  columns, one of them 项目名称 or 牵头申报单位) or by a title containing
  ``汇总表``; otherwise ``None``.
- Required columns (their absence is reported in ``missing_columns``): 项目名称,
  牵头申报单位, 统一社会信用代码, 项目类别, 申请资助金额 — the ones a project
  cannot be identified or judged without. The other columns the rules use may
  come from the form.
- Skipped rows: blank, 合计/小计/总计, and 注/说明/填表人/审核人 rows.
- Values: figures through ``parse_number`` (text kept when it is no number, so
  the rules can quote it), 是/否 and 新建/升级 normalized, text trimmed. Text that
  starts with ``= + - @`` and is no number stays text and is listed in
  ``formula_text``. Formula cells give their cached values (openpyxl
  ``data_only``; xlrd reads only values); macros are never run.
- Limits: at most ``MAX_ROWS`` rows and ``MAX_COLS`` columns of a sheet are read
  (a hostile file declaring a million rows costs nothing); a package whose
  parts inflate beyond ``MAX_UNPACKED`` is refused before reading.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from parsers.normalize import (
    canonical_column,
    clean_text,
    fold_header,
    looks_like_formula,
    parse_number,
    parse_project_type,
    parse_yes_no,
)
from parsers.types import ParseError, SummaryRow, SummaryTable

MAX_ROWS, MAX_COLS, HEADER_SCAN = 5000, 200, 30
MAX_UNPACKED = 100 * 1024 * 1024
REQUIRED = ("项目名称", "牵头申报单位", "统一社会信用代码", "项目类别", "申请资助金额")
NUMERIC = frozenset({"序号", "有效专利数", "有效发明专利数", "PCT申请数", "申请资助金额"})
CODE_LIKE = frozenset({"统一社会信用代码", "联系电话"})  # digits that must stay text
SKIP_PREFIXES = ("合计", "小计", "总计", "注", "说明", "填表人", "审核人", "备注：", "备注:")
_DISTRICT = re.compile(r"填报单位\s*(?:[(（]\s*盖章\s*[)）])?\s*[:：]?\s*(.*)")
_DISTRICT_END = re.compile(r"\s{2,}|填报日期|填报时间|联系人|日期")

Grid = list[tuple[Any, ...]]


@dataclass(frozen=True)
class _Header:
    row: int  # 0-based index of the (last) header row
    columns: dict[int, tuple[str, str]]  # column index -> (canonical, header text as found)
    score: int


def parse_summary_table(data: bytes, filename: str, sniffed: str) -> SummaryTable | None:
    """The summary table in a workbook, ``None`` when the workbook holds none."""
    sheets = _read_xls(data, filename) if sniffed == "xls" else _read_xlsx(data, filename)
    best: tuple[str, Grid, _Header | None] | None = None
    for name, grid in sheets:
        header = _find_header(grid)
        titled = _has_title(grid)
        if header is None and not titled:
            continue
        if best is None or (header.score if header else 0) > (best[2].score if best[2] else 0):
            best = (name, grid, header)
    if best is None:
        return None
    name, grid, header = best
    return _table(filename, name, grid, header)


# -- reading the workbook ----------------------------------------------------------


def _read_xlsx(data: bytes, filename: str) -> list[tuple[str, Grid]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNPACKED:
                raise ParseError(filename, "表格文件解压后过大，无法读取")
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_vba=False,
                                    keep_links=False)
        try:
            return [(ws.title, _grid(ws.iter_rows(max_col=MAX_COLS, values_only=True)))
                    for ws in wb.worksheets if hasattr(ws, "iter_rows")]
        finally:
            wb.close()
    except ParseError:
        raise
    except Exception as e:
        raise ParseError(filename, f"表格文件已损坏或格式不正确，无法打开（{type(e).__name__}）") from e


def _read_xls(data: bytes, filename: str) -> list[tuple[str, Grid]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        try:
            out = []
            for i in range(book.nsheets):
                sh = book.sheet_by_index(i)
                rows = (tuple(_xls_value(c) for c in sh.row(r)[:MAX_COLS]) for r in range(min(sh.nrows, MAX_ROWS)))
                out.append((sh.name, _grid(rows)))
            return out
        finally:
            book.release_resources()
    except Exception as e:
        if "encrypt" in str(e).lower():
            raise ParseError(filename, "表格文件已加密，请取消密码后重新发送") from e
        raise ParseError(filename, f"旧版 Excel（.xls）文件已损坏，无法打开（{type(e).__name__}）") from e


def _xls_value(cell: Any) -> Any:
    import xlrd

    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    return cell.value


def _grid(rows: Iterable[Sequence[Any]]) -> Grid:
    out: Grid = []
    for i, row in enumerate(rows):
        if i >= MAX_ROWS:
            break
        out.append(tuple(row))
    return out


# -- finding the table ------------------------------------------------------------------


def _columns(row: Sequence[Any]) -> dict[int, tuple[str, str]]:
    found: dict[int, tuple[str, str]] = {}
    seen: set[str] = set()
    for i, cell in enumerate(row):
        if isinstance(cell, str) and len(cell) <= 60:
            canonical = canonical_column(cell)
            if canonical and canonical not in seen:
                found[i] = (canonical, clean_text(cell) or "")
                seen.add(canonical)
    return found


def _find_header(grid: Grid) -> _Header | None:
    """The best header row in the first rows, merged with the row below when that is a sub-header."""
    best: _Header | None = None
    for r in range(min(len(grid), HEADER_SCAN)):
        upper = _columns(grid[r])
        lower = _columns(grid[r + 1]) if r + 1 < len(grid) else {}
        header = _Header(r, upper, len(upper))
        if upper and lower and not set(lower) & set(upper):  # a sub-header row (专利情况 → 有效专利数 …)
            known = {c for c, _ in upper.values()}
            merged = {**upper, **{i: c for i, c in lower.items() if c[0] not in known}}
            header = _Header(r + 1, merged, len(merged))
        names = {c for c, _ in header.columns.values()}
        if header.score >= 3 and names & {"项目名称", "牵头申报单位"} and (best is None or header.score > best.score):
            best = header
    return best


def _has_title(grid: Grid) -> bool:
    return any(isinstance(c, str) and "汇总表" in c for row in grid[:5] for c in row)


def _district(grid: Grid, until: int) -> str | None:
    for row in grid[:until]:
        for i, cell in enumerate(row):
            if not isinstance(cell, str) or "填报单位" not in cell:
                continue
            match = _DISTRICT.search(cell.replace("\n", " "))
            value = match.group(1) if match else ""
            value = _DISTRICT_END.split(value.strip(), maxsplit=1)[0] if value.strip() else ""
            if not value:
                value = next((str(c) for c in row[i + 1:] if clean_text(c)), "")
            return clean_text(value.strip(" ：:"))
    return None


# -- the rows ------------------------------------------------------------------------------


def _table(filename: str, sheet: str, grid: Grid, header: _Header | None) -> SummaryTable:
    if header is None:
        return SummaryTable(filename, sheet, 0, _district(grid, HEADER_SCAN), {}, list(REQUIRED), [])
    columns = {canonical: text for canonical, text in header.columns.values()}
    rows = []
    for r in range(header.row + 1, len(grid)):
        row = _row(grid[r], header.columns, r + 1)
        if row is not None:
            rows.append(row)
    return SummaryTable(
        filename=filename, sheet=sheet, header_row=header.row + 1, district=_district(grid, header.row),
        columns=columns, missing_columns=[c for c in REQUIRED if c not in columns], rows=rows,
    )


def _skip(cells: Sequence[Any]) -> bool:
    filled = [c for c in cells if clean_text(c) is not None]
    if not filled:
        return True
    first = fold_header(filled[0])
    return any(first.startswith(p.rstrip("：:")) for p in SKIP_PREFIXES)


def _row(cells: Sequence[Any], columns: dict[int, tuple[str, str]], number: int) -> SummaryRow | None:
    picked = {canonical: cells[i] if i < len(cells) else None for i, (canonical, _) in columns.items()}
    if _skip(list(picked.values())):
        return None
    values: dict[str, Any] = {}
    formula_text: list[str] = []
    for canonical, raw in picked.items():
        if looks_like_formula(raw):
            values[canonical] = raw
            formula_text.append(canonical)
        else:
            values[canonical] = _value(canonical, raw)
    return SummaryRow(row_number=number, values=values, formula_text=formula_text)


def _value(canonical: str, raw: Any) -> Any:
    if isinstance(raw, float | int) and not isinstance(raw, bool) and canonical in CODE_LIKE:
        return str(parse_number(raw))
    if canonical in NUMERIC:
        n = parse_number(raw)
        return n if n is not None else clean_text(raw)
    if hasattr(raw, "isoformat"):  # a date cell, e.g. in 备注
        return raw.isoformat()
    text = clean_text(raw) if not isinstance(raw, bool) else ("是" if raw else "否")
    if text is None:
        return None
    if canonical == "部省市属事业单位":
        return parse_yes_no(text) or text
    if canonical == "项目类别":
        return parse_project_type(text) or text
    if canonical == "统一社会信用代码":
        return text.replace(" ", "")
    return text
