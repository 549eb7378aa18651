"""Is there a red seal (公章) on this PDF or image? Information for staff only (spec 10.10, 盖章).

A page is rendered small (``DPI``), its red pixels taken (red well above green and blue), and the
red regions grouped (8-connected after growing them by 1 mm, so a seal's ring, star and arc of
text are one region even where black print under it breaks the ring). A region is a seal when its shape is one:

- plausible size: ``MIN_MM``–``MAX_MM`` across (a unit's seal is 38–45 mm, a contract seal 30);
- round or oval: width/height within ``MAX_ASPECT``;
- a ring: around the inscribed ellipse, red ink in at least ``MIN_RING`` of the angular sectors
  near the edge, nothing outside the ellipse (the corners of its box are empty), the middle not
  filled in, and little ink between the star and the arc of text (``MAX_GAP``).

Red text (a note, a red heading, an underline) fails: a line is wide and flat, a block of red text
fills the corners of its box and the space inside, a red square frame has ink in its corners, a red dot is filled.
Pages are looked at until a seal is found (``MAX_PAGES`` at most). A page whose objects can paint no
colour (black print only: no image, shading, pattern, Type3 font or annotation, every text and path
grey) is not rendered: its pixels would all be grey, never red. Needs numpy and pypdfium2 (in
the base install: pypdfium2 reads every PDF form); without them ``detect`` answers ``None``.
"""

from __future__ import annotations

import importlib.util
import io
import math
from typing import Any

DPI = 75
MAX_PAGES = 12
MIN_MM, MAX_MM, MAX_ASPECT = 20.0, 70.0, 1.7
MIN_RING, MAX_OUTSIDE, MAX_CORE, MAX_GAP = 0.85, 0.03, 0.5, 0.12
SECTORS = 36
MAX_RED_SHARE = 0.25  # a page this red is a coloured cover or photo, not paper with a stamp
MAX_PIXELS = 40_000_000


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("numpy", "pypdfium2", "PIL"))


def detect(data: bytes, sniffed: str, pdf: Any = None) -> bool | None:
    """Whether a red seal shows on the document; ``None`` when it cannot be checked. ``pdf``: the PDF
    already opened (``pdfium_pages.Document``, its pages shared with the form reader)."""
    if not available():
        return None
    try:
        pages = _pdf_pages(data, pdf) if sniffed == "pdf" else [_image(data)]
        return any(page_has_seal(rgb) for rgb in pages)
    except Exception:  # noqa: BLE001 - a file the form reader read but the renderer cannot: not checked
        return None


def page_has_seal(rgb: Any, dpi: float = DPI) -> bool:
    """Whether an RGB page image (numpy, ``dpi`` pixels per inch) shows a seal; ``None``: a page that
    cannot show colour (not rendered)."""
    if rgb is None:
        return False
    mask = red_mask(rgb)
    if not mask.any() or mask.mean() > MAX_RED_SHARE:
        return False
    return any(_is_seal(mask, box, dpi) for box in regions(_dilate(mask)))


def red_mask(rgb: Any) -> Any:
    """Red ink: red clearly above green and blue (faded or thin red blends with the paper to pink)."""
    import numpy as np

    a = rgb.astype(np.int16)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return (r > 110) & (r - np.maximum(g, b) > 30)


def _dilate(mask: Any, steps: int = 3) -> Any:
    """The mask grown by ``steps`` pixels: a ring broken where it crosses black print is one region."""
    out = mask
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def regions(mask: Any) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1, exclusive) of the mask's 8-connected regions."""
    import numpy as np

    ys, xs = np.nonzero(mask)
    todo = set(zip(ys.tolist(), xs.tolist(), strict=True))
    boxes = []
    while todo:
        stack = [todo.pop()]
        y0 = y1 = stack[0][0]
        x0 = x1 = stack[0][1]
        while stack:
            y, x = stack.pop()
            y0, y1, x0, x1 = min(y0, y), max(y1, y), min(x0, x), max(x1, x)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    n = (y + dy, x + dx)
                    if n in todo:
                        todo.remove(n)
                        stack.append(n)
        boxes.append((x0, y0, x1 + 1, y1 + 1))
    return boxes


