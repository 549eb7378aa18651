"""Write the golden summary tables under tests/data/docs/tables/, each with its expected parse as JSON.

Run ``python tests/make_doc_data.py`` from the repository root after changing a case; commit the files.
The expected JSON is built here from what each case writes (the rows, the layout), not by running the
parser, so a test comparing the two checks the parser against the layout. ``<name>.json`` holds
``SummaryTable.to_dict()``, ``null`` for a workbook with no table, or ``{"error": code, "reason": …}``.

How each file is made:

- Most ``.xlsx`` files: ``samples.tables.summary_table_xlsx`` (openpyxl), options per case.
- Files with formulas whose cached values matter (``value_variants``, ``totals_notes``) and the
  ``.xls`` file: the openpyxl file converted by LibreOffice (``soffice --headless --convert-to``),
  which recalculates on load and stores the results: openpyxl writes formulas without values.
- ``macro.xlsm``: an openpyxl file made a macro-enabled package by hand (content type, relationship
  and an ``xl/vbaProject.bin`` of placeholder bytes: it is never run, only present).
- ``encrypted.xls``: LibreOffice ``storeToURL`` with a ``Password`` from a Basic macro placed in a
  throw-away profile (the command line's filter options cannot set one). ``encrypted.xlsx``:
  msoffcrypto-tool (``pip install msoffcrypto-tool``; only this script needs it), as LibreOffice 7.4
  does not encrypt OOXML this way. Without the tool the committed file is kept.
- ``truncated.xlsx``/``truncated.xls``: the first half of a good file; ``garbage.xlsx``: a zip header
  followed by noise.

Set ``SOFFICE`` to the LibreOffice binary when it is not ``soffice`` on the PATH.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from samples.tables import CANONICAL, COLUMNS, Formula, sample_row, summary_table_xlsx  # noqa: E402

OUT = ROOT / "tests" / "data" / "docs" / "tables"
REQUIRED = ("项目名称", "牵头申报单位", "统一社会信用代码", "项目类别", "申请资助金额")
DISTRICT = "云龙区"
PROGRAM = "高价值专利培育计划"
CORRUPT = {"error": "UNREADABLE_FILE", "reason": "表格文件已损坏或不完整，无法打开，请重新保存后发送"}
ENCRYPTED = {"error": "UNREADABLE_FILE", "reason": "文件已加密，请取消密码后重新发送"}

Case = tuple[bytes, Any]  # file bytes, expected JSON value


# -- expected results -------------------------------------------------------------------------


def expected_values(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A sample row as the parser reports it: every header column present, "" as None."""
    return {c: (None if row.get(c) in ("", None) else row.get(c)) for c in names}


def expected_table(name: str, *, header_row: int, rows: Sequence[tuple[int, dict[str, Any], list[str]]],
                   names: Sequence[str] = CANONICAL, headers: Mapping[str, str] | None = None,
                   sheet: str = "汇总表", district: str | None = f"{DISTRICT}知识产权局",
                   program: str | None = PROGRAM, year: int | None = 2024) -> dict[str, Any]:
    texts = {c: " ".join((headers or {}).get(c, h).split()) for c, h in zip(CANONICAL, COLUMNS, strict=True)}
    return {
        "filename": name, "sheet": sheet, "header_row": header_row, "district": district,
        "columns": {c: texts[c] for c in names},
        "missing_columns": [c for c in REQUIRED if c not in names],
        "rows": [{"row_number": n, "values": v, "formula_text": f} for n, v, f in rows],
        "kind": "summary_table",
        "program": program,  # named by the title (a file without one: by its name, here none)
        "year": year,
    }


def plain_rows(first: int, count: int, names: Sequence[str] = CANONICAL) -> list[tuple[int, dict, list]]:
    return [(first + i, expected_values(sample_row(i), names), []) for i in range(count)]


# -- cases ----------------------------------------------------------------------------------------


def plain(name: str) -> Case:
    """Header in row 1, three projects, nothing else."""
    data = summary_table_xlsx(DISTRICT, [sample_row(i) for i in range(3)], title=False, filler_row=False,
                              total_row=False, note_row=False)
    return data, expected_table(name, header_row=1, rows=plain_rows(2, 3), district=None, program=None, year=None)


