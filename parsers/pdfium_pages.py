"""PDF pages read through PDFium (pypdfium2): the objects pdfplumber's table finder and line grouping need,
without pdfminer's interpreter.

pdfplumber reads a page by running pdfminer's content-stream interpreter in Python and turning every
character and path into a dictionary (about 15 ms for a page of a form); PDFium does the same work in C
(about 2 ms). ``sheet`` gives the same dictionaries pdfplumber would (``char``, ``rect``, ``line``,
``curve``, ``image``), in pdfplumber's coordinates (``top`` from the top of the MediaBox), and ``Sheet``
lets pdfplumber's own ``find_tables`` and ``extract_text_lines`` run on them, so a form's tables and lines
are found by the same rules as before. What differs is measured, not assumed: a character's box is
PDFium's "loose" box (advance width, font ascent to descent) where pdfminer takes the font's widths table
and bounding box, a few tenths of a point apart; tests compare both readers item by item on every kind of
form this program reads.

Paths are classified as pdfminer does (``converter.paint_path``): each subpath on its own; ``m l`` is a
line, a closed axis-aligned ``m l l l`` a rectangle, anything else a curve through its points.

A page that is rotated, or whose text is not upright, is not read here (``Unsupported``): the caller reads
it with pdfplumber.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as c
from pdfplumber import utils
from pdfplumber.container import Container
from pdfplumber.table import TableFinder, TableSettings

MAX_DEPTH = 8  # form XObjects nested deeper than this are not read (a crafted file's recursion)


class Unsupported(Exception):
    """A page this reader does not read the way pdfplumber would (rotated, or text not upright)."""


class Sheet(Container):
    """One page's objects as pdfplumber's ``Container``: its table finder and text-line grouping run on it."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]], width: float, height: float) -> None:
        self._objects = objects
        self.bbox = (0.0, 0.0, width, height)
        self.width, self.height = width, height

    @property
    def objects(self) -> dict[str, list[dict[str, Any]]]:
        return self._objects

    def find_tables(self) -> list[Any]:
        return TableFinder(self, TableSettings.resolve(None)).tables  # type: ignore[arg-type]

    def extract_text_lines(self, return_chars: bool = False) -> list[dict[str, Any]]:
        textmap = utils.chars_to_textmap(self.chars, layout_bbox=self.bbox, layout_width=self.width,
                                         layout_height=self.height)
        return textmap.extract_text_lines(strip=True, return_chars=return_chars)


class Document:
    """A PDF opened once by PDFium, each page loaded once for every reader of the file (the form reader and
    the seal check share it: loading a page is most of PDFium's cost). Raises what PDFium raises on a file
    it cannot open. ``close`` releases the pages and the document."""

    def __init__(self, data: bytes) -> None:
        self.pdf = pdfium.PdfDocument(data)
        self._pages: dict[int, pdfium.PdfPage] = {}

    def __len__(self) -> int:
        return len(self.pdf)

    def page(self, number: int) -> pdfium.PdfPage:
        if number not in self._pages:
            self._pages[number] = self.pdf[number]
        return self._pages[number]

    def close(self) -> None:
        for page in self._pages.values():
            page.close()
        self._pages.clear()
        self.pdf.close()


@contextlib.contextmanager
def borrowed(data: bytes, shared: Document | None) -> Iterator[Document]:
    """``shared`` when a caller opened the file already (it closes it), else ``data`` opened here and closed
    on leaving; raises what PDFium raises on a file it cannot open."""
    if shared is not None:
        yield shared
        return
    document = Document(data)
    try:
        yield document
    finally:
        document.close()


def open_document(data: bytes) -> Document | None:
    """The document, or ``None`` when PDFium cannot open it (each reader then says why in its own words)."""
    try:
        return Document(data)
    except Exception:  # noqa: BLE001 - PdfiumError and whatever a damaged file makes the binding raise
        return None


