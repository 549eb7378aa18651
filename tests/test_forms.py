"""Application forms (spec section 4): golden files, label layouts, sections, errors.

Golden files live in tests/data/docs/forms/ (made by tests/make_form_data.py), each with its
expected ``ApplicationForm.to_dict()`` or ``{"error": CODE}`` beside it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from parsers.documents import parse_document
from parsers.forms import AGENCY_CODE, parse_form
from parsers.normalize import parse_checked_yes_no
from parsers.types import ApplicationForm, ParseError, ScannedFormError
from samples.forms import form_docx, form_pdf, sample_form_fields

FORMS = Path(__file__).parent / "data" / "docs" / "forms"
GOLDEN = sorted(p for p in FORMS.iterdir() if p.suffix in (".pdf", ".docx"))


def _parse(path: Path) -> dict | None:
    try:
        form = parse_form(path.read_bytes(), path.name, path.suffix[1:])
    except ParseError as e:
        assert e.reason and not e.reason.isascii(), "the reason is plain Chinese"
        return {"error": e.code}
    return form.to_dict() if form else None


def test_golden_set_covers_every_case():
    """The golden set holds every layout, both project types and every error case."""
    names = {p.stem for p in GOLDEN}
    assert {"new_lines", "new_table", "new_spaced", "new_next_line", "upgrade_table_10_pages", "docx_table",
            "docx_lines", "scanned", "encrypted", "truncated", "corrupt", "not_a_form"} <= names


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden_form(path: Path):
    """Every golden file parses to the JSON beside it (fields, project type, pages read, or error code)."""
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert _parse(path) == expected


def test_ten_page_form_stops_after_the_field_pages():
    """A 10-page form whose fields are on pages 1–3 is read no further than page 3."""
    form = parse_form(form_pdf(sample_form_fields(5), pages=10), "f.pdf", "pdf")
    assert form is not None and form.pages_read == 3 and len(form.fields) == 21


def test_agency_code_kept_apart_from_applicant_code():
    """The agency's 统一社会信用代码 in section 二 is 机构统一社会信用代码, not the applicant's."""
    fields = sample_form_fields(6)
    for data, sniffed in ((form_pdf(fields, layout="table"), "pdf"), (form_docx(fields), "docx")):
        form = parse_form(data, "f", sniffed)
        assert form is not None
        assert form.fields["统一社会信用代码"] == fields["统一社会信用代码"]
        assert form.fields[AGENCY_CODE] == fields[AGENCY_CODE] != fields["统一社会信用代码"]


def _lines_docx(*paragraphs: str) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def test_label_variants_in_one_document():
    """Several pairs on a line, numbered and noted labels, spaced labels, a value on the next line."""
    data = _lines_docx(
        "2024年徐州市知识产权计划项目申报书", "（高价值专利培育计划升级项目）",
        "1. 项 目 名 称 ： 石墨烯复合材料专利组合培育",
        "单位名称（盖章）:徐州云翔新材料科技有限公司",
        "联系人：王芳　　联系电话：0516-81234567",
        "申请资助金额（万元）", "４０",
        "是否已通过市级高价值专利培育计划项目验收：☑是 □否",
        "合作服务机构基本情况",
        "单位名称：江苏创新专利代理事务所（普通合伙）",
        "统一社会信用代码：91320300MA1XYZ1234",
        "联系人：机构的联系人不是申报单位的",
    )
    form = parse_form(data, "f.docx", "docx")
    assert form is not None and form.project_type == "升级"
    assert form.fields == {
        "项目名称": "石墨烯复合材料专利组合培育", "牵头申报单位": "徐州云翔新材料科技有限公司",
        "联系人": "王芳", "联系电话": "0516-81234567", "申请资助金额": 40, "已通过市级验收": "是",
        "合作服务机构": "江苏创新专利代理事务所（普通合伙）", AGENCY_CODE: "91320300MA1XYZ1234",
    }


def test_project_type_from_label_when_title_does_not_say():
    """Without the （…新建项目） subtitle, a 项目类别 line gives the project type."""
    data = _lines_docx("知识产权项目申报书", "项目类别：升级项目", "项目名称：甲", "联系人：乙")
    form = parse_form(data, "f.docx", "docx")
    assert form is not None and form.project_type == "升级"


def test_document_without_labels_is_not_a_form():
    """A readable Word file with no title and no labels is not a form (None)."""
    assert parse_form(_lines_docx("会议纪要", "联系人员安排另行通知。"), "m.docx", "docx") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("☑是 □否", "是"), ("□是 ☑否", "否"), ("是☑ 否□", "是"), ("√是 □否", "是"), ("□是 □否", None),
    ("是", "是"), ("无", "否"), ("已完成", "是"), ("", None),
])
def test_checked_yes_no(text: str, expected: str | None):
    """是/否 answers, plain or as ticked boxes."""
    assert parse_checked_yes_no(text) == expected


@pytest.mark.parametrize(("data", "sniffed"), [
    (b"", "pdf"), (b"", "docx"), (b"%PDF-1.4\n%%EOF", "pdf"), (b"PK\x03\x04garbage", "docx"),
    (form_pdf({"项目名称": "x"}), "docx"), (b"%PDF-1.4\n" + b"\x00" * 100, "pdf"),
])
def test_unreadable_inputs_raise_parse_error(data: bytes, sniffed: str):
    """Empty, cut-off and mislabelled files raise ParseError (UNREADABLE_FILE), nothing else."""
    with pytest.raises(ParseError) as info:
        parse_form(data, "bad", sniffed)
    assert info.value.code == "UNREADABLE_FILE" and info.value.filename == "bad"


def test_zip_bomb_docx_refused_before_inflating():
    """A .docx whose parts inflate far beyond their size is refused without being inflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", b"<" + b" " * (64 * 1024 * 1024))
    with pytest.raises(ParseError, match="解压后过大"):
        parse_form(buf.getvalue(), "bomb.docx", "docx")


