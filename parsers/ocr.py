"""Offline Chinese OCR of scanned pages (spec 10.10): PDF or image bytes in, text boxes out.

The engine is RapidOCR (``rapidocr-onnxruntime``): PP-OCRv4 detection and recognition models that
ship inside its wheel, run by onnxruntime on the CPU. No network, no service. It is the optional
``ocr`` extra: without it ``available()`` is false and scans stay ``SCANNED_FORM`` as before.

Sized for the parser child (one core, a few hundred MB):

- a PDF page is rendered by pypdfium2 at ``DPI``; red ink (a seal, a red note) is dropped
  (``_drop_red``), so a seal over a label does not hide it;
- blank margins are cropped; detection runs on the page scaled down to ``DET_SIDE`` pixels on its
  long side (text lines stay well above the detector's smallest size), and each line found is cut
  from the full-resolution page for recognition, so accuracy does not pay for the smaller detector
  input;
- onnxruntime runs single-threaded, without its memory arena (RapidOCR's default), and the
  direction classifier is off (a scanner's pages are upright within a few degrees);
- the engine loads once per process, on first use (``engine()``), and pages are read one at a time
  so the caller stops as soon as it has what it needs.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DPI = 200
DET_SIDE = 1120  # 960 loses lone digits; 1280 costs 25 % more for nothing
MAX_PIXELS = 40_000_000  # an image input larger than this is refused before decoding
MIN_SCORE = 0.5  # below it a box is dropped (specks, the seal's star), unless it is a lone 0
MAX_PAGES = 30
RED_INK = 40  # red minus the larger of green and blue above which a pixel is red ink
RED_LIGHT = 120  # ...and whose red is at least this light: print under a seal is dark in red too
SHORT = 1.5  # a box narrower than this many heights holds a character or two
EDGE_MARKS = "[]|.,:;'\"` "
ROUND = frozenset({"o", "O", "。", "〇", "○", "Ｏ", "ｏ", "°"})
M_ARENA_MAX = -8  # glibc mallopt parameter
MODULES = ("rapidocr_onnxruntime", "onnxruntime", "numpy", "pypdfium2", "PIL")


@dataclass(frozen=True)
class Box:
    """One line of text found on a page, in page pixels at ``DPI``."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    score: float
    row_y: float  # the box's middle with the page's skew taken out: boxes of one printed row share it


def available() -> bool:
    """Whether the ``ocr`` extra is installed (checked without importing the models)."""
    return all(importlib.util.find_spec(m) is not None for m in MODULES)


@functools.cache
def engine() -> Any:
    """The RapidOCR engine of this process, loaded on first use (about half a second)."""
    one_thread()
    import cv2
    from rapidocr_onnxruntime import RapidOCR

    cv2.setNumThreads(1)
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, use_cls=False,
                    det_limit_side_len=32, det_box_thresh=0.3, rec_img_shape=[3, 48, 160], rec_batch_num=1)


def one_thread() -> None:
    """Keep this process's native libraries to one thread and few malloc arenas, before they load.

    OCR runs in a parser child under an address-space limit: every OpenBLAS/OpenMP thread and every
    glibc arena reserves tens of MB of address space (not memory), which counts against it. Only
    effective when numpy and OpenCV are not yet imported in the process (the child's first scan).
    """
    import ctypes
    import os

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)
    except OSError:  # not glibc
        pass


def pdf_pages(data: bytes, max_pages: int = MAX_PAGES) -> Iterator[Any]:
    """A PDF's pages as grey numpy arrays at ``DPI``, seal red dropped, one at a time."""
    one_thread()
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        for i in range(min(len(pdf), max_pages)):
            page = pdf[i]
            try:
                rgb = page.render(scale=DPI / 72).to_numpy()
            finally:
                page.close()
            yield _drop_red(rgb[..., 2], rgb[..., :2].max(axis=2))  # pdfium renders BGR
    finally:
        pdf.close()


def image_page(data: bytes) -> Any:
    """An image file (PNG, JPEG, TIFF first frame) as one grey page, seal red dropped."""
    one_thread()
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > MAX_PIXELS:
            raise ValueError("image too large")
        rgb = np.asarray(img.convert("RGB"))
    return _drop_red(rgb[..., 0], rgb[..., 1:].max(axis=2))


def _drop_red(red: Any, others: Any) -> Any:
    """The page in grey without red ink: the red channel (black print stays dark, red ink is light
    there), and red ink (light in red, red well above green and blue) made white. Red over black
    print stays dark in the red channel, so a seal over a label leaves the label."""
    import numpy as np

    grey = red.copy()
    grey[(red > RED_LIGHT) & (red.astype(np.int16) - others > RED_INK)] = 255
    return grey


def read_page(grey: Any) -> list[Box]:
    """The text lines of one grey page, top to bottom, in page pixels."""
    import numpy as np

    eng = engine()
    x, y, page = _crop_margins(grey)
    if page is None:
        return []
    small, scale = _shrink(page, DET_SIDE)
    boxes, _ = eng.text_det(np.dstack([small] * 3))
    if boxes is None or len(boxes) == 0:
        return []
    boxes = eng.sorted_boxes(boxes / scale)
    texts = _recognize(eng, np.dstack([page] * 3), boxes)
    sin, cos = _skew(np.array(boxes))
    out = []
    for box, (raw, score) in zip(boxes, texts, strict=True):
        text = _repair(raw)
        if text and (score >= MIN_SCORE or text != raw):
            xs, ys = box[:, 0] + x, box[:, 1] + y
            row_y = float(ys.mean() * cos - xs.mean() * sin)
            out.append(Box(text, float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()), float(score),
                           row_y))
    return out


