"""Synthetic scans of the golden forms: what a district's scanner makes of a printed, stamped form.

``scan_pdf(pdf, dpi=200, noise=True, angle=2, seal=True)`` renders each page of a text-layer PDF
(pypdfium2), optionally stamps a red seal over the ``（盖章）`` label of the first page that has one
(a ring, an arc of text inside it and a star, multiplied onto the page so the black text shows
through, as real seal ink does), adds red text that is no seal (``red_text``), rotates the page,
adds scanner noise (Gaussian grain, dark specks, a slight blur), and wraps the images back into an
image-only PDF (JPEG pages, as scanners write them). Everything is seeded, so a scan is the same
bytes each run.

Run from the repository root: ``.venv/bin/python tests/make_scan_data.py`` writes the few scans the
unit tests read to ``tests/data/docs/scans/`` (with the expected fields as ``<name>.json``); the
benchmark (``benchmarks/bench_ocr.py``) makes its own sweep with the same functions.
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
SEAL_RED = (214, 38, 38)
SEAL_MM, RING_MM = 42, 1.0  # a unit's round seal: 38-42 mm across, its border about 1 mm
OUT = ROOT / "tests" / "data" / "docs" / "scans"


def scan_pdf(pdf: bytes, *, dpi: int = 200, noise: bool = False, angle: float = 0.0, seal: bool = False,
             red_text: bool = False, seed: int = 0, pages: int | None = None,
             seal_text: str = "徐州恒达智能装备有限公司", oval: bool = False) -> bytes:
    """An image-only PDF of ``pdf``'s pages (the first ``pages`` when given) as a scanner makes it."""
    images = scan_images(pdf, dpi=dpi, noise=noise, angle=angle, seal=seal, red_text=red_text, seed=seed,
                         pages=pages, seal_text=seal_text, oval=oval)
    return images_pdf(images, dpi)


def scan_images(pdf: bytes, *, dpi: int = 200, noise: bool = False, angle: float = 0.0, seal: bool = False,
                red_text: bool = False, seed: int = 0, pages: int | None = None, seal_text: str = "",
                oval: bool = False) -> list[Image.Image]:
    import pypdfium2 as pdfium

    rng = np.random.default_rng(seed)
    doc = pdfium.PdfDocument(pdf)
    places = _stamp_places(pdf, pages)
    stamped = False
    out = []
    for i in range(min(len(doc), pages or len(doc))):
        img = doc[i].render(scale=dpi / 72).to_pil().convert("RGB")
        if seal and not stamped and places[i] is not None:
            x, y = places[i]
            img = stamp(img, (x * dpi / 72, y * dpi / 72), dpi, seal_text, rng, oval=oval)
            stamped = True
        if red_text and i == 0:
            img = add_red_text(img, dpi)
        if angle:
            img = img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
        if noise:
            img = add_noise(img, rng)
        out.append(img)
    return out


def _stamp_places(pdf: bytes, pages: int | None) -> list[tuple[float, float] | None]:
    """Per page, where a seal goes (PDF points from the top left): over the first ``盖章`` label."""
    import pdfplumber

    places: list[tuple[float, float] | None] = []
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages[: pages or len(doc.pages)]:
            hits = page.search(r"盖\s*章")
            places.append(((hits[0]["x0"] + 40, hits[0]["top"])) if hits else None)
    return places