def _is_seal(mask: Any, box: tuple[int, int, int, int], dpi: float) -> bool:
    import numpy as np

    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    mm = 25.4 / dpi
    if not (MIN_MM <= max(w, h) * mm <= MAX_MM and min(w, h) * mm >= MIN_MM / MAX_ASPECT):
        return False
    if max(w, h) > MAX_ASPECT * min(w, h):
        return False
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    if xs.size == 0:
        return False
    a, b = w / 2, h / 2
    dx, dy = (xs + 0.5 - a) / a, (ys + 0.5 - b) / b
    rho = np.hypot(dx, dy)
    edge = (rho > 0.78) & (rho < 1.12)
    sectors = np.unique(((np.arctan2(dy[edge], dx[edge]) + math.pi) / (2 * math.pi) * SECTORS).astype(int) % SECTORS)
    outside = float((rho > 1.15).mean())
    core = float((rho < 0.35).sum()) / max(math.pi * a * b * 0.35**2, 1.0)
    gap = float(((rho > 0.38) & (rho < 0.55)).sum()) / max(math.pi * a * b * (0.55**2 - 0.38**2), 1.0)
    return (sectors.size >= MIN_RING * SECTORS and outside <= MAX_OUTSIDE and core <= MAX_CORE
            and gap <= MAX_GAP)


def _pdf_pages(data: bytes, shared: Any = None) -> Any:
    """Each page's image; a page that can show no colour at all (``_only_gray``) is not rendered (``None``)."""
    from parsers.pdfium_pages import borrowed

    plain = not any(key in data for key in _COLOURED_KEYS)
    with borrowed(data, shared) as pdf:
        for i in range(min(len(pdf), MAX_PAGES)):
            page = pdf.page(i)
            if plain and _only_gray(page):
                yield None
            else:
                yield page.render(scale=DPI / 72, rev_byteorder=True).to_numpy()[..., :3]


# Where pdfium cannot tell a colour from the page objects: a pattern or shading paints colours its
# objects do not report (pdfium says grey or white for them), a Type3 glyph may carry its own colours,
# and an object stream may hide any of these dictionaries from a look at the bytes.
_COLOURED_KEYS = (b"/Pattern", b"/Shading", b"/Type3", b"/ObjStm")
_FORM_DEPTH = 8


def _only_gray(page: Any) -> bool:
    """Whether nothing on the page can paint a colour: no annotations, no images or shadings, and every
    text and path object (also inside form XObjects) filled and stroked in grey (R = G = B). Such a page
    renders to grey pixels only, which are never red, so it cannot show a seal. Any doubt: False."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDFPage_GetAnnotCount(page.raw) != 0:
        return False
    count = pdfium_c.FPDFPage_CountObjects(page.raw)
    objects = [pdfium_c.FPDFPage_GetObject(page.raw, i) for i in range(count)]
    return _gray_objects(objects, 0)


def _gray_objects(objects: list[Any], depth: int) -> bool:
    import ctypes

    import pypdfium2.raw as pdfium_c

    for obj in objects:
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            if depth >= _FORM_DEPTH:
                return False
            inner = [pdfium_c.FPDFFormObj_GetObject(obj, i) for i in range(pdfium_c.FPDFFormObj_CountObjects(obj))]
            if not _gray_objects(inner, depth + 1):
                return False
            continue
        if kind not in (pdfium_c.FPDF_PAGEOBJ_TEXT, pdfium_c.FPDF_PAGEOBJ_PATH):
            return False
        for get in (pdfium_c.FPDFPageObj_GetFillColor, pdfium_c.FPDFPageObj_GetStrokeColor):
            r, g, b, a = (ctypes.c_uint() for _ in range(4))
            if not get(obj, r, g, b, a) or not r.value == g.value == b.value:
                return False
    return True


def _image(data: bytes) -> Any:
    """An image file scaled to about ``DPI`` for an A4 page (its DPI tag is often missing or wrong)."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > MAX_PIXELS:
            raise ValueError("image too large")
        scale = DPI * 11.69 / max(img.width, img.height)  # the long side of A4 is 11.69 in
        small = img.convert("RGB").resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        return np.asarray(small)