def title_filler_blank(name: str) -> Case:
    """Title, 填报单位 row, two blank rows above the header, a blank row between projects, 合计 and 注."""
    rows = [sample_row(0), sample_row(1), {}, sample_row(2)]
    data = summary_table_xlsx(DISTRICT, rows, blank_rows=2)
    expect = [*plain_rows(6, 2), (9, expected_values(sample_row(2), CANONICAL), [])]
    return data, expected_table(name, header_row=5, rows=expect)


def two_level(name: str) -> Case:
    """专利情况 merged over the three patent columns; the other headers merged over both header rows."""
    data = summary_table_xlsx(DISTRICT, [sample_row(i) for i in range(4)], two_level_header=True)
    return data, expected_table(name, header_row=4, rows=plain_rows(5, 4))


HEADER_VARIANTS = {
    "项目名称": "项 目\n名 称", "牵头申报单位": "申报单位\n（盖章）", "统一社会信用代码": "社会信用代码(18位)",
    "单位性质": "主体类型", "部省市属事业单位": "部省市属事业单位", "项目类别": "项目类型（新建/升级）",
    "技术领域": "所属领域", "合作服务机构": "合作知识产权\n服务机构", "有效专利数": "有效专利（不含外观设计）（件）",
    "有效发明专利数": "发明专利数(件)", "PCT申请数": "进入国家阶段PCT申请数 （件）",
    "申请资助金额": "申请资金\n(万元)", "联系人": "联系人", "联系电话": "手机", "备注": "备注",
}


def header_variants(name: str) -> Case:
    """Header variants: spaces, line breaks, full/half-width brackets, unit suffixes, hints; no 序号 column.

    The first project's name starts with 注 (注塑…): without a 序号 column it is the row's first cell and
    must not be taken for a 注 row.
    """
    names = [c for c in CANONICAL if c != "序号"]
    rows = [sample_row(0, 项目名称="注塑成型装备专利培育"), sample_row(1)]
    data = summary_table_xlsx(DISTRICT, rows, header_variants=HEADER_VARIANTS, columns=names, total_row=False)
    expect = [(4 + i, expected_values(r, names), []) for i, r in enumerate(rows)]
    return data, expected_table(name, header_row=3, rows=expect, names=names, headers=HEADER_VARIANTS)


VALUE_VARIANTS = [  # (cells written over sample_row(i), the values expected instead)
    ({"申请资助金额": "50万元", "项目类别": "新建项目", "部省市属事业单位": "否 "},
     {"申请资助金额": 50, "项目类别": "新建", "部省市属事业单位": "否"}),
    ({"申请资助金额": "５０", "有效专利数": "1,200", "项目类别": " 升级项目 ",
      "牵头申报单位": "  徐州恒达智能装备有限公司 "},
     {"申请资助金额": 50, "有效专利数": 1200, "项目类别": "升级", "牵头申报单位": "徐州恒达智能装备有限公司"}),
    ({"申请资助金额": " 80 ", "有效发明专利数": "12件", "部省市属事业单位": "N"},
     {"申请资助金额": 80, "有效发明专利数": 12, "部省市属事业单位": "否"}),
    ({"申请资助金额": "50.0", "PCT申请数": "", "序号": "4"},
     {"申请资助金额": 50, "PCT申请数": None, "序号": 4}),
    ({"申请资助金额": Formula("=40+10"), "有效专利数": Formula("=SUM(60,25)"), "部省市属事业单位": "是"},
     {"申请资助金额": 50, "有效专利数": 85, "部省市属事业单位": "是"}),
    ({"申请资助金额": 45.5, "有效专利数": "约90"},
     {"申请资助金额": 45.5, "有效专利数": "约90"}),
]


def value_variants(name: str) -> Case:
    """Numbers as text, full-width digits, spaces, units, thousands separators, formulas (cached by LibreOffice)."""
    rows = [sample_row(i, **written) for i, (written, _) in enumerate(VALUE_VARIANTS)]
    data = libreoffice(summary_table_xlsx(DISTRICT, rows), "xlsx")
    expect = [(4 + i, {**expected_values(sample_row(i), CANONICAL), **want}, [])
              for i, (_, want) in enumerate(VALUE_VARIANTS)]
    return data, expected_table(name, header_row=3, rows=expect)