def test_scan_is_scanned_form_error():
    """A PDF of images only is a ScannedFormError telling the office to send the exported PDF."""
    with pytest.raises(ScannedFormError) as info:
        parse_form((FORMS / "scanned.pdf").read_bytes(), "scan.pdf", "pdf")
    assert info.value.code == "SCANNED_FORM" and "Word" in info.value.reason


def test_dispatcher_hands_pdf_and_docx_to_the_form_parser():
    """parse_document routes sniffed pdf/docx bytes to parse_form."""
    for name, sniffed in (("new_lines.pdf", "pdf"), ("docx_table.docx", "docx")):
        assert isinstance(parse_document((FORMS / name).read_bytes(), name, sniffed), ApplicationForm)


# -- documents that are not forms (spec 10.2) ------------------------------------------------------

from parsers.types import DocKind, OtherDocument  # noqa: E402
from samples.forms import attachment_pdf, scanned_pdf  # noqa: E402


@pytest.mark.parametrize(("attached", "sniffed"), [
    (("合作协议", "信用承诺书"), "pdf"), (("信用承诺书",), "pdf"), ((), "pdf"),
    (("合作协议", "信用承诺书"), "docx"), (("合作协议",), "docx"),
])
def test_attached_pages_inside_a_form(attached: tuple[str, ...], sniffed: str):
    """Pages headed 合作协议 / 信用承诺书 after the form's fields are listed in ``attachments``, in order."""
    fields = sample_form_fields(0)
    data = form_pdf(fields, pages=6, attached=attached) if sniffed == "pdf" else form_docx(fields, attached=attached)
    form = parse_form(data, "f", sniffed)
    assert isinstance(form, ApplicationForm) and form.attachments == list(attached)
    assert form.fields["牵头申报单位"] == fields["牵头申报单位"]


