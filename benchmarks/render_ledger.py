"""Render a sample ledger through LibreOffice: xlsx -> PDF -> PNG, to look at as a person would.

Writes a realistic ledger (four districts, twelve projects, mixed statuses), converts
it with ``libreoffice --headless --convert-to pdf`` and renders pages 1 and 2 with
``pdftoppm -png -r 80``: 项目台账 is printed two A4 pages wide, so ``ledger.png`` puts the
two halves of its first rows side by side (``docs/ledger.png``). Prints the paths and the
size the Chinese text is printed at; exits non-zero when a tool fails.

    .venv/bin/python benchmarks/render_ledger.py [OUT_DIR]   # default benchmarks/results/render
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from report_factories import SHANGHAI, sample_ledger  # noqa: E402

from reports.ledger import write_ledger  # noqa: E402


def write_sample(out: Path) -> Path:
    ledger, messages, replies = sample_ledger(12, 8)
    path = out / "ledger.xlsx"
    write_ledger(path, ledger, messages, replies, SHANGHAI, data_dir=out, title="2024年高价值专利培育计划项目台账")
    return path


def to_pdf(xlsx: Path, out: Path) -> Path:
    """Convert with a throwaway LibreOffice profile, so a running desktop instance is not disturbed."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            ["libreoffice", f"-env:UserInstallation={Path(profile).as_uri()}", "--headless",
             "--convert-to", "pdf", "--outdir", str(out), str(xlsx)],
            check=True, capture_output=True, timeout=180,
        )
    pdf = out / f"{xlsx.stem}.pdf"
    if not pdf.exists():
        raise RuntimeError(f"LibreOffice wrote no {pdf.name}")
    return pdf


def facing_pages_png(pdf: Path) -> Path:
    """Pages 1 and 2 rendered at 80 dpi, side by side in one PNG beside the PDF."""
    from PIL import Image

    prefix = pdf.with_suffix("")
    pages = []
    for n in (1, 2):
        command = ["pdftoppm", "-png", "-r", "80", "-f", str(n), "-l", str(n), "-singlefile", str(pdf),
                   f"{prefix}-page{n}"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        pages.append(Image.open(f"{prefix}-page{n}.png").convert("RGB"))
    gap = 12
    sheet = Image.new("RGB", (sum(p.width for p in pages) + gap, max(p.height for p in pages)), "#808080")
    sheet.paste(pages[0], (0, 0))
    sheet.paste(pages[1], (pages[0].width + gap, 0))
    out = prefix.with_suffix(".png")
    sheet.save(out, optimize=True)
    return out


def printed_text_size(pdf: Path, page: int = 0) -> float:
    """The median size, in points, of the Chinese characters on a page of the PDF."""
    import statistics

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    text = pdfium.PdfDocument(pdf)[page].get_textpage()
    return statistics.median(pdfium_c.FPDFText_GetFontSize(text, i) for i in range(text.count_chars())
                             if "\u4e00" <= chr(pdfium_c.FPDFText_GetUnicode(text, i)) <= "\u9fff")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "benchmarks" / "results" / "render")
    out = ap.parse_args().out_dir
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("libreoffice") is None:
        print("libreoffice not found", file=sys.stderr)
        return 2
    xlsx = write_sample(out)
    pdf = to_pdf(xlsx, out)
    print(f"workbook: {xlsx}\npdf:      {pdf}\npng:      {facing_pages_png(pdf)}")
    print(f"项目台账 printed at {printed_text_size(pdf):.1f} pt (median of its Chinese characters, page 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