def stamp(img: Image.Image, centre: tuple[float, float], dpi: int, text: str, rng: np.random.Generator,
          *, oval: bool = False) -> Image.Image:
    """The page with a red seal multiplied onto it at ``centre`` (pixels)."""
    d = SEAL_MM / 25.4 * dpi
    w, h = (d * 1.3, d * 0.9) if oval else (d, d)
    layer = Image.new("RGB", (int(w) + 8, int(h) + 8), "white")
    draw = ImageDraw.Draw(layer)
    ring = max(2, round(dpi * RING_MM / 25.4))
    draw.ellipse((4, 4, 4 + w, 4 + h), outline=SEAL_RED, width=ring)
    cx, cy = 4 + w / 2, 4 + h / 2
    _star(draw, cx, cy, d * 0.14)
    _arc_text(layer, text or "徐州市某某单位", cx, cy, w / 2 * 0.72, h / 2 * 0.72, round(d * 0.12))
    faded = _fade(layer, rng)
    x0, y0 = int(centre[0] - w / 2), int(centre[1] - h / 2)
    region = img.crop((x0, y0, x0 + faded.width, y0 + faded.height))
    img.paste(Image.fromarray((np.asarray(region, np.uint16) * np.asarray(faded, np.uint16) // 255)
                              .astype(np.uint8)), (x0, y0))
    return img


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.4
        a = -math.pi / 2 + k * math.pi / 5
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    draw.polygon(points, fill=SEAL_RED)


def _arc_text(layer: Image.Image, text: str, cx: float, cy: float, rx: float, ry: float, size: int) -> None:
    """The unit's name along the upper arc, each character turned to face the centre."""
    font = ImageFont.truetype(FONT, size)
    span = math.radians(220)
    for k, ch in enumerate(text):
        a = -math.pi / 2 - span / 2 + span * (k + 0.5) / len(text)
        glyph = Image.new("L", (size * 2, size * 2), 0)
        ImageDraw.Draw(glyph).text((size // 2, size // 2), ch, font=font, fill=255)
        glyph = glyph.rotate(-math.degrees(a) - 90, resample=Image.Resampling.BICUBIC)
        x, y = cx + rx * math.cos(a) - size, cy + ry * math.sin(a) - size
        layer.paste(Image.new("RGB", glyph.size, SEAL_RED), (int(x), int(y)), glyph)


def _fade(layer: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Uneven ink: some of the seal lighter, as a hand-pressed stamp leaves it."""
    a = np.asarray(layer, np.float32)
    ink = 255 - a
    h, w = a.shape[:2]
    xx = np.mgrid[0:h, 0:w][1]
    strength = 0.75 + 0.25 * np.cos(xx / w * math.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    return Image.fromarray((255 - ink * strength[..., None]).clip(0, 255).astype(np.uint8))


def add_red_text(img: Image.Image, dpi: int) -> Image.Image:
    """Red marks that are no seal, in the blank parts of the page: a note in the top margin, an
    underlined line at the foot, a square frame stamp with words in it and a square block of red
    handwriting-like lines."""
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, round(dpi * 0.16))
    draw.text((img.width * 0.55, dpi * 0.35), "（红色批注：已初审）", font=font, fill=SEAL_RED)
    y = img.height - dpi * 1.2
    draw.text((dpi * 1.0, y), "注：本页红色文字为填报说明，不是印章。", font=font, fill=SEAL_RED)
    draw.line((dpi * 1.0, y + dpi * 0.22, img.width - dpi, y + dpi * 0.22), fill=SEAL_RED, width=3)
    # a square "received" stamp (a frame, not a ring) and a square block of red lines, both seal-sized
    side = 30 / 25.4 * dpi
    x0, y0 = img.width * 0.62, img.height * 0.76
    draw.rectangle((x0, y0, x0 + side, y0 + side * 0.8), outline=SEAL_RED, width=max(2, round(dpi / 25.4)))
    draw.text((x0 + side * 0.12, y0 + side * 0.3), "收文登记", font=font, fill=SEAL_RED)
    x0, y0 = img.width * 0.1, img.height * 0.74
    for k, line in enumerate(("审核意见：同意", "推荐申报，请", "市局予以审核", "区知识产权局", "2024年11月")):
        draw.text((x0, y0 + k * dpi * 0.24), line, font=font, fill=SEAL_RED)
    return img


def add_noise(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Scanner grain, dark specks and a slight blur."""
    a = np.asarray(img.filter(ImageFilter.GaussianBlur(0.6)), np.float32)
    a += rng.normal(0, 12, a.shape[:2])[..., None]
    specks = rng.random(a.shape[:2]) < 0.0008
    a[specks] = rng.uniform(0, 90, int(specks.sum()))[:, None]
    return Image.fromarray(a.clip(0, 255).astype(np.uint8))


def images_pdf(images: list[Image.Image], dpi: int) -> bytes:
    """The images as an image-only PDF (one JPEG per page, no text layer)."""
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=images[1:], quality=75)
    return buf.getvalue()


# -- the golden scans the unit tests read ---------------------------------------------------------


def golden() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """name -> (scan bytes, expected) for tests/data/docs/scans."""
    forms = ROOT / "tests" / "data" / "docs" / "forms"

    def form(name: str) -> tuple[bytes, dict[str, Any]]:
        return (forms / f"{name}.pdf").read_bytes(), json.loads((forms / f"{name}.json").read_text("utf-8"))

    table, table_expected = form("new_table")
    lines, lines_expected = form("new_lines")
    ten, ten_expected = form("upgrade_table_10_pages")
    return {
        "table_200dpi_seal": (scan_pdf(table, dpi=200, seal=True, seed=1), {**table_expected, "seal": True}),
        "lines_noise_rot2": (scan_pdf(lines, dpi=200, noise=True, angle=2, seed=2),
                             {**lines_expected, "seal": False}),
        "lines_red_text": (scan_pdf(lines, dpi=150, red_text=True, seed=3), {**lines_expected, "seal": False}),
        "upgrade_10_pages_seal": (scan_pdf(ten, dpi=150, seal=True, seed=4, pages=5),
                                  {**ten_expected, "seal": True}),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (data, expected) in golden().items():
        (OUT / f"{name}.pdf").write_bytes(data)
        expected = {**expected, "filename": f"{name}.pdf"}
        (OUT / f"{name}.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", "utf-8")
        print(f"{name}.pdf {len(data)} bytes")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
