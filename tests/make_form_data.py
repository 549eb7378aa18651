"""Write the golden application forms: tests/data/docs/forms/<name>.pdf|.docx with <name>.json beside each.

Run from the repository root: ``.venv/bin/python tests/make_form_data.py``. Every file comes
from ``samples.forms`` (reportlab with the CID font STSong-Light, python-docx) with the
fields of ``samples.projects.sample_project`` (same applicant and credit code as its summary row):

- ``new_lines`` / ``new_table`` / ``new_spaced`` / ``new_next_line``: a 新建 form, one page, in
  each layout (``label：value`` lines; ruled two-column cells; labels spaced out character by
  character; value on the line below its label).
- ``upgrade_lines_halfwidth_colon``: a 升级 form (with the 升级-only declarations) using ``:``.
- ``upgrade_table_10_pages``: a 升级 form, cover page + sections on pages 2–3 + narrative to page 10.
- ``new_10_pages``: a 新建 form of ten pages in the ``lines`` layout (the benchmark's shape).
- ``new_variants_table``: value variants: full-width digits, units (``85件``, ``50万元``),
  ticked boxes (``√是 □否``, ``□是 ■否``; STSong-Light has no ☑), a lower-case credit code
  with spaces, a long agency name that wraps in its cell.
- ``new_variants_spaced_ttf``: the ``spaced`` layout with ``(``/``:``, 有/无 answers, ``50.0``.
- ``new_missing_fields``: a form lacking 联系电话 and the agency's figures (read to the end, the
  合作协议 and 信用承诺书 pages too: 8 pages).

Every form has a 合作协议 page and a 信用承诺书 page after its last page (``form_pdf``'s default);
the JSON lists them in ``attachments``.
- ``office_table`` / ``office_lines``: ``docx_table.docx`` and ``docx_lines.docx`` exported to PDF by
  LibreOffice Writer 7.4 (``soffice --headless --convert-to pdf``): embedded TrueType subsets and tables
  ruled the way an office suite draws them. Not rewritten by this script (it needs Writer); their JSON
  was checked against pdfplumber's own reading of the same pages.
- ``docx_table`` / ``docx_lines`` / ``docx_upgrade_table``: Word files (table cells, with a merged
  first column naming the agency's section; ``label：value`` paragraphs).
- ``scanned``: a PDF of images only → ``SCANNED_FORM``.
- ``encrypted``: ``new_lines`` encrypted by pypdf with a user password → ``UNREADABLE_FILE``.
- ``truncated``: ``new_lines`` cut at 60 % → ``UNREADABLE_FILE``; ``corrupt``: bytes that start
  like a PDF and are garbage → ``UNREADABLE_FILE``; ``corrupt_docx``: a zip without a document.
- ``not_a_form``: a PDF notice with text but no 申报书 title and no field labels → ``null``.

The JSON is the expected ``ApplicationForm.to_dict()`` (with ``pages_read``), or for error cases
``{"error": CODE}``. Values are written by hand from the spec, not from the parser's output.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samples.forms import form_docx, form_pdf, sample_form_fields, scanned_pdf  # noqa: E402

OUT = ROOT / "tests" / "data" / "docs" / "forms"
UPGRADE_ONLY = ("已通过市级验收", "承担省级项目")


def _expected(name: str, fields: dict[str, Any], project_type: str, pages_read: int, suffix: str) -> dict:
    """A form of the 2024 高价值专利培育计划 (its title says so) with the 合作协议 and 信用承诺书 pages bound in."""
    return {"filename": f"{name}.{suffix}", "project_type": project_type, "fields": fields,
            "pages_read": pages_read, "kind": "application_form", "program": "高价值专利培育计划", "year": 2024,
            "attachments": ["合作协议", "信用承诺书"], "source": "text",
            "seal": None}


def _variants() -> tuple[dict, dict]:
    """Fields as written on the form, and what the parser must make of them."""
    base = sample_form_fields(2)
    code = base["统一社会信用代码"]
    written = {**base, "有效专利数": "８７件", "有效发明专利数": " 14 ", "申请资助金额": "50万元",
               "专利密集型产品备案": "√是 □否", "严重失信行为": "□是 ■否", "部省市属事业单位": "否",
               "统一社会信用代码": code[:8].lower() + " " + code[8:],
               "合作服务机构": "徐州正诚知识产权服务有限公司（淮海经济区知识产权运营中心分支机构）",
               "机构服务收入": "340.0"}
    expected = {**base, "有效专利数": 87, "有效发明专利数": 14, "申请资助金额": 50,
                "合作服务机构": written["合作服务机构"], "机构服务收入": 340}
    return written, expected


def cases() -> dict[str, tuple[bytes, dict | None]]:
    """name -> (file bytes, expected JSON)."""
    out: dict[str, tuple[bytes, dict | None]] = {}
    new, upgrade = sample_form_fields(0), sample_form_fields(1, project_type="升级", district="鼓楼区")
    for layout in ("lines", "table", "spaced", "next_line"):
        pages_read = 2 if layout == "next_line" else 1  # the next-line form runs onto a second page
        expected = _expected(f"new_{layout}", new, "新建", pages_read, "pdf")
        out[f"new_{layout}"] = (form_pdf(new, layout=layout), expected)
    out["upgrade_lines_halfwidth_colon"] = (
        form_pdf(upgrade, project_type="升级", colon=":"),
        _expected("upgrade_lines_halfwidth_colon", upgrade, "升级", 1, "pdf"))
    out["upgrade_table_10_pages"] = (
        form_pdf(upgrade, project_type="升级", layout="table", pages=10),
        _expected("upgrade_table_10_pages", upgrade, "升级", 3, "pdf"))
    out["new_10_pages"] = (form_pdf(new, pages=10), _expected("new_10_pages", new, "新建", 3, "pdf"))
    written, expected = _variants()
    out["new_variants_table"] = (form_pdf(written, layout="table"),
                                 _expected("new_variants_table", expected, "新建", 1, "pdf"))
    spaced = sample_form_fields(3, 部省市属事业单位="无", 非正常专利申请="无", 专利密集型产品备案="已完成",
                                申请资助金额="50.0")
    out["new_variants_spaced_ttf"] = (
        form_pdf(spaced, layout="spaced", colon=":", font="ttf"),
        _expected("new_variants_spaced_ttf", {**spaced, "部省市属事业单位": "否", "非正常专利申请": "否",
                                              "专利密集型产品备案": "是", "申请资助金额": 50},
                  "新建", 1, "pdf"))
    lacking = {k: v for k, v in sample_form_fields(4).items()
               if k not in ("联系电话", "机构从业人员数", "机构专利代理人数", "机构服务收入")}
    out["new_missing_fields"] = (form_pdf(lacking, pages=6),
                                 _expected("new_missing_fields", lacking, "新建", 8, "pdf"))
    out["docx_table"] = (form_docx(new), _expected("docx_table", new, "新建", 1, "docx"))
    out["docx_lines"] = (form_docx(new, layout="lines"), _expected("docx_lines", new, "新建", 1, "docx"))
    out["docx_upgrade_table"] = (form_docx(upgrade, project_type="升级"),
                                 _expected("docx_upgrade_table", upgrade, "升级", 1, "docx"))
    out |= _bad_files(out["new_lines"][0])
    return out


def _bad_files(good_pdf: bytes) -> dict[str, tuple[bytes, dict | None]]:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(good_pdf)).pages:
        writer.add_page(page)
    writer.encrypt(user_password="xz2024", owner_password="owner", algorithm="AES-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    unreadable = {"error": "UNREADABLE_FILE"}
    return {
        "scanned": (scanned_pdf(pages=2), {"error": "SCANNED_FORM"}),
        "encrypted": (encrypted.getvalue(), unreadable),
        "truncated": (good_pdf[: len(good_pdf) * 6 // 10], unreadable),
        "corrupt": (b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", unreadable),
        "corrupt_docx": (_zip({"[Content_Types].xml": b"<Types/>", "word/other.xml": b"<x/>"}), unreadable),
        "not_a_form": (_notice_pdf(), None),
    }


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _notice_pdf() -> bytes:
    """A one-page notice: Chinese text, no 申报书 title, no field labels."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setFont("STSong-Light", 12)
    lines = ("关于组织申报2024年市级知识产权项目的通知", "各县（市）区知识产权局：",
             "现将有关事项通知如下，请于11月8日前报送。", "徐州市知识产权局  2024年10月")
    for k, line in enumerate(lines):
        c.drawString(72, 760 - 24 * k, line)
    c.showPage()
    c.save()
    return buf.getvalue()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    made = cases()
    for name, (data, expected) in made.items():
        suffix = "docx" if name.startswith(("docx", "corrupt_docx")) else "pdf"
        (OUT / f"{name}.{suffix}").write_bytes(data)
        text = json.dumps(expected, ensure_ascii=False, indent=2) + "\n"
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(made)} forms to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
