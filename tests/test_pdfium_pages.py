"""Form pages read through PDFium (parsers/pdfium_pages.py) give what pdfplumber gives.

The form reader takes a page's text lines and table rows from PDFium's objects, laid out by pdfplumber's own
table finder and line grouping. These tests read the same pages both ways and compare the items, over the
golden forms (reportlab with a CID font and an embedded TrueType font, LibreOffice exports) and every layout
of the sample forms; a page PDFium's reader leaves alone (a rotated page) is read by pdfplumber.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pdfplumber
import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from parsers import pdfium_pages
from parsers.documents import parse_document
from parsers.forms import _items, _page_items, parse_form
from parsers.types import ParseError
from samples.forms import _font, form_pdf, sample_form_fields

FORMS = Path(__file__).parent / "data" / "docs" / "forms"
READABLE = sorted(p for p in FORMS.glob("*.pdf") if p.stem not in ("corrupt", "encrypted", "truncated"))


def _both(data: bytes) -> list[tuple[list, list]]:
    """Each page's items read by pdfplumber and through PDFium."""
    pages = []
    doc = pdfium_pages.Document(data)
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for number, page in enumerate(pdf.pages):
                theirs = _items(page)[0]
                ours = _items(pdfium_pages.sheet(doc.page(number), 60_000))[0]
                pages.append(([_plain(i) for i in theirs], [_plain(i) for i in ours]))
    finally:
        doc.close()
    return pages


def _plain(item: object) -> object:
    return item if isinstance(item, str) else list(item)  # type: ignore[call-overload]


def _squash(item: object) -> object:
    """An item without whitespace: labels and values are folded this way before they are matched."""
    if isinstance(item, str):
        return "".join(item.split())
    return ["".join((cell or "").split()) for cell in item]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.name)
def test_golden_pages_read_the_same_as_pdfplumber(path: Path):
    """Every page of every readable golden PDF (text lines and table rows, in order) is the same item for
    item, whitespace included."""
    for theirs, ours in _both(path.read_bytes()):
        assert ours == theirs


LAYOUTS = list(itertools.product(["lines", "table", "spaced", "next_line"], ["cid", "ttf"], ["新建", "升级"]))


@pytest.mark.parametrize(("layout", "font", "kind"), LAYOUTS, ids=lambda v: str(v))
def test_every_sample_layout_reads_the_same_as_pdfplumber(layout: str, font: str, kind: str):
    """Every layout and font of the sample forms, three field pages and the bound-in 合作协议/信用承诺书: the
    same items. PDFium drops a space pdfplumber keeps between two spaced-out characters of a TrueType
    label in rare lines; labels are folded without spaces, so items are compared without whitespace."""
    data = form_pdf(sample_form_fields(11, project_type=kind), project_type=kind, layout=layout, pages=3,
                    font=font)
    for theirs, ours in _both(data):
        assert [_squash(i) for i in ours] == [_squash(i) for i in theirs]


def _rotated_form() -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setPageRotation(90)
    font = _font()
    y = 800
    for line in ("2024年徐州市知识产权计划项目申报书", "（高价值专利培育计划新建项目）", "项目名称：旋转页面项目",
                 "牵头申报单位（盖章）：徐州旋转科技有限公司", "统一社会信用代码：91320300000000001X"):
        c.setFont(font, 12)
        c.drawString(60, y, line)
        y -= 24
    c.showPage()
    c.save()
    return buf.getvalue()


def test_a_rotated_page_is_left_to_pdfplumber():
    """A page with /Rotate is not read through PDFium (its coordinates would need turning): the form reader
    gives exactly pdfplumber's items for it."""
    ours, theirs = _read_by_pdfplumber(_rotated_form(), "旋转.pdf")
    assert ours == theirs and any("旋转页面项目" in str(i) for i in ours[0])


def _read_by_pdfplumber(data: bytes, name: str) -> tuple[tuple, tuple]:
    """(the form reader's items for page 1, pdfplumber's own), after checking PDFium's reader refuses it."""
    doc = pdfium_pages.Document(data)
    try:
        with pytest.raises(pdfium_pages.Unsupported):
            pdfium_pages.sheet(doc.page(0), 60_000)
        ours = _page_items(doc.page(0), data, 0, name)
    finally:
        doc.close()
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return ours, _items(pdf.pages[0])


def test_a_page_with_too_many_characters_is_refused_by_count():
    """The characters-per-page limit holds on the PDFium path: the page is refused before it is laid out."""
    data = form_pdf(sample_form_fields(3))
    doc = pdfium_pages.Document(data)
    try:
        with pytest.raises(pdfium_pages.TooManyChars):
            pdfium_pages.sheet(doc.page(0), 50)
    finally:
        doc.close()


def test_heading_lines_of_an_attached_page():
    """``head_lines``: the first characters drawn on a bound-in page, as lines, start with its heading."""
    data = form_pdf(sample_form_fields(4), pages=3)
    doc = pdfium_pages.Document(data)
    try:
        heads = [pdfium_pages.head_lines(doc.page(n), 80) for n in range(len(doc))]
    finally:
        doc.close()
    assert heads[-2][0] == "合作协议" and heads[-1][0] == "信用承诺书"
    assert heads[0][0] == "2024年徐州市知识产权计划项目申报书"
    assert all(sum(map(len, lines)) <= 80 for lines in heads)


def test_the_form_reader_and_the_seal_check_share_one_opened_document(monkeypatch: pytest.MonkeyPatch):
    """``parse_document`` opens a PDF once for the form and the seal check, and loads each page once."""
    loads: list[int] = []
    original = pdfium_pages.Document.page

    def counted(self: pdfium_pages.Document, number: int):
        if number not in self._pages:
            loads.append(number)
        return original(self, number)

    opened: list[bytes] = []
    real_init = pdfium_pages.Document.__init__

    def counted_init(self: pdfium_pages.Document, data: bytes) -> None:
        opened.append(data)
        real_init(self, data)

    monkeypatch.setattr(pdfium_pages.Document, "page", counted)
    monkeypatch.setattr(pdfium_pages.Document, "__init__", counted_init)
    data = form_pdf(sample_form_fields(8), pages=10)
    doc = parse_document(data, "申报书.pdf", "pdf")
    assert doc is not None and doc.seal is False
    assert len(opened) == 1
    assert sorted(loads) == list(range(12))  # ten pages and the two bound-in documents, each loaded once


def test_a_file_pdfium_cannot_open_is_still_a_clear_error():
    """Garbage that starts like a PDF: the reason given is the usual plain-Chinese one."""
    with pytest.raises(ParseError) as e:
        parse_form(b"%PDF-1.7\n" + b"\x00garbage" * 100 + b"\n%%EOF\n", "坏.pdf", "pdf")
    assert "PDF 文件已损坏" in e.value.reason


def test_slanted_characters_are_left_to_pdfplumber():
    """Characters drawn slanted (a skewed text matrix, as an office suite draws Chinese italics) are not
    upright: the page goes to pdfplumber, whose items the form reader then gives."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setFont(_font(), 12)
    c.drawString(60, 800, "2024年徐州市知识产权计划项目申报书")
    c.transform(1, 0, 0.3, 1, 0, 0)
    c.drawString(60, 760, "项目名称：斜体项目")
    c.showPage()
    c.save()
    ours, theirs = _read_by_pdfplumber(buf.getvalue(), "斜体.pdf")
    assert ours == theirs and any("斜体项目" in str(i) for i in ours[0])
