"""Summary tables (申报汇总表, spec section 3) from .xlsx, .xlsm and .xls bytes.

``parse_summary_table(data, filename, sniffed)`` finds the sheet and the header
row that hold the table wherever they are (title rows, a 填报单位 row, blank
rows, a two-level header such as 专利情况 over three columns), maps the headers
to the spec's canonical columns and reads one ``SummaryRow`` per project.

- Recognized as a summary table by its header row (at least three canonical
  columns, one of them 项目名称 or 牵头申报单位, two of them more than contact
  columns: a 单位名称/联系人/联系电话 list is no table) or by a title containing
  ``汇总表``; otherwise ``None``. With several sheets the one whose header row
  knows most columns wins and ``sheet`` names it.
- Required columns (their absence is reported in ``missing_columns``, not
  raised): 项目名称, 牵头申报单位, 统一社会信用代码, 项目类别, 申请资助金额 — the
  ones a project cannot be identified, matched to its form or judged without.
  The other columns the rules use (单位性质, 合作服务机构, the patent counts …)
  may come from the form; a blank cell there is the rules' ``MISSING_FIELD``.
- ``header_row`` is the 1-based number of the (lower) header row; each row's
  ``row_number`` is its 1-based sheet row.
- Skipped rows: blank ones, ones with nothing but a 序号, 合计/小计/总计 rows and
  注/说明/填表人/审核人 rows.
- Values: figures through ``parse_number`` (text kept when it is no number, so
  the rules can quote it), 是/否 and 新建/升级 normalized, text trimmed. Text that
  starts with ``= + - @`` and is no number stays text and is listed in
  ``formula_text``. Formula cells give their cached values (openpyxl
  ``data_only``; xlrd reads only values); macros are never loaded or run.
- The bytes decide the reader (a zip package: openpyxl; an OLE2 file: xlrd),
  ``sniffed`` only names the file type in messages. An OLE2 file holding an
  ``EncryptedPackage`` is a password-protected .xlsx.
- Limits: at most ``MAX_ROWS`` rows and ``MAX_COLS`` columns of a sheet, and
  ``MAX_SHEETS`` sheets, are read; reading stops there instead of failing, so
  a hostile file declaring a million rows costs nothing. A package whose parts
  inflate beyond ``MAX_UNPACKED`` is refused before reading. Sheets are read
  one at a time and only the best so far is kept; .xls rows are read ragged,
  so one far-away cell does not pad every row. The declared sheet dimension is
  not trusted (see ``_xlsx_rows``).
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from parsers.normalize import (
    canonical_column,
    clean_text,
    looks_like_formula,
    parse_number,
    parse_project_type,
    parse_yes_no,
)
from parsers.programs import named_program, named_year, year_in_name
from parsers.types import ParseError, SummaryRow, SummaryTable

MAX_ROWS, MAX_COLS, MAX_SHEETS, HEADER_SCAN, TITLE_SCAN = 5000, 200, 50, 30, 5
MAX_UNPACKED = 100 * 1024 * 1024
REQUIRED = ("项目名称", "牵头申报单位", "统一社会信用代码", "项目类别", "申请资助金额")
KEY_COLUMNS = frozenset({"项目名称", "牵头申报单位"})
CONTACT_COLUMNS = frozenset({"序号", "联系人", "联系电话", "备注"})  # a contact list has these too
NUMERIC = frozenset({"序号", "有效专利数", "有效发明专利数", "PCT申请数", "申请资助金额"})
CODE_LIKE = frozenset({"统一社会信用代码", "联系电话"})  # digits that must stay text

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
ENCRYPTED = "文件已加密，请取消密码后重新发送"
CORRUPT = "表格文件已损坏或不完整，无法打开，请重新保存后发送"

_NOT_A_ROW = re.compile(r"(?:合\s*计|小\s*计|总\s*计)\s*[:：]?\s*$"  # a sum row's label
                       r"|(?:注|说明|填表说明|填表人|审核人|负责人)\s*[:：\d一、.]")  # not 注塑…
_DISTRICT = re.compile(r"填报单位\s*(?:[(（]\s*盖章\s*[)）])?\s*[:：]?\s*(.*)")
_DISTRICT_END = re.compile(r"\s{2,}|填报日期|填报时间|联系人|日期[:：]")

_LIST_WORDS = ("申报表", "汇总", "一览表", "名单", "统计表", "推荐表")

Grid = list[tuple[Any, ...]]


@dataclass(frozen=True)
class _Header:
    row: int  # 0-based index of the (lower) header row
    columns: dict[int, tuple[str, str]]  # column index -> (canonical, header text as found), by index

    @property
    def names(self) -> set[str]:
        return {canonical for canonical, _ in self.columns.values()}


def parse_summary_table(data: bytes, filename: str, sniffed: str) -> SummaryTable | None:
    """The summary table in a workbook, ``None`` when the workbook holds none; ``ParseError`` if unreadable."""
    best: tuple[str, Grid, _Header | None] | None = None
    for name, grid in _read_sheets(data, filename, sniffed):
        header = _find_header(grid)
        if header is None and not _has_title(grid):
            continue
        if best is None or _score(header) > _score(best[2]):
            best = (name, grid, header)
    if best is None:
        return None
    return _table(filename, *best)


def _score(header: _Header | None) -> int:
    return len(header.columns) if header else 0


# -- reading the workbook ------------------------------------------------------------


def _read_sheets(data: bytes, filename: str, sniffed: str) -> Iterator[tuple[str, Grid]]:
    """Each sheet's name and rows, one sheet at a time (only the best so far is kept by the caller)."""
    if data.startswith(OLE_MAGIC):
        if ENCRYPTED_STREAM in data:
            raise ParseError(filename, ENCRYPTED)
        return _read_xls(data, filename)
    if data.startswith(b"PK"):
        return _read_xlsx(data, filename)
    kind = "旧版 Excel（.xls）" if sniffed == "xls" else "Excel"
    raise ParseError(filename, f"文件内容不是{kind}表格，无法打开，请重新保存后发送")


