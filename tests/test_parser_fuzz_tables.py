"""Fuzzing the summary-table parser: damaged workbooks give ParseError, never another exception or a hang.

``FUZZ_CASES`` (default 1000) mutated inputs per reader (openpyxl for .xlsx/.xlsm, xlrd for .xls), each
from a fixed seed so a failure names its case and replays. Mutations: truncation, byte flips, and,
inside the zip package, damaged XML parts (cut, flipped, chunks repeated or dropped, cell references
and dimensions made huge) re-zipped so they reach the XML reader instead of failing the CRC check.
"""

from __future__ import annotations

import io
import os
import random
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from parsers.spreadsheet import parse_summary_table
from parsers.types import ParseError, SummaryTable

TABLES = Path(__file__).parent / "data" / "docs" / "tables"
CASES = int(os.environ.get("FUZZ_CASES", "1000"))
SEED = 20241105
PER_CASE_SECONDS = 5.0
XLSX_SEEDS = ("plain.xlsx", "two_level.xlsx", "value_variants.xlsx", "macro.xlsm", "formula_text.xlsx")
XLS_SEEDS = ("legacy.xls",)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def splice(rng: random.Random, data: bytes) -> bytes:
    """A chunk repeated or dropped, or a run of bytes inserted."""
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 200))
    choice = rng.randrange(3)
    if choice == 0:
        return data[:b] + data[a:b] * rng.randint(1, 5) + data[b:]
    if choice == 1:
        return data[:a] + data[b:]
    return data[:a] + rng.randbytes(rng.randint(1, 64)) + data[a:]


def hugify(rng: random.Random, data: bytes) -> bytes:
    """Cell references, row numbers and dimensions made absurd (the memory attack on a reader)."""
    text = data.decode("utf-8", "replace")
    huge = rng.choice(["XFD1048576", "A1048576", "ZZZ99999999", "XFD1", "A0", "A-1"])
    text = re.sub(r'(r|ref)="[A-Z]*\d+', lambda m: f'{m.group(1)}="{huge}', text, count=rng.randint(1, 3))
    text = re.sub(r'<row r="\d+"', f'<row r="{rng.choice([1048576, 10**9, 0, -5])}"', text, count=1)
    return text.encode("utf-8")


BYTE_MUTATORS: list[Callable[[random.Random, bytes], bytes]] = [truncate, flip, splice]


def mutate_package(rng: random.Random, data: bytes) -> bytes:
    """One part of the zip package damaged, the package re-zipped intact around it."""
    src = zipfile.ZipFile(io.BytesIO(data))
    victim = rng.choice(src.namelist())
    mutators = [*BYTE_MUTATORS, hugify]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            body = src.read(name)
            if name == victim:
                body = rng.choice(mutators)(rng, body) if body else body
            dst.writestr(name, body)
    return out.getvalue()


def mutated(seed_data: bytes, rng: random.Random, *, package: bool) -> bytes:
    if package and rng.random() < 0.6:
        return mutate_package(rng, seed_data)
    return rng.choice(BYTE_MUTATORS)(rng, seed_data)


def run_cases(seeds: tuple[str, ...], sniffed: str, *, package: bool) -> dict[str, int]:
    files = [(TABLES / name).read_bytes() for name in seeds]
    outcomes = {"table": 0, "none": 0, "error": 0}
    for case in range(CASES):
        rng = random.Random(SEED * 1000 + case)
        data = mutated(files[case % len(files)], rng, package=package)
        started = time.monotonic()
        try:
            result = parse_summary_table(data, f"case{case}.{sniffed}", sniffed)
        except ParseError:
            outcomes["error"] += 1
        except Exception as e:  # the failure being tested for: name the case so it replays
            raise AssertionError(f"case {case}: {type(e).__name__}: {e}") from e
        else:
            assert result is None or isinstance(result, SummaryTable), f"case {case}: {result!r}"
            outcomes["table" if result else "none"] += 1
        assert time.monotonic() - started < PER_CASE_SECONDS, f"case {case} took too long"
    return outcomes


def test_fuzz_xlsx():
    """Mutated .xlsx/.xlsm packages: only ParseError, a SummaryTable or None, each case quickly."""
    outcomes = run_cases(XLSX_SEEDS, "xlsx", package=True)
    assert outcomes["error"] and outcomes["table"], outcomes  # the mutations reach both ends


def test_fuzz_xls():
    """Mutated .xls (BIFF8) files: only ParseError, a SummaryTable or None, each case quickly."""
    outcomes = run_cases(XLS_SEEDS, "xls", package=False)
    assert outcomes["error"] and outcomes["table"], outcomes


@pytest.mark.parametrize("ref", ["XFD1048576", "A1048576", "HZ5000000"])
def test_absurd_dimensions_are_read_within_the_limits(ref: str):
    """A sheet declaring (and using) a far-away cell is read up to the row/column limits, fast."""
    data = (TABLES / "plain.xlsx").read_bytes()
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            body = src.read(name)
            if name == "xl/worksheets/sheet1.xml":
                body = re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="A1:{ref}"'.encode(), body)
                body = body.replace(b"</sheetData>", f'<row r="{ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}">'
                                    f'<c r="{ref}" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'.encode())
            dst.writestr(name, body)
    started = time.monotonic()
    table = parse_summary_table(out.getvalue(), "big.xlsx", "xlsx")
    assert isinstance(table, SummaryTable) and len(table.rows) == 3
    assert time.monotonic() - started < 5