def totals_notes(name: str) -> Case:
    """小计 and 合计 rows (sums cached by LibreOffice), two 注 rows, 填表人 and 说明 rows: none is a project."""
    rows: list[dict[str, Any]] = [sample_row(0), sample_row(1),
                                  {"序号": "小计", "申请资助金额": Formula("=M4+M5")}, sample_row(2)]
    data = summary_table_xlsx(DISTRICT, rows)
    data = append_rows(data, [["注1：本表一式两份。"], ["说明：金额单位为万元。"],
                              ["填表人：张伟", None, "审核人：王芳"]])
    expect = [*plain_rows(4, 2), (7, expected_values(sample_row(2), CANONICAL), [])]
    return libreoffice(data, "xlsx"), expected_table(name, header_row=3, rows=expect)


def multi_sheet(name: str) -> Case:
    """A 填表说明 sheet first, the table on the second sheet, named 项目汇总."""
    data = summary_table_xlsx(DISTRICT, [sample_row(i) for i in range(2)], extra_sheets=("填表说明",),
                              sheet_name="项目汇总")
    return data, expected_table(name, header_row=3, rows=plain_rows(4, 2), sheet="项目汇总")


FORMULA_TEXT = {"备注": '=HYPERLINK("http://x","y")', "联系电话": "+86 138 5200 1234", "联系人": "@foo",
                "技术领域": "-新材料"}


def formula_text(name: str) -> Case:
    """Text cells starting with = + - @ that are no numbers: kept as text and listed in formula_text."""
    rows = [sample_row(0, **FORMULA_TEXT), sample_row(1, 备注="-5")]
    data = summary_table_xlsx(DISTRICT, rows)
    first = {**expected_values(sample_row(0), CANONICAL), **FORMULA_TEXT}
    listed = [c for c in CANONICAL if c in FORMULA_TEXT]
    second = {**expected_values(sample_row(1), CANONICAL), "备注": "-5"}
    return data, expected_table(name, header_row=3, rows=[(4, first, listed), (5, second, [])])


def missing_columns(name: str) -> Case:
    """A table without 统一社会信用代码, 项目类别 and 申请资助金额: read, the missing ones named."""
    names = ["序号", "项目名称", "牵头申报单位", "单位性质", "合作服务机构", "联系人"]
    data = summary_table_xlsx(DISTRICT, [sample_row(i) for i in range(2)], columns=names)
    return data, expected_table(name, header_row=3, rows=plain_rows(4, 2, names), names=names)


def title_only(name: str) -> Case:
    """A 汇总表 title with no header row it knows: a table with every required column missing."""
    data = sheet_of([["2024年徐州市高价值专利培育计划项目申报汇总表"], ["甲", "乙", "丙"], ["1", "2", "3"]])
    return data, expected_table(name, header_row=0, rows=[], names=[], sheet="Sheet", district=None)


def not_a_table(name: str) -> Case:
    """A contact list (单位名称, 联系人, 联系电话): no summary table, so None."""
    data = sheet_of([["各区知识产权局联系人名单"], ["序号", "单位名称", "联系人", "联系电话", "备注"],
                     [1, "云龙区知识产权局", "张伟", "0516-83000001", None]])
    return data, None


def macro(name: str) -> Case:
    """A macro-enabled package (.xlsm); the macros are never loaded."""
    data = make_xlsm(summary_table_xlsx(DISTRICT, [sample_row(i) for i in range(2)]))
    return data, expected_table(name, header_row=3, rows=plain_rows(4, 2))


def legacy(name: str) -> Case:
    """An .xls (BIFF8, by LibreOffice) with a title, 填报单位 row, two-level header, 合计 and 注."""
    data = libreoffice(summary_table_xlsx(DISTRICT, [sample_row(i) for i in range(3)], two_level_header=True), "xls")
    return data, expected_table(name, header_row=4, rows=plain_rows(5, 3))