def _read_xlsx(data: bytes, filename: str) -> Iterator[tuple[str, Grid]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if sum(i.file_size for i in z.infolist()) > MAX_UNPACKED:
                raise ParseError(filename, "表格文件解压后过大，无法读取")
        with warnings.catch_warnings():  # "extension is not supported", "no default style": noise here
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_vba=False,
                                        keep_links=False)
            try:
                for ws in wb.worksheets[:MAX_SHEETS]:
                    if hasattr(ws, "iter_rows"):  # chartsheets have no cells
                        yield ws.title, _grid(_xlsx_rows(ws))
            finally:
                wb.close()
    except ParseError:
        raise
    except Exception as e:  # openpyxl and zipfile raise a dozen types on damaged files; all mean the same
        raise ParseError(filename, CORRUPT) from e


def _xlsx_rows(ws: Any) -> Iterator[Sequence[Any]]:
    """Every row, up to ``MAX_COLS`` wide, trailing blanks dropped.

    The sheet's declared dimension is ignored: some writers declare ``A1`` for a full sheet, and
    openpyxl's read-only mode would then stop after one row and one column.
    """
    ws.reset_dimensions()
    for row in ws.iter_rows(max_col=MAX_COLS, values_only=True):
        end = len(row)
        while end and row[end - 1] is None:
            end -= 1
        yield row[:end]


def _read_xls(data: bytes, filename: str) -> Iterator[tuple[str, Grid]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True, ragged_rows=True, logfile=io.StringIO())
        try:
            for i in range(min(book.nsheets, MAX_SHEETS)):
                sh = book.sheet_by_index(i)
                rows = (tuple(_xls_value(c) for c in sh.row_slice(r, 0, min(sh.row_len(r), MAX_COLS)))
                        for r in range(min(sh.nrows, MAX_ROWS)))
                yield sh.name, _grid(rows)
                book.unload_sheet(i)
        finally:
            book.release_resources()
    except Exception as e:  # xlrd raises XLRDError, struct.error, IndexError … on damaged files
        if "encrypt" in str(e).lower():
            raise ParseError(filename, ENCRYPTED) from e
        raise ParseError(filename, CORRUPT) from e


def _xls_value(cell: Any) -> Any:
    import xlrd

    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    return cell.value


def _grid(rows: Iterable[Sequence[Any]]) -> Grid:
    out: Grid = []
    for row in rows:
        if len(out) >= MAX_ROWS:
            break
        out.append(tuple(row))
    return out


# -- finding the table ----------------------------------------------------------------


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


def _header_at(grid: Grid, r: int) -> _Header:
    """Row ``r`` as a header, joined with the row below when that is a sub-header (专利情况 → 有效专利数 …).

    A sub-header names columns only where the upper row is blank (cells merged across) and adds no
    column the upper row already has; data rows fill the header's own columns, so they never qualify.
    """
    upper = _columns(grid[r])
    lower = _columns(grid[r + 1]) if upper and r + 1 < len(grid) else {}
    names = {c for c, _ in upper.values()}
    if not lower or set(lower) & set(upper) or names & {c for c, _ in lower.values()}:
        return _Header(r, upper)
    return _Header(r + 1, dict(sorted({**upper, **lower}.items())))


