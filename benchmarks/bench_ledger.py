"""Benchmark: ``write_ledger`` against a bare openpyxl write-only dump of the same cells.

The target (issue 4) is at most 2x the bare dump for 5,000 projects over 1,000
messages. The bare dump's cells are read back from the workbook ``write_ledger``
wrote, so both sides write exactly the same values; the bare side skips the styles,
links, widths, filters, chart and atomic swap. Each side runs ``--repeat`` times,
interleaved, and the best time of each counts (the usual way to shed noise).

    .venv/bin/python benchmarks/bench_ledger.py [--projects 5000] [--messages 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook, load_workbook

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from report_factories import SHANGHAI, sample_ledger  # noqa: E402

from reports.ledger import write_ledger  # noqa: E402

Sheets = list[tuple[str, list[tuple]]]


def read_cells(path: Path) -> Sheets:
    """Every sheet's values, row by row, as ``write_ledger`` left them."""
    wb = load_workbook(path, read_only=True)
    try:
        return [(ws.title, [tuple(r) for r in ws.iter_rows(values_only=True)]) for ws in wb.worksheets]
    finally:
        wb.close()


def bare_dump(sheets: Sheets, path: Path) -> None:
    """The baseline: the same values appended to a write-only workbook, nothing else."""
    wb = Workbook(write_only=True)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)


CLOCK = time.perf_counter  # time.process_time with --cpu: CPU seconds, steady on a machine others load


def timed(fn: Callable[[], None]) -> float:
    start = CLOCK()
    fn()
    return CLOCK() - start


def side_by_side(ours: Callable[[], None], data_dir: Path, repeat: int) -> tuple[float, float, int]:
    """Best times of ``ours`` (which writes ``data_dir/ledger.xlsx``) and of a bare dump of its cells."""
    ours()
    sheets = read_cells(data_dir / "ledger.xlsx")
    cells = sum(len(r) for _, rows in sheets for r in rows)
    t_ours = t_bare = float("inf")
    for _ in range(repeat):  # interleaved, so both sides see the same machine load
        t_ours = min(t_ours, timed(ours))
        t_bare = min(t_bare, timed(lambda: bare_dump(sheets, data_dir / "bare.xlsx")))
    return t_ours, t_bare, cells


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="CPU seconds of this process, not wall-clock seconds")
    args = ap.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = time.process_time
    ledger, messages, replies = sample_ledger(args.projects, args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)

        def ours() -> None:
            write_ledger(data_dir / "ledger.xlsx", ledger, messages, replies, SHANGHAI, data_dir=data_dir)

        t_ours, t_bare, cells = side_by_side(ours, data_dir, args.repeat)
    ratio = t_ours / t_bare
    unit = "CPU s" if args.cpu else "s"
    print(f"projects={args.projects} messages={args.messages} cells={cells} (best of {args.repeat}, {unit})")
    print(f"bare write-only dump : {t_bare:7.3f} s")
    print(f"write_ledger         : {t_ours:7.3f} s")
    print(f"ratio                : {ratio:7.2f}x  (target <= 2.00x) {'OK' if ratio <= 2 else 'OVER'}")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
