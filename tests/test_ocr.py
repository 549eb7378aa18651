"""Scanned forms read by OCR (the ``ocr`` extra), and the same scans without it.

The golden scans in tests/data/docs/scans are made by tests/make_scan_data.py from the golden forms.
The OCR engine loads once per test session (``parsers.ocr.engine`` is cached per process); the
accuracy sweep over resolutions, noise and rotation is benchmarks/bench_ocr.py, not these tests.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from factories import attach_failed, attach_form, attach_table, make_form, make_message, make_row, make_table
from make_scan_data import scan_pdf

from intake.merge import build_ledger
from intake.models import Code, Severity, Status
from intake.parsepool import read_document as _read_document
from parsers import forms, ocr
from parsers.documents import parse_document
from parsers.types import ApplicationForm, ScannedFormError
from reports.ledger import form_reading

pytestmark = pytest.mark.skipif(not ocr.available(), reason="the ocr extra is not installed")

SCANS = Path(__file__).parent / "data" / "docs" / "scans"
FORMS = Path(__file__).parent / "data" / "docs" / "forms"
GOLDEN = sorted(SCANS.glob("*.pdf"))


@pytest.fixture(scope="module")
def read() -> dict[str, Any]:
    """Each golden scan parsed once for the module (OCR costs a second or two a page)."""
    return {p.name: parse_document(p.read_bytes(), p.name, "pdf") for p in GOLDEN}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden_scan_fields_are_read_by_ocr(path: Path, read: dict[str, Any]) -> None:
    """Every field of each golden scan (seal over the label, noise and 2° rotation, red notes, a
    ten-page form) reads exactly as the text layer of the form it was made from."""
    expected = json.loads(path.with_suffix(".json").read_text("utf-8"))
    form = read[path.name]
    assert isinstance(form, ApplicationForm) and form.source == "ocr"
    assert form.fields == expected["fields"]
    assert form.project_type == expected["project_type"]
    assert form.seal is expected["seal"]


def test_ocr_stops_at_the_pages_holding_the_fields(read: dict[str, Any]) -> None:
    """A ten-page scan whose fields end on page 3 is read for three pages, like its text layer."""
    assert read["upgrade_10_pages_seal.pdf"].pages_read == 3


def test_without_the_ocr_extra_a_scan_stays_scanned_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the OCR engine unavailable a scan raises SCANNED_FORM as before, fields unread."""
    monkeypatch.setattr(ocr, "available", lambda: False)
    data = (SCANS / "lines_red_text.pdf").read_bytes()
    with pytest.raises(ScannedFormError) as e:
        parse_document(data, "扫描件.pdf", "pdf")
    assert e.value.code == "SCANNED_FORM"
    stored = _read_document(data, "扫描件.pdf", "pdf")
    assert stored["kind"] == "error" and stored["error_code"] == "SCANNED_FORM"


def test_the_flag_turns_ocr_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """``parsers.forms.OCR_ENABLED = False`` makes a scan SCANNED_FORM even with the extra installed."""
    monkeypatch.setattr(forms, "OCR_ENABLED", False)
    with pytest.raises(ScannedFormError):
        forms.parse_form((SCANS / "lines_red_text.pdf").read_bytes(), "x.pdf", "pdf")


def test_a_scan_without_a_form_on_it_stays_scanned_form() -> None:
    """A scan OCR finds no form in (a grey picture) is SCANNED_FORM, not a form with empty fields."""
    with pytest.raises(ScannedFormError):
        parse_document((FORMS / "scanned.pdf").read_bytes(), "scanned.pdf", "pdf")