def sheet(page: pdfium.PdfPage, max_chars: int) -> Sheet:
    """The page's objects as a ``Sheet``; ``Unsupported`` for a page pdfplumber must read; ``TooManyChars``
    past ``max_chars`` characters."""
    if page.get_rotation() % 360:
        raise Unsupported("rotated page")
    left, bottom, right, top = page.get_mediabox()
    height = top - bottom
    objects: dict[str, list[dict[str, Any]]] = {"char": _chars(page, top, max_chars), "rect": [], "line": [],
                                                "curve": [], "image": []}
    _paths(page, top, objects)
    return Sheet(objects, right - left, height)


class TooManyChars(Exception):
    """A page with more characters than the caller reads."""


def head_lines(page: pdfium.PdfPage, max_chars: int) -> list[str]:
    """The text lines of the first ``max_chars`` characters drawn on the page (in the content's order), a new
    line where the baseline moves by half a character; each line left to right, blank lines left out."""
    textpage = page.get_textpage()
    try:
        lines: list[list[tuple[float, str]]] = []
        last_y = 0.0
        x, y = ctypes.c_double(), ctypes.c_double()
        taken = 0
        for i in range(c.FPDFText_CountChars(textpage.raw)):
            if taken >= max_chars:
                break
            if c.FPDFText_IsGenerated(textpage.raw, i) == 1:
                continue
            code = c.FPDFText_GetUnicode(textpage.raw, i)
            if not code or not c.FPDFText_GetCharOrigin(textpage.raw, i, x, y):
                continue
            taken += 1
            size = max(c.FPDFText_GetFontSize(textpage.raw, i), 1.0)
            if lines and abs(last_y - y.value) < size / 2:
                lines[-1].append((x.value, chr(code)))
            else:
                lines.append([(x.value, chr(code))])
                last_y = y.value
        texts = ("".join(ch for _, ch in sorted(line, key=lambda p: p[0])).strip() for line in lines)
        return [t for t in texts if t]
    finally:
        textpage.close()


def _chars(page: pdfium.PdfPage, top_y: float, max_chars: int) -> list[dict[str, Any]]:
    textpage = page.get_textpage()
    try:
        count = c.FPDFText_CountChars(textpage.raw)
        if count > max_chars:
            raise TooManyChars(count)
        chars: list[dict[str, Any]] = []
        box = c.FS_RECTF()
        matrix = c.FS_MATRIX()
        pending_high = 0
        for i in range(count):
            code = c.FPDFText_GetUnicode(textpage.raw, i)
            if c.FPDFText_IsGenerated(textpage.raw, i) == 1 and code != 0x20:
                continue
            if 0xD800 <= code < 0xDC00:  # a surrogate pair: the next character completes it
                pending_high = code
                continue
            if 0xDC00 <= code < 0xE000 and pending_high and chars:
                text = chr(0x10000 + ((pending_high - 0xD800) << 10) + (code - 0xDC00))
                chars[-1]["text"] = text
                pending_high = 0
                continue
            if not c.FPDFText_GetLooseCharBox(textpage.raw, i, box):
                continue
            if c.FPDFText_GetMatrix(textpage.raw, i, matrix) and (matrix.b or matrix.c or matrix.a <= 0):
                raise Unsupported("text not upright")
            size = c.FPDFText_GetFontSize(textpage.raw, i)
            chars.append({
                "object_type": "char", "text": chr(code) if code else "",
                "x0": box.left, "x1": box.right, "top": top_y - box.top, "bottom": top_y - box.bottom,
                "doctop": top_y - box.top, "y0": box.bottom, "y1": box.top,
                "width": box.right - box.left, "height": box.top - box.bottom,
                "size": size, "upright": True,
            })
        return chars
    finally:
        textpage.close()


def _paths(page: pdfium.PdfPage, top_y: float, objects: dict[str, list[dict[str, Any]]]) -> None:
    for obj, matrix in _objects(page):
        kind = c.FPDFPageObj_GetType(obj)
        if kind == c.FPDF_PAGEOBJ_IMAGE:
            objects["image"].append({"object_type": "image"})
        elif kind == c.FPDF_PAGEOBJ_PATH:
            for shape, pts in _subpaths(obj, matrix):
                _classify(shape, pts, top_y, objects)


