"""Benchmark: parse_form on a 10-page form vs a bare pdfplumber full-text extraction of the same file.

Run: ``.venv/bin/python benchmarks/bench_parsers_forms.py [--reps N] [--layout LAYOUT]``.
Both sides run in one process, interleaved, on the same bytes (a form from
``samples.forms``: cover page, sections 一 and 二 on pages 2–3, narrative to page 10):

- baseline: ``pdfplumber.open`` + ``page.extract_text()`` for every page;
- parse_form: what the intake worker calls (stops once every field is found);
- for information, parse_form on the same form lacking 联系电话, which it must read to the end:
  the per-page cost of its reading without the early stop.

Prints the median and minimum of each and the ratio of medians (target ≤ 1.0×) and writes the
same text to benchmarks/results/parsers_forms.txt (gitignored).
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pdfplumber  # noqa: E402

from parsers.forms import parse_form  # noqa: E402
from samples.forms import form_pdf, sample_form_fields  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "parsers_forms.txt"


def bare_extraction(data: bytes) -> int:
    """Open the PDF and extract every page's text, as a plain pdfplumber user would."""
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return sum(len(page.extract_text() or "") for page in pdf.pages)


def timed(fn, data: bytes) -> float:
    started = time.perf_counter()
    fn(data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--layout", default="lines", choices=("lines", "table", "spaced", "next_line"))
    args = parser.parse_args()
    data = form_pdf(sample_form_fields(0), layout=args.layout, pages=10)
    form = parse_form(data, "bench.pdf", "pdf")
    assert form is not None and len(form.fields) == 21, "the benchmark form must parse completely"
    bare_extraction(data)  # warm-up: font tables, imports
    lacking_phone = {k: v for k, v in sample_form_fields(0).items() if k != "联系电话"}
    lacking = form_pdf(lacking_phone, layout=args.layout, pages=10)
    base, ours, full = [], [], []
    for _ in range(args.reps):
        base.append(timed(bare_extraction, data))
        ours.append(timed(lambda d: parse_form(d, "bench.pdf", "pdf"), data))
        full.append(timed(lambda d: parse_form(d, "bench.pdf", "pdf"), lacking))
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        pages = len(pdf.pages)
    ratio = statistics.median(ours) / statistics.median(base)
    runs = {"base": base, "ours": ours, "full": full}
    med = {name: statistics.median(times) * 1000 for name, times in runs.items()}
    lines = [
        f"parse_form vs bare pdfplumber extract_text, {pages}-page form ({args.layout} layout, "
        f"{len(data)} bytes), {args.reps} interleaved repetitions; python {platform.python_version()}, "
        f"pdfplumber {pdfplumber.__version__}",
        f"  bare pdfplumber (open + extract_text x {pages}): median {med['base']:7.1f} ms, "
        f"min {min(base) * 1000:7.1f} ms",
        f"  parse_form (pages read: {form.pages_read}):            median {med['ours']:7.1f} ms, "
        f"min {min(ours) * 1000:7.1f} ms",
        f"  parse_form, 联系电话 missing (reads every page): median {med['full']:7.1f} ms "
        f"({med['full'] / med['base']:.2f}x)",
        f"  ratio of medians: {ratio:.2f}x (target <= 1.0x) -> {'OK' if ratio <= 1.0 else 'OVER TARGET'}",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")


if __name__ == "__main__":
    main()