def truncated(name: str) -> Case:
    data = summary_table_xlsx(DISTRICT, [sample_row(0)])
    return data[: len(data) // 2], CORRUPT


def truncated_xls(name: str) -> Case:
    data = (OUT / "legacy.xls").read_bytes()
    return data[: len(data) // 2], CORRUPT


def garbage(name: str) -> Case:
    return b"PK\x03\x04" + random.Random(3).randbytes(2000), CORRUPT


def encrypted_xls(name: str) -> Case:
    return libreoffice_encrypted(summary_table_xlsx(DISTRICT, [sample_row(0)]), "xls", "MS Excel 97"), ENCRYPTED


def encrypted_xlsx(name: str) -> Case:
    try:
        from msoffcrypto.format.ooxml import OOXMLFile
    except ImportError:
        print("msoffcrypto-tool not installed: keeping encrypted.xlsx as it is", file=sys.stderr)
        return (OUT / name).read_bytes(), ENCRYPTED
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(summary_table_xlsx(DISTRICT, [sample_row(0)]))).encrypt("1234", out)
    return out.getvalue(), ENCRYPTED


CASES: dict[str, Callable[[str], Case]] = {
    "plain.xlsx": plain, "title_filler_blank.xlsx": title_filler_blank, "two_level.xlsx": two_level,
    "header_variants.xlsx": header_variants, "value_variants.xlsx": value_variants,
    "totals_notes.xlsx": totals_notes, "multi_sheet.xlsx": multi_sheet, "formula_text.xlsx": formula_text,
    "missing_columns.xlsx": missing_columns, "title_only.xlsx": title_only, "not_a_table.xlsx": not_a_table,
    "macro.xlsm": macro, "legacy.xls": legacy, "truncated.xlsx": truncated, "truncated.xls": truncated_xls,
    "garbage.xlsx": garbage, "encrypted.xls": encrypted_xls, "encrypted.xlsx": encrypted_xlsx,
}


# -- building blocks -------------------------------------------------------------------------------


def sheet_of(rows: Sequence[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def append_rows(data: bytes, rows: Sequence[Sequence[Any]]) -> bytes:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    for row in rows:
        wb.active.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


WORKBOOK_TYPE = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
MACRO_WORKBOOK_TYPE = b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def make_xlsm(data: bytes) -> bytes:
    """The package with the macro-enabled workbook content type and a placeholder vbaProject.bin."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "[Content_Types].xml":
                body = body.replace(WORKBOOK_TYPE, MACRO_WORKBOOK_TYPE).replace(
                    b"<Default ", b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
                    b"<Default ", 1)
            elif item.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(b"</Relationships>", b'<Relationship Id="rIdVba" Type="http://schemas.'
                                    b'microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/>'
                                    b"</Relationships>")
            dst.writestr(item, body)
        dst.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1placeholder: never run")
    return out.getvalue()


MACRO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">
Sub Encrypt(src As String, dst As String, filterName As String, pwd As String)
  Dim args(0) As New com.sun.star.beans.PropertyValue
  args(0).Name = &quot;Hidden&quot;
  args(0).Value = True
  doc = StarDesktop.loadComponentFromURL(ConvertToURL(src), &quot;_blank&quot;, 0, args())
  Dim out(1) As New com.sun.star.beans.PropertyValue
  out(0).Name = &quot;FilterName&quot;
  out(0).Value = filterName
  out(1).Name = &quot;Password&quot;
  out(1).Value = pwd
  doc.storeToURL(ConvertToURL(dst), out())
  doc.close(True)
End Sub
</script:module>
"""


def soffice(profile: Path, *args: str) -> None:
    binary = os.environ.get("SOFFICE") or shutil.which("soffice") or "soffice"
    subprocess.run([binary, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}", *args],
                   check=True, capture_output=True, timeout=120)


def libreoffice(data: bytes, ext: str) -> bytes:
    """``data`` (an .xlsx) opened and saved again by LibreOffice as ``ext``, formulas recalculated."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.xlsx", Path(tmp) / "out"
        src.write_bytes(data)
        soffice(Path(tmp) / "profile", "--convert-to", ext, "--outdir", str(out), str(src))
        return (out / f"in.{ext}").read_bytes()


def libreoffice_encrypted(data: bytes, ext: str, filter_name: str) -> bytes:
    """``data`` saved by LibreOffice as ``ext`` with the password 1234 (a Basic macro calls storeToURL)."""
    with tempfile.TemporaryDirectory() as tmp:
        profile, src, dst = Path(tmp) / "profile", Path(tmp) / "in.xlsx", Path(tmp) / f"out.{ext}"
        src.write_bytes(data)
        soffice(profile, "--convert-to", "csv", "--outdir", tmp, str(src))  # creates the profile
        (profile / "user" / "basic" / "Standard" / "Module1.xba").write_text(MACRO, encoding="utf-8")
        soffice(profile, f'macro:///Standard.Module1.Encrypt("{src}","{dst}","{filter_name}","1234")')
        return dst.read_bytes()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, case in CASES.items():
        data, expected = case(name)
        (OUT / name).write_bytes(data)
        (OUT / f"{name}.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n",
                                          encoding="utf-8")
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