def _objects(page: pdfium.PdfPage) -> Iterator[tuple[Any, tuple[float, ...]]]:
    """Every page object with the matrix from its own space to the page's (form XObjects opened)."""
    stack = [(c.FPDFPage_GetObject(page.raw, i), (1.0, 0.0, 0.0, 1.0, 0.0, 0.0), 0)
             for i in reversed(range(c.FPDFPage_CountObjects(page.raw)))]
    m = c.FS_MATRIX()
    while stack:
        obj, outer, depth = stack.pop()
        own = (m.a, m.b, m.c, m.d, m.e, m.f) if c.FPDFPageObj_GetMatrix(obj, m) else (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        matrix = _mul(own, outer)
        if c.FPDFPageObj_GetType(obj) == c.FPDF_PAGEOBJ_FORM:
            if depth < MAX_DEPTH:
                stack.extend((c.FPDFFormObj_GetObject(obj, i), matrix, depth + 1)
                             for i in reversed(range(c.FPDFFormObj_CountObjects(obj))))
            continue
        yield obj, matrix


def _mul(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    """``a`` then ``b`` (PDF row-vector matrices)."""
    a0, a1, a2, a3, a4, a5 = a
    b0, b1, b2, b3, b4, b5 = b
    return (a0 * b0 + a1 * b2, a0 * b1 + a1 * b3, a2 * b0 + a3 * b2, a2 * b1 + a3 * b3,
            a4 * b0 + a5 * b2 + b4, a4 * b1 + a5 * b3 + b5)


def _subpaths(obj: Any, matrix: tuple[float, ...]) -> Iterator[tuple[str, list[tuple[float, float]]]]:
    """Each subpath as pdfminer sees it: its operators (``m``, ``l``, ``c``, ``h``) and their end points."""
    a, b, cc, d, e, f = matrix
    x, y = ctypes.c_float(), ctypes.c_float()
    shape, pts = "", []
    bezier = 0
    for i in range(c.FPDFPath_CountSegments(obj)):
        seg = c.FPDFPath_GetPathSegment(obj, i)
        c.FPDFPathSegment_GetPoint(seg, x, y)
        point = (x.value * a + y.value * cc + e, x.value * b + y.value * d + f)
        kind = c.FPDFPathSegment_GetType(seg)
        if kind == c.FPDF_SEGMENT_MOVETO:
            if shape:
                yield shape, pts
            shape, pts = "m", [point]
        elif kind == c.FPDF_SEGMENT_BEZIERTO:
            bezier += 1
            if bezier % 3 == 0:  # a curve is three points: two controls, then its end
                shape, pts = shape + "c", [*pts, point]
        else:
            shape, pts = shape + "l", [*pts, point]
        if c.FPDFPathSegment_GetClose(seg) and shape:
            shape, pts = shape + "h", [*pts, pts[0]]
    if shape:
        yield shape, pts


def _classify(shape: str, pts: list[tuple[float, float]], top_y: float,
              objects: dict[str, list[dict[str, Any]]]) -> None:
    if len(shape) > 3 and shape[-2:] == "lh" and pts[-2] == pts[0]:  # a redundant "l" closed by "h"
        shape, pts = shape[:-2] + "h", [*pts[:-2], pts[-1]]
    flipped = [(px, top_y - py) for px, py in pts]
    if shape in {"mlh", "ml"}:
        objects["line"].append(_box("line", flipped[:2], pts[:2]))
    elif shape in {"mlllh", "mllll"}:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3), _ = pts
        square = (x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0) or (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)
        if pts[0] == pts[4] and square:
            objects["rect"].append(_box("rect", flipped, pts))
        else:
            objects["curve"].append({**_box("curve", flipped, pts), "pts": flipped})
    elif shape[:1] == "m" and len(pts) > 1:
        objects["curve"].append({**_box("curve", flipped, pts), "pts": flipped})


def _box(kind: str, flipped: list[tuple[float, float]], raw: list[tuple[float, float]]) -> dict[str, Any]:
    xs = [p[0] for p in flipped]
    tops = [p[1] for p in flipped]
    ys = [p[1] for p in raw]
    x0, x1, top, bottom = min(xs), max(xs), min(tops), max(tops)
    return {"object_type": kind, "x0": x0, "x1": x1, "top": top, "bottom": bottom, "doctop": top,
            "y0": min(ys), "y1": max(ys), "width": x1 - x0, "height": bottom - top}
