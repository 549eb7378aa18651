"""Scanned forms: field accuracy, seconds per form on one core and peak RSS, RapidOCR against Tesseract.

Run from the repository root with the ``ocr`` extra installed (Tesseract: Debian ``tesseract-ocr``
and ``tesseract-ocr-chi-sim``, called as a program)::

    .venv/bin/python benchmarks/bench_ocr.py            # the table of docs/ocr.md
    .venv/bin/python benchmarks/bench_ocr.py --quick    # two conditions, RapidOCR only

Scans are made from the golden forms (tests/data/docs/forms) by tests/make_scan_data.py: rendered
at 150/200/300 dpi, some with noise (grain, specks, blur) and a 2° rotation, some with a red seal
stamped over the 盖章 label, wrapped back into image-only PDFs. Each (engine, condition) runs in a
fresh child process (``--child``) so its peak RSS is its own (the scans are made by the parent and
handed over as files); the child reads one form to warm up (the model load is reported apart),
then every form for the timings.

- accuracy: per field, exact after normalization (NFKC, whitespace removed) against the form's
  golden JSON, over every field of every form;
- seconds per form: CPU seconds of the child (and of Tesseract's processes), which is one core's
  time since both run single-threaded (onnxruntime with one intra-op thread, OMP_THREAD_LIMIT=1);
  the pages read are those the reader needs (it stops once the fields are complete);
- Tesseract reads each page with ``--psm 6`` from the same red-dropped grey page, its lines go
  through the same form reader;
- seal: ``parsers.seal.detect`` on each form under each condition, scanned with a seal (round, or
  oval for every other form) and red text, and with the red text only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

FORMS = ROOT / "tests" / "data" / "docs" / "forms"
NAMES = ("new_lines", "new_table", "new_spaced", "new_next_line", "new_variants_table",
         "upgrade_lines_halfwidth_colon", "upgrade_table_10_pages")
CONDITIONS: dict[str, dict[str, Any]] = {
    "150 dpi": {"dpi": 150},
    "200 dpi": {"dpi": 200},
    "300 dpi": {"dpi": 300},
    "200 dpi, noise, 2°": {"dpi": 200, "noise": True, "angle": 2},
    "200 dpi, noise, -2°, seal": {"dpi": 200, "noise": True, "angle": -2, "seal": True},
    "150 dpi, noise, 2°, seal": {"dpi": 150, "noise": True, "angle": 2, "seal": True},
}
TESSERACT_CONDITIONS = ("200 dpi", "200 dpi, noise, 2°", "150 dpi, noise, 2°, seal")


def norm(value: Any) -> str:
    return "".join(unicodedata.normalize("NFKC", str(value)).split())


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_mb() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return max(own.ru_maxrss, kids.ru_maxrss) / 1024


# -- Tesseract: the same grey pages, its lines through the same reader --------------------------


def tesseract_pages(data: bytes) -> Iterator[list[str]]:
    import io

    from PIL import Image

    from parsers import ocr

    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    for grey in ocr.pdf_pages(data):
        buf = io.BytesIO()
        Image.fromarray(grey).save(buf, "PNG")
        out = subprocess.run(["tesseract", "stdin", "stdout", "-l", "chi_sim", "--psm", "6"],
                             input=buf.getvalue(), capture_output=True, check=True, env=env).stdout
        yield [line for line in out.decode("utf-8", "replace").splitlines() if line.strip()]


def read_form(engine: str, data: bytes) -> tuple[dict[str, Any], int]:
    from parsers import forms, ocr

    reader = forms._Reader()
    pages = ocr.document_pages(data, "pdf", forms.SCAN_OCR_PAGES) if engine == "rapidocr" else tesseract_pages(data)
    pages_read = forms._read(reader, pages, ocr=True)
    return reader.values(), pages_read


# -- one child: an engine on one condition ------------------------------------------------------


def make_scans(condition: str, folder: Path) -> None:
    """The condition's scans of every form, written to ``folder`` (made here, so a child's RSS is OCR's)."""
    from make_scan_data import scan_pdf

    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        pdf = (FORMS / f"{name}.pdf").read_bytes()
        (folder / f"{name}.pdf").write_bytes(scan_pdf(pdf, pages=4, seed=7, **CONDITIONS[condition]))


