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
