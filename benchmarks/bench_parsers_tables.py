"""Summary-table parse time against a bare openpyxl read of the same 200-row file, side by side.

    .venv/bin/python benchmarks/bench_parsers_tables.py [--rows 200] [--repeat 15]

The bare read is what any reader must pay: ``load_workbook(read_only=True, data_only=True)`` and
every value of every sheet through ``iter_rows(values_only=True)``. The parse adds finding the
header, normalizing the cells and building the rows. Both run in one process, interleaved, after a
warm-up; the medians and their ratio are printed and written to benchmarks/results/ (target: ≤ 1.5).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parsers.spreadsheet import parse_summary_table  # noqa: E402
from samples.tables import sample_row, summary_table_xlsx  # noqa: E402

TARGET = 1.5
RESULTS = ROOT / "benchmarks" / "results" / "parsers_tables.txt"


def bare_openpyxl(data: bytes) -> int:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    count = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            count += len(row)
    wb.close()
    return count


def parse(data: bytes) -> int:
    table = parse_summary_table(data, "bench.xlsx", "xlsx")
    assert table is not None
    return len(table.rows)


def timed(fn: Callable[[bytes], int], data: bytes) -> float:
    started = time.perf_counter()
    fn(data)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    data = summary_table_xlsx("云龙区", [sample_row(i) for i in range(args.rows)])
    assert parse(data) == args.rows
    for fn in (bare_openpyxl, parse):  # warm-up: imports, caches
        fn(data)
    bare, ours = [], []
    for _ in range(args.repeat):
        bare.append(timed(bare_openpyxl, data))
        ours.append(timed(parse, data))
    b, o = statistics.median(bare), statistics.median(ours)
    lines = [
        f"summary table: {args.rows} rows, {len(data)} bytes, {args.repeat} repetitions (medians)",
        f"  bare openpyxl read (read_only, all values): {b * 1000:8.2f} ms",
        f"  parse_summary_table:                        {o * 1000:8.2f} ms",
        f"  ratio parse / bare: {o / b:.2f} (target ≤ {TARGET})",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", encoding="utf-8")
    return 0 if o / b <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