def _recognize(eng: Any, page: Any, boxes: list[Any]) -> list[tuple[str, float]]:
    """Each box's text and score. A short box (one or two characters) is also read with a margin
    around it and the likelier reading kept: the recognizer, trained on lines, misreads lone digits
    cut tight (a 0 comes back empty, a 6 unsure)."""
    texts = eng.text_rec(eng.get_crop_img_list(page, boxes))[0]
    short = [i for i, b in enumerate(boxes) if _width(b) < SHORT * _height(b)]
    if short:
        wide = eng.text_rec(eng.get_crop_img_list(page, [_widen(boxes[i]) for i in short]))[0]
        for i, (text, score) in zip(short, wide, strict=True):
            if _repair(text) and score > texts[i][1]:
                texts[i] = (text, score)
    return texts


def _width(box: Any) -> float:
    return float(box[1][0] - box[0][0])


def _height(box: Any) -> float:
    return float(box[3][1] - box[0][1])


def _widen(box: Any) -> Any:
    """The box with a margin: 0.3 of its height left and right, 0.1 above and below."""
    import numpy as np

    h = _height(box)
    return box + np.array([[-0.3, -0.1], [0.3, -0.1], [0.3, 0.1], [-0.3, 0.1]], dtype=box.dtype) * h


def _skew(boxes: Any) -> tuple[float, float]:
    """Sine and cosine of the page's tilt, from the top edges of its longer text boxes."""
    import numpy as np

    dx = boxes[:, 1, 0] - boxes[:, 0, 0]
    dy = boxes[:, 1, 1] - boxes[:, 0, 1]
    height = np.abs(boxes[:, 3, 1] - boxes[:, 0, 1]) + 1
    long = dx > 3 * height
    if not long.any():
        return 0.0, 1.0
    angle = float(np.median(np.arctan2(dy[long], dx[long])))
    return float(np.sin(angle)), float(np.cos(angle))


def _repair(text: str) -> str:
    """The text without stray edge marks; a box holding only a round glyph is a zero (the
    recognizer reads a lone 0 as o or 。)."""
    text = text.strip()
    core = text.strip(EDGE_MARKS)
    if core in ROUND:
        return "0"
    return core if core.isdigit() else text


def _crop_margins(grey: Any, ink: int = 160, pad: int = 16) -> tuple[int, int, Any]:
    """The page cut to its printed area (plus ``pad``); ``None`` for a blank page."""
    import numpy as np

    dark = grey < ink
    rows = np.flatnonzero(dark.sum(axis=1) > 2)  # a few specks of scanner noise are not print
    cols = np.flatnonzero(dark.sum(axis=0) > 2)
    if rows.size == 0 or cols.size == 0:
        return 0, 0, None
    y0, y1 = max(0, rows[0] - pad), min(grey.shape[0], rows[-1] + pad)
    x0, x1 = max(0, cols[0] - pad), min(grey.shape[1], cols[-1] + pad)
    return int(x0), int(y0), grey[y0:y1, x0:x1]


def _shrink(grey: Any, side: int) -> tuple[Any, float]:
    """The page scaled so its long side is at most ``side``, and the factor used."""
    import cv2

    h, w = grey.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return grey, 1.0
    return cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), scale


def rows(boxes: list[Box]) -> list[list[Box]]:
    """Boxes grouped into visual rows (vertical overlap with the row's first box), each left to right."""
    out: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: b.row_y):
        if out:
            first = out[-1][0]
            if abs(box.row_y - first.row_y) < 0.5 * min(first.bottom - first.top, box.bottom - box.top):
                out[-1].append(box)
                continue
        out.append([box])
    return [sorted(r, key=lambda b: b.x0) for r in out]


def page_items(boxes: list[Box]) -> list[str | list[str]]:
    """A page as the form reader's items: a row of one box is a text line, a row of several its cells.

    A lone box right under the last cell of a row of several, starting where that cell starts, is
    the cell's text wrapping onto a second line: it is joined to the cell.
    """
    items: list[str | list[str]] = []
    last: list[Box] | None = None
    for row in rows(boxes):
        if len(row) == 1 and last is not None and _continues(last[-1], row[0]):
            cells = items[-1]
            assert isinstance(cells, list)
            cells[-1] += row[0].text
            last = [*last[:-1], row[0]]
            continue
        items.append(row[0].text if len(row) == 1 else [b.text for b in row])
        last = row if len(row) > 1 else None
    return items


def _continues(cell: Box, box: Box) -> bool:
    height = min(cell.bottom - cell.top, box.bottom - box.top)  # of a tilted box, about the line's
    return abs(box.x0 - cell.x0) < 0.6 * height and 0.5 * height < box.row_y - cell.row_y < 1.8 * height


def document_pages(data: bytes, sniffed: str, max_pages: int = MAX_PAGES) -> Iterator[list[str | list[str]]]:
    """Each page of a scanned PDF or an image as the form reader's items, read when asked for."""
    pages = pdf_pages(data, max_pages) if sniffed == "pdf" else iter([image_page(data)])
    for grey in pages:
        yield page_items(read_page(grey))