def child(engine: str, condition: str, folder: str) -> dict[str, Any]:
    from parsers import ocr

    scans = {name: ((Path(folder) / f"{name}.pdf").read_bytes(),
                    json.loads((FORMS / f"{name}.json").read_text("utf-8"))) for name in NAMES}
    load = 0.0
    if engine == "rapidocr":
        t = time.perf_counter()
        ocr.engine()
        load = time.perf_counter() - t
    read_form(engine, scans[NAMES[0]][0])  # warm up
    right = total = pages = 0
    times, misses = [], []
    for name, (data, expected) in scans.items():
        c0 = _cpu()
        fields, pages_read = read_form(engine, data)
        times.append(_cpu() - c0)
        pages += pages_read
        for field, value in expected["fields"].items():
            total += 1
            if norm(fields.get(field, "")) == norm(value):
                right += 1
            else:
                misses.append(f"{name}:{field}={fields.get(field)!r}")
    return {"engine": engine, "condition": condition, "right": right, "total": total,
            "seconds_per_form": sum(times) / len(times), "max_seconds": max(times), "pages": pages,
            "forms": len(times), "peak_mb": _peak_mb(), "load": load, "misses": misses[:8]}


def seal_child() -> dict[str, Any]:
    from make_scan_data import scan_pdf

    from parsers import seal

    tp = fp = fn = tn = 0
    seconds = []
    for kw in CONDITIONS.values():
        kw = {k: v for k, v in kw.items() if k != "seal"}
        for i, name in enumerate(NAMES):
            pdf = (FORMS / f"{name}.pdf").read_bytes()
            for stamped in (True, False):
                scan = scan_pdf(pdf, pages=3, seed=11, seal=stamped, red_text=True, oval=i % 2 == 1, **kw)
                c0 = _cpu()
                found = seal.detect(scan, "pdf")
                seconds.append(_cpu() - c0)
                tp += bool(found and stamped)
                fp += bool(found and not stamped)
                fn += bool(not found and stamped)
                tn += bool(not found and not stamped)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "seconds": sum(seconds) / len(seconds)}


# -- the parent: one child per run, then the table ----------------------------------------------


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, check=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two conditions, RapidOCR only")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(seal_child() if args.child == ["seal"] else child(*args.child), ensure_ascii=False))
        return
    conditions = ["200 dpi", "200 dpi, noise, 2°"] if args.quick else list(CONDITIONS)
    runs = [("rapidocr", c) for c in conditions]
    if not args.quick:
        runs += [("tesseract", c) for c in TESSERACT_CONDITIONS]
    print("| engine | scans | fields right | accuracy | CPU s per form (max) | pages read | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ocr_"))
    folders: dict[str, Path] = {}
    for engine, condition in runs:
        if condition not in folders:
            folders[condition] = tmp / str(len(folders))
            make_scans(condition, folders[condition])
        r = run_child(engine, condition, str(folders[condition]))
        print(f"| {engine} | {condition} | {r['right']}/{r['total']} | {100 * r['right'] / r['total']:.1f} % "
              f"| {r['seconds_per_form']:.2f} ({r['max_seconds']:.2f}) | {r['pages']} for {r['forms']} forms "
              f"| {r['peak_mb']:.0f} |", flush=True)
        if r["misses"]:
            print(f"<!-- misses: {'; '.join(r['misses'])} -->", flush=True)
        if r["load"]:
            print(f"<!-- model load {r['load']:.2f} s -->", flush=True)
    shutil.rmtree(tmp)
    s = run_child("seal")
    precision = s["tp"] / max(s["tp"] + s["fp"], 1)
    recall = s["tp"] / max(s["tp"] + s["fn"], 1)
    print(f"\nseal: {s['tp'] + s['fn']} scans with a seal, {s['tn'] + s['fp']} with red text only; "
          f"precision {100 * precision:.1f} %, recall {100 * recall:.1f} %; {s['seconds']:.2f} CPU s per document")


if __name__ == "__main__":
    main()
