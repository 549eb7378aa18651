"""Render a sample ledger through LibreOffice: xlsx -> PDF -> PNG of the first page, to look at.

Writes a realistic ledger (four districts, twelve projects, mixed statuses), converts
it with ``libreoffice --headless --convert-to pdf`` and renders page 1 with
``pdftoppm -png -r 80``. Prints the paths; exits non-zero when a tool fails.

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
    write_ledger(path, ledger, messages, replies, SHANGHAI, data_dir=out)
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


def first_page_png(pdf: Path) -> Path:
    prefix = pdf.with_suffix("")
    command = ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(prefix)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return prefix.with_suffix(".png")


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
    print(f"workbook: {xlsx}\npdf:      {pdf}\npng:      {first_page_png(pdf)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
