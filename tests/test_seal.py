"""Red seal detection (盖章): a round or oval red ring counts, red text and other red marks do not."""

from __future__ import annotations

from pathlib import Path

import pytest
from make_scan_data import scan_images, scan_pdf

from parsers import seal

pytestmark = pytest.mark.skipif(not seal.available(), reason="numpy or pypdfium2 not installed")

FORMS = Path(__file__).parent / "data" / "docs" / "forms"
LINES = (FORMS / "new_lines.pdf").read_bytes()
TABLE = (FORMS / "new_table.pdf").read_bytes()


def _page(pdf: bytes, **kw: object) -> object:
    import numpy as np

    img = scan_images(pdf, pages=1, dpi=75, **kw)[0]  # type: ignore[arg-type]
    return np.asarray(img)


@pytest.mark.parametrize("pdf", [LINES, TABLE], ids=["lines", "table"])
def test_a_round_seal_over_text_is_detected(pdf: bytes) -> None:
    """A 42 mm seal stamped over the 盖章 label (black print through it) is found."""
    assert seal.page_has_seal(_page(pdf, seal=True))


def test_an_oval_seal_is_detected() -> None:
    """An oval seal (wider than high) counts too."""
    assert seal.page_has_seal(_page(LINES, seal=True, oval=True))


def test_red_text_is_not_a_seal() -> None:
    """Red notes, an underlined red line, a square red frame stamp and a square block of red lines
    on one page: no seal."""
    assert not seal.page_has_seal(_page(LINES, red_text=True))
    assert not seal.page_has_seal(_page(TABLE, red_text=True))


def test_a_seal_is_found_among_red_text() -> None:
    """The seal is still found on a page that also carries red text."""
    assert seal.page_has_seal(_page(TABLE, seal=True, red_text=True))


def test_scanned_pdfs_with_and_without_a_seal() -> None:
    """On noisy, rotated scans ``detect`` says True with a seal and False without one."""
    assert seal.detect(scan_pdf(LINES, dpi=200, noise=True, angle=2, seal=True, pages=2), "pdf") is True
    assert seal.detect(scan_pdf(LINES, dpi=200, noise=True, angle=2, red_text=True, pages=2), "pdf") is False


def test_a_text_layer_pdf_without_a_seal() -> None:
    """A form exported from Word (black print only) has no seal."""
    assert seal.detect(LINES, "pdf") is False


def test_an_image_file_is_checked() -> None:
    """A seal on a PNG photo of the page is found (the image is scaled as an A4 page)."""
    import io

    buf = io.BytesIO()
    scan_images(TABLE, pages=1, dpi=150, seal=True)[0].save(buf, "PNG")
    assert seal.detect(buf.getvalue(), "image") is True


def test_unreadable_bytes_are_not_checked() -> None:
    """Bytes the renderer cannot open give None (not checked), never an exception."""
    assert seal.detect(b"%PDF-1.4 garbage", "pdf") is None


def test_without_numpy_nothing_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numpy or pypdfium2 the answer is None (the 盖章 column stays blank)."""
    monkeypatch.setattr(seal, "available", lambda: False)
    assert seal.detect(LINES, "pdf") is None


def _vector_pdf(draw: str) -> bytes:
    """A one-page text-layer PDF (reportlab) with black print and, by ``draw``, a red vector seal: drawn
    directly, inside a form XObject, in CMYK, or filled with a red shading (a colour pdfium does not report
    on the object)."""
    import io
    import math

    from reportlab.lib.colors import CMYKColor, black, red, white
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=1)
    c.setFillColor(black)
    c.drawString(72, 760, "Seal test page")

    def ring(colour: object) -> None:
        c.setStrokeColor(colour)
        c.setLineWidth(3)
        c.circle(300, 500, 60, stroke=1, fill=0)  # 42 mm across
        for k in range(5):  # the star
            a = math.pi / 2 + k * 4 * math.pi / 5
            c.line(300, 500, 300 + 20 * math.cos(a), 500 + 20 * math.sin(a))

    if draw == "direct":
        ring(red)
    elif draw == "form":
        c.beginForm("seal")
        ring(red)
        c.endForm()
        c.doForm("seal")
    elif draw == "cmyk":
        ring(CMYKColor(0, 1, 1, 0))
    elif draw == "shading":
        c.saveState()
        p = c.beginPath()
        for radius, turn in ((62, 1), (57, -1)):  # opposite windings: a ring with a hole
            angles = [turn * k * math.pi / 90 for k in range(180)]
            points = [(300 + radius * math.cos(a), 500 + radius * math.sin(a)) for a in angles]
            p.moveTo(*points[0])
            for point in points[1:]:
                p.lineTo(*point)
            p.close()
        c.clipPath(p, stroke=0, fill=0)
        c.radialGradient(300, 500, 62, (red, red), extend=True)
        c.restoreState()
    elif draw == "white":
        ring(white)
    c.showPage()
    c.save()
    return buf.getvalue()


@pytest.mark.parametrize("draw", ["direct", "form", "cmyk", "shading"])
def test_a_vector_seal_in_a_text_layer_pdf_is_detected(draw: str) -> None:
    """A seal drawn as red vector paths (in a form XObject, in CMYK, or as a red shading clipped to a ring)
    is found: pages are skipped unrendered only when nothing on them can paint a colour."""
    assert seal.detect(_vector_pdf(draw), "pdf") is True


def test_pages_that_can_show_no_colour_are_not_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Black (or white) print only: the page is never rendered, and the answer is the same False."""
    import pypdfium2

    rendered = []
    original = pypdfium2.PdfPage.render
    monkeypatch.setattr(pypdfium2.PdfPage, "render", lambda self, **kw: rendered.append(1) or original(self, **kw))
    assert seal.detect(LINES, "pdf") is False
    assert seal.detect(_vector_pdf("white"), "pdf") is False
    assert rendered == []
    assert seal.detect(_vector_pdf("direct"), "pdf") is True
    assert rendered == [1]