@pytest.mark.parametrize(("line", "expected"), [
    ("合作协议", "合作协议"), ("附件2：信用承诺书", "信用承诺书"), ("项目合作协议书", "合作协议"),
    ("2024年高价值专利培育计划项目合作协议", "合作协议"), ("申报单位信用承诺书", "信用承诺书"),
    ("签订合作协议", None), ("合作协议及信用承诺书", None), ("申报主体应签订信用承诺书", None),
    ("2024年徐州市知识产权计划项目申报书", None),
])
def test_attachment_headings(line: str, expected: str | None):
    """A line heads an attached document only when it is that document's name (a sentence about one is not)."""
    from parsers.programs import heading_attachment

    assert heading_attachment(line) == expected


@pytest.mark.parametrize(("document", "kind"), [("合作协议", DocKind.AGREEMENT), ("信用承诺书", DocKind.PLEDGE)])
def test_attachment_as_a_file_of_its_own(document: str, kind: DocKind):
    """A text 合作协议 / 信用承诺书 file is that document, with the applicant (and code) it names."""
    fields = sample_form_fields(3)
    doc = parse_document(attachment_pdf(document, fields), "附件.pdf", "pdf")
    assert isinstance(doc, OtherDocument) and doc.kind == kind and doc.recognized_as == document
    assert doc.applicant == fields["牵头申报单位"] and not doc.scanned
    if document == "信用承诺书":
        assert doc.credit_code == fields["统一社会信用代码"]


@pytest.mark.parametrize(("name", "kind"), [
    ("徐州恒达智能装备有限公司合作协议.pdf", DocKind.AGREEMENT),
    ("徐州恒达智能装备有限公司信用承诺书（盖章）.pdf", DocKind.PLEDGE),
    ("徐州恒达承诺书.pdf", DocKind.PLEDGE),
    ("云龙区汇总表（盖章）.pdf", DocKind.STAMPED_TABLE),
])
def test_scan_known_by_its_file_name(name: str, kind: DocKind):
    """A scan is what its file name says: 合作协议, 信用承诺书, or the stamped 汇总表."""
    doc = parse_document(scanned_pdf(), name, "pdf")
    assert isinstance(doc, OtherDocument) and doc.kind == kind


@pytest.mark.parametrize("name", ["徐州恒达智能装备有限公司申报书.pdf", "徐州恒达智能装备有限公司.pdf"])
def test_other_scans_stay_scanned_forms_for_the_merge(name: str):
    """A scan not named 合作协议/承诺书/汇总表 raises ScannedFormError; the merge decides by 申报书 in its name."""
    with pytest.raises(ScannedFormError):
        parse_document(scanned_pdf(), name, "pdf")


def test_stamped_summary_table():
    """A PDF or image named 汇总表, or a text PDF titled 汇总表, is the stamped summary table, never a form."""
    png = scanned_pdf()  # bytes do not matter for an image known by name
    image = parse_document(png, "云龙区申报汇总表盖章.jpg", "image")
    assert isinstance(image, OtherDocument) and image.kind == DocKind.STAMPED_TABLE and image.scanned
    titled = form_pdf(sample_form_fields(0), titles=("2024年徐州市高价值专利培育计划项目申报汇总表",), attached=())
    doc = parse_document(titled, "扫描.pdf", "pdf")
    assert isinstance(doc, OtherDocument) and doc.kind == DocKind.STAMPED_TABLE and doc.program == "高价值专利培育计划"


def test_another_programs_stamped_table():
    """A stamped 汇总表 named for another program is that program's file."""
    doc = parse_document(scanned_pdf(), "高价值商标品牌培育计划汇总表（盖章）.pdf", "pdf")
    assert isinstance(doc, OtherDocument) and doc.kind == DocKind.OTHER_PROGRAM
    assert (doc.program, doc.recognized_as) == ("高价值商标品牌培育计划", "盖章汇总表")