def test_the_stored_scan_keeps_its_seal_when_ocr_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan left as SCANNED_FORM still records whether a seal was seen (for the 盖章 column)."""
    monkeypatch.setattr(forms, "OCR_ENABLED", False)
    stored = _read_document((SCANS / "table_200dpi_seal.pdf").read_bytes(), "x.pdf", "pdf")
    assert stored["error_code"] == "SCANNED_FORM" and stored["parsed"] == {"seal": True}


def test_an_image_page_is_read() -> None:
    """A form photographed or scanned to PNG is read by ``ocr.image_page`` + ``read_page``."""
    from make_scan_data import scan_images

    images = scan_images((FORMS / "new_lines.pdf").read_bytes(), dpi=150)
    import io

    buf = io.BytesIO()
    images[0].save(buf, "PNG")
    texts = [b.text for b in ocr.read_page(ocr.image_page(buf.getvalue()))]
    assert "统一社会信用代码：91320300000104729L" in texts


# -- the ledger: OCR fields are for staff, never a reject or fix on their own --------------------

ROW = make_row(1)


def _ocr_form(filename: str, **fields: Any) -> ApplicationForm:
    return dataclasses.replace(make_form(ROW, **fields), filename=filename, source="ocr", seal=True)


def test_an_ocr_form_is_matched_by_its_content_not_its_file_name() -> None:
    """A scan named after another applicant joins the project its OCR-read credit code names."""
    other = make_row(2)
    scan = attach_form(_ocr_form(f"{other.values['牵头申报单位']}申报书.pdf"))
    projects = build_ledger([make_message(1, attach_table(make_table(ROW, other)), scan)], _cfg()).projects
    assert projects[0].form == scan and projects[1].form is None


def test_an_ocr_form_with_unreadable_identity_falls_back_to_the_file_name() -> None:
    """When OCR read no applicant or code that matches, the file name decides, as for a scan."""
    scan = attach_form(_ocr_form(f"{ROW.values['牵头申报单位']}.pdf", 统一社会信用代码="9132O3XXXX",
                                 牵头申报单位="徐州l号科技有限公词"))
    projects = build_ledger([make_message(1, attach_table(make_table(ROW)), scan)], _cfg()).projects
    assert projects[0].form == scan


def test_ocr_values_never_make_a_reject_or_fix_finding() -> None:
    """OCR values that differ from the row, break the threshold or miss fields give only
    SCANNED_FORM (待审核), with the differences noted in its text."""
    scan = attach_form(_ocr_form("扫描.pdf", 有效专利数=3, 有效发明专利数=0, 申请资助金额=500,
                                 严重失信行为="是", 联系电话=None))
    project = build_ledger([make_message(1, attach_table(make_table(ROW)), scan)], _cfg()).projects[0]
    assert [f.code for f in project.findings] == [Code.SCANNED_FORM]
    assert project.status is Status.REVIEW
    assert all(f.severity is Severity.REVIEW for f in project.findings)
    message = project.findings[0].message
    assert "OCR识别结果与汇总表不一致" in message and "有效专利数：汇总表" in message and "OCR识别为3件" in message
    assert project.values["有效专利数"] == ROW.values["有效专利数"]  # the row's value is kept


def test_ocr_values_fill_the_rows_blanks() -> None:
    """A field the summary row left blank shows the OCR-read value in the ledger."""
    row = make_row(1, 合作服务机构=None)
    form = dataclasses.replace(make_form(row, 合作服务机构="徐州汇智知识产权代理有限公司"),
                               source="ocr", filename="扫描.pdf")
    project = build_ledger([make_message(1, attach_table(make_table(row)), attach_form(form))],
                           _cfg()).projects[0]
    assert project.values["合作服务机构"] == "徐州汇智知识产权代理有限公司"
    failed = attach_failed(f"{row.values['牵头申报单位']}申报书.pdf")
    scanned = build_ledger([make_message(1, attach_table(make_table(row)), failed)],
                           _cfg()).projects[0]
    assert [f.code for f in project.findings] == [f.code for f in scanned.findings]  # the row's own, as today


def test_ledger_columns_say_how_the_form_was_read_and_whether_it_is_stamped() -> None:
    """识别方式 is 文字层 / OCR / 未能识别 and 盖章 检测到 / 未检测到 (blank: not checked)."""
    text = attach_form(make_form(ROW))
    ocr_read = attach_form(_ocr_form("扫描.pdf"))
    failed = dataclasses.replace(attach_failed("扫描.pdf"), parsed={"seal": False})
    assert form_reading(text) == ("文字层", "")
    assert form_reading(ocr_read) == ("OCR", "检测到")
    assert form_reading(failed) == ("未能识别", "未检测到")
    assert form_reading(None) == ("", "")


def test_a_fresh_scan_goes_through_parse_document_in_the_worker_shape() -> None:
    """The worker's reader stores an OCR-read scan as an application form with source and seal."""
    data = scan_pdf((FORMS / "new_spaced.pdf").read_bytes(), dpi=200, seal=True, seed=9)
    stored = _read_document(data, "扫描件.pdf", "pdf")
    assert stored["kind"] == "application_form"
    assert stored["parsed"]["source"] == "ocr" and stored["parsed"]["seal"] is True
    assert stored["parsed"]["fields"]["统一社会信用代码"] == "91320300000104729L"