def _find_header(grid: Grid) -> _Header | None:
    """The header row knowing most columns among the first rows; None when no row looks like one."""
    best: _Header | None = None
    for r in range(min(len(grid), HEADER_SCAN)):
        header = _header_at(grid, r)
        if _looks_like_table(header.names) and _score(header) > _score(best):
            best = header
    return best


def _looks_like_table(names: set[str]) -> bool:
    return len(names) >= 3 and bool(names & KEY_COLUMNS) and len(names - CONTACT_COLUMNS) >= 2


def _has_title(grid: Grid) -> bool:
    """A title saying 汇总表, or naming a program of the notice as a list (申报表, 名单 …)."""
    return any("汇总表" in t or any(w in t for w in _LIST_WORDS) for t in _titles(grid, TITLE_SCAN))


def _titles(grid: Grid, until: int) -> list[str]:
    """Title cells above the header: text saying 汇总表 or naming one of the notice's programs."""
    return [c for row in grid[: min(until, TITLE_SCAN)] for c in row
            if isinstance(c, str) and len(c) <= 120 and ("汇总表" in c or named_program(c))]


def _program_and_year(grid: Grid, until: int, filename: str) -> tuple[str | None, int | None]:
    """The program and year the title names; without a title naming them, the file name's."""
    titles = _titles(grid, until)
    program = next((p for t in titles if (p := named_program(t))), None) or named_program(filename)
    year = next((y for t in titles if (y := named_year(t))), None)
    if year is None and not titles:
        year = year_in_name(filename)
    return program, year


def _district(grid: Grid, until: int) -> str | None:
    """The 填报单位 above the header: ``填报单位（盖章）：云龙区知识产权局    填报日期：…`` or the next cell."""
    for row in grid[:until]:
        for i, cell in enumerate(row):
            if isinstance(cell, str) and "填报单位" in cell:
                match = _DISTRICT.search(cell.replace("\n", " "))
                value = _DISTRICT_END.split(match.group(1).strip(), maxsplit=1)[0] if match else ""
                if not value.strip(" ：:"):
                    value = next((str(c) for c in row[i + 1:] if clean_text(c)), "")
                return clean_text(value.strip(" ：:"))
    return None


# -- the rows ---------------------------------------------------------------------------


def _table(filename: str, sheet: str, grid: Grid, header: _Header | None) -> SummaryTable:
    if header is None:
        program, year = _program_and_year(grid, TITLE_SCAN, filename)
        return SummaryTable(filename, sheet, 0, _district(grid, HEADER_SCAN), {}, list(REQUIRED), [],
                            program=program, year=year)
    columns = {canonical: text for canonical, text in header.columns.values()}
    rows = [row for r in range(header.row + 1, len(grid)) if (row := _row(grid[r], header.columns, r + 1))]
    program, year = _program_and_year(grid, header.row, filename)
    return SummaryTable(
        filename=filename, sheet=sheet, header_row=header.row + 1, district=_district(grid, header.row),
        columns=columns, missing_columns=[c for c in REQUIRED if c not in columns], rows=rows,
        program=program, year=year,
    )


def _is_project(cells: Sequence[Any], picked: dict[str, Any]) -> bool:
    """Not blank, not only a 序号, and not a 合计 or 注 row (judged by the row's first filled cell)."""
    if all(clean_text(v) is None for k, v in picked.items() if k != "序号"):
        return False
    first = next((text for c in cells if (text := clean_text(c)) is not None), "")
    return not _NOT_A_ROW.match(first)


def _row(cells: Sequence[Any], columns: dict[int, tuple[str, str]], number: int) -> SummaryRow | None:
    picked = {canonical: cells[i] if i < len(cells) else None for i, (canonical, _) in columns.items()}
    if not _is_project(cells, picked):
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
    """One cell normalized for its column (see the module docstring)."""
    if isinstance(raw, bool):
        raw = "是" if raw else "否"
    if isinstance(raw, int | float) and canonical in CODE_LIKE:
        return str(parse_number(raw) if parse_number(raw) is not None else raw)
    if canonical in NUMERIC:
        number = parse_number(raw)
        return number if number is not None else clean_text(raw)
    if hasattr(raw, "isoformat"):  # a date cell, e.g. in 备注
        return raw.isoformat()
    text = clean_text(raw)
    if text is None:
        return None
    if canonical == "部省市属事业单位":
        return parse_yes_no(text) or text
    if canonical == "项目类别":
        return parse_project_type(text) or text
    if canonical == "统一社会信用代码":
        return text.replace(" ", "")
    return text
