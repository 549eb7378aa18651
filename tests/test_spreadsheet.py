"""Summary tables (spec section 3): every golden workbook parses to the JSON beside it.

The files and their expected results are written by ``tests/make_doc_data.py``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from parsers.documents import parse_document
from parsers.sniff import sniff
from parsers.spreadsheet import MAX_ROWS, parse_summary_table
from parsers.types import ParseError, SummaryTable
from samples.tables import Formula, sample_row, summary_table_xlsx

TABLES = Path(__file__).parent / "data" / "docs" / "tables"
GOLDEN = sorted(p for p in TABLES.iterdir() if p.suffix in (".xlsx", ".xlsm", ".xls"))


def parsed(path: Path) -> object:
    """What the parser makes of a file, in the golden JSON's terms."""
    data = path.read_bytes()
    try:
        table = parse_summary_table(data, path.name, sniff(data, path.name))
    except ParseError as e:
        return {"error": e.code, "reason": e.reason}
    return table.to_dict() if table is not None else None


def test_golden_files_exist():
    """The golden set covers every layout and failure the spec and the issue name."""
    names = {p.name for p in GOLDEN}
    assert len(names) >= 18
    assert {"two_level.xlsx", "macro.xlsm", "legacy.xls", "encrypted.xlsx", "encrypted.xls"} <= names


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden(path: Path):
    """Each golden workbook parses to exactly its expected JSON."""
    expected = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
    assert parsed(path) == expected


@pytest.mark.parametrize("name", ["truncated.xls", "encrypted.xls", "encrypted.xlsx"])
def test_unreadable_files_go_through_the_dispatcher_as_parse_errors(name: str):
    """Damaged and password-protected files raise ParseError through the dispatcher, whatever they sniff as.

    (A truncated .xlsx sniffs as a damaged zip and is the archive code's to report.)
    """
    data = (TABLES / name).read_bytes()
    with pytest.raises(ParseError) as caught:
        parse_document(data, name, sniff(data, name))
    assert caught.value.code == "UNREADABLE_FILE"


def test_encrypted_xlsx_says_so_whatever_the_sniffed_type():
    """A password-protected .xlsx (an OLE2 EncryptedPackage) is reported as encrypted, not as damaged."""
    data = (TABLES / "encrypted.xlsx").read_bytes()
    for sniffed in ("xlsx", "xls"):
        with pytest.raises(ParseError, match="已加密"):
            parse_summary_table(data, "encrypted.xlsx", sniffed)


def test_not_a_spreadsheet_at_all():
    """Bytes that are neither a zip package nor an OLE2 file are a ParseError naming the file."""
    with pytest.raises(ParseError) as caught:
        parse_summary_table(b"hello, not a workbook", "a.xlsx", "xlsx")
    assert caught.value.filename == "a.xlsx"


def test_formula_cells_without_cached_values_read_as_blank():
    """An openpyxl-written formula has no cached value: the cell reads blank, never the formula text."""
    data = summary_table_xlsx("云龙区", [sample_row(0, 申请资助金额=Formula("=40+10"))])
    table = parse_summary_table(data, "t.xlsx", "xlsx")
    assert isinstance(table, SummaryTable)
    assert table.rows[0].values["申请资助金额"] is None
    assert table.rows[0].formula_text == []


def test_row_limit_stops_reading_instead_of_failing(monkeypatch: pytest.MonkeyPatch):
    """A sheet longer than the limit is read up to the limit; the rest is ignored, not an error."""
    monkeypatch.setattr("parsers.spreadsheet.MAX_ROWS", 10)
    data = summary_table_xlsx("云龙区", [sample_row(i) for i in range(20)], total_row=False, note_row=False)
    table = parse_summary_table(data, "t.xlsx", "xlsx")
    assert isinstance(table, SummaryTable)
    assert [r.row_number for r in table.rows] == list(range(4, 11))
    assert MAX_ROWS >= 5000


def test_only_serial_numbers_is_no_project():
    """Template rows pre-numbered 1…n with nothing else filled in are not projects."""
    rows = [sample_row(0), {"序号": 2}, {"序号": 3}]
    table = parse_summary_table(summary_table_xlsx("云龙区", rows), "t.xlsx", "xlsx")
    assert isinstance(table, SummaryTable)
    assert [r.values["序号"] for r in table.rows] == [1]


def test_best_sheet_wins_over_a_title_only_sheet():
    """A sheet with only a 汇总表 title loses to a later sheet that holds the header row."""
    data = summary_table_xlsx("云龙区", [sample_row(0)], extra_sheets=("2024年申报汇总表说明",), sheet_name="数据")
    table = parse_summary_table(data, "t.xlsx", "xlsx")
    assert isinstance(table, SummaryTable)
    assert table.sheet == "数据"


def test_a_dimension_of_a1_does_not_hide_the_table():
    """Some writers declare the sheet as ``A1``; every row and column is read all the same."""
    src = zipfile.ZipFile(io.BytesIO((TABLES / "plain.xlsx").read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            if name.startswith("xl/worksheets/"):
                body = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1"', body)
            dst.writestr(name, body)
    table = parse_summary_table(out.getvalue(), "plain.xlsx", "xlsx")
    assert table is not None and table.to_dict() == parsed(TABLES / "plain.xlsx")