def _cfg() -> Any:
    from factories import make_config

    return make_config()


@pytest.mark.parametrize(("document", "kind"), [("合作协议", "agreement"), ("信用承诺书", "pledge")])
def test_ocr_tells_what_a_scan_is_by_its_content(document: str, kind: str) -> None:
    """A scanned 合作协议 / 信用承诺书 named like a 申报书 is known by its OCR-read heading, not its name."""
    from samples.forms import attachment_pdf, sample_form_fields

    fields = sample_form_fields(1)
    data = scan_pdf(attachment_pdf(document, fields), dpi=200, noise=True, angle=2, seed=3)
    doc = parse_document(data, f"{fields['牵头申报单位']}申报书.pdf", "pdf")
    assert doc is not None and doc.kind == kind and doc.source == "ocr"
    assert doc.applicant == fields["牵头申报单位"]


def test_ocr_runs_in_a_parser_child_within_its_default_limits() -> None:
    """A scan sent through the parser pool (default address-space limit and deadline) comes back
    read by OCR in the child, with its seal."""
    from intake.parsepool import ParserPool

    with ParserPool(1) as pool:
        result = pool.read((SCANS / "table_200dpi_seal.pdf").read_bytes(), "扫描件.pdf", "pdf")
    assert result["kind"] == "application_form"
    assert result["parsed"]["source"] == "ocr" and result["parsed"]["seal"] is True
    assert result["parsed"]["fields"]["统一社会信用代码"] == "91320300000104729L"


# -- pictures: a form or attachment photographed or scanned to an image file ----------------------


def _jpeg(pdf: bytes, **scan: Any) -> bytes:
    import io

    from make_scan_data import scan_images

    buf = io.BytesIO()
    scan_images(pdf, dpi=200, **scan)[0].save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_a_photographed_form_is_read_by_its_content_whatever_its_name() -> None:
    """A JPEG of a form's first page, named like a camera names it, is an application form read by
    OCR, with the fields that page holds and its seal."""
    data = _jpeg((FORMS / "new_lines.pdf").read_bytes(), seal=True, seal_text="徐州恒达智能装备有限公司")
    doc = parse_document(data, "IMG_20241105_0912.jpg", "image")
    assert isinstance(doc, ApplicationForm) and doc.source == "ocr"
    assert doc.fields["统一社会信用代码"] == "91320300000104729L"
    assert doc.seal is True


def test_a_photographed_agreement_is_known_by_its_heading_not_its_name() -> None:
    """A 合作协议 photographed and named after the applicant is the agreement, not a form."""
    from samples.forms import attachment_pdf, sample_form_fields

    fields = sample_form_fields(2)
    data = _jpeg(attachment_pdf("合作协议", fields), noise=True, angle=1.5, seed=5)
    doc = parse_document(data, f"{fields['牵头申报单位']}.jpg", "image")
    assert doc is not None and doc.kind == "agreement" and doc.source == "ocr"


def test_a_picture_ocr_cannot_tell_falls_back_to_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture with nothing OCR knows on it is what its name says, else no document; with OCR off,
    a photographed form is not a form (as without the extra)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (600, 800), (200, 200, 200)).save(buf, "PNG")
    blank = buf.getvalue()
    assert parse_document(blank, "合作协议.png", "image").kind == "agreement"
    assert parse_document(blank, "photo.png", "image") is None
    monkeypatch.setattr(forms, "OCR_ENABLED", False)
    data = _jpeg((FORMS / "new_lines.pdf").read_bytes())
    assert parse_document(data, "IMG_1.jpg", "image") is None
