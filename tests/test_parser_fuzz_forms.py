"""Fuzz the form parser: mutated and truncated PDFs and .docx files give a form, None or ParseError.

``FUZZ_CASES`` (default 1000) inputs per parser, from a fixed seed so a failure repeats: byte
flips, truncations (with and without the trailer kept), chunk duplication and deletion of
small golden forms; for .docx half the cases mutate the zip bytes and half the inner
word/document.xml (re-zipped, so python-docx gets past the zip and meets broken XML).
Each case runs under a wall-clock alarm (``CASE_SECONDS``) so a hang fails the test instead
of stalling CI. pdfminer showed no hang on 16,000 such inputs (slowest case 0.3 s); the page,
size and time limits of parse_form bound the rest. About 10 s for both parsers on two cores.
"""

from __future__ import annotations

import io
import os
import random
import signal
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from parsers.forms import parse_form
from parsers.types import ApplicationForm, OtherDocument, ParseError

FORMS = Path(__file__).parent / "data" / "docs" / "forms"
CASES = int(os.environ.get("FUZZ_CASES", "1000"))
CASE_SECONDS = 10
SEED = 20241108


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of ``data`` and its description."""
    kind = rng.choice(("flip", "flip", "truncate", "cut_middle", "duplicate", "delete"))
    n = len(data)
    if kind == "truncate":
        cut = rng.randrange(n)
        return f"truncate@{cut}", data[:cut]
    if kind == "cut_middle":  # truncated but keeping the trailer, so the reader's recovery is exercised
        cut = rng.randrange(n)
        return f"cut@{cut}", data[:cut] + data[-256:]
    if kind == "flip":
        out = bytearray(data)
        spots = [rng.randrange(n) for _ in range(rng.randint(1, 4))]
        for i in spots:
            out[i] = rng.randrange(256)
        return f"flip{spots[:4]}", bytes(out)
    start = rng.randrange(n)
    size = rng.randint(1, min(4096, n - start))
    if kind == "duplicate":
        return f"dup@{start}+{size}", data[: start + size] + data[start: start + size] + data[start + size:]
    return f"del@{start}+{size}", data[:start] + data[start + size:]


def _with_document_xml(docx: bytes, rng: random.Random) -> tuple[str, bytes]:
    """The .docx re-zipped with its word/document.xml mutated."""
    src = zipfile.ZipFile(io.BytesIO(docx))
    how, xml = mutate(src.read("word/document.xml"), rng)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, xml if info.filename == "word/document.xml" else src.read(info))
    return "xml:" + how, out.getvalue()


def _run(seeds: list[bytes], sniffed: str, make: Callable[[bytes, random.Random], tuple[str, bytes]]) -> None:
    rng = random.Random(SEED)
    old = signal.signal(signal.SIGALRM, _alarm)
    outcomes = {"form": 0, "none": 0, "error": 0}
    slowest = 0.0
    try:
        for case in range(CASES):
            how, data = make(seeds[case % len(seeds)], rng)
            started = time.monotonic()
            signal.alarm(CASE_SECONDS)
            try:
                result = parse_form(data, f"case{case}.{sniffed}", sniffed)
            except ParseError:
                outcomes["error"] += 1
            except _Hang:
                pytest.fail(f"case {case} ({how}) ran over {CASE_SECONDS} s")
            except Exception as e:  # noqa: BLE001 - the point of the test
                pytest.fail(f"case {case} ({how}) raised {type(e).__name__}: {e}")
            else:
                assert result is None or isinstance(result, ApplicationForm | OtherDocument), f"case {case} ({how})"
                outcomes["form" if result else "none"] += 1
            finally:
                signal.alarm(0)
            slowest = max(slowest, time.monotonic() - started)
    finally:
        signal.signal(signal.SIGALRM, old)
    print(f"{sniffed}: {CASES} cases {outcomes}, slowest {slowest:.2f} s")
    assert outcomes["error"] and outcomes["form"], "the mutations exercise both outcomes"


def test_fuzz_pdf_forms():
    """Mutated and truncated PDF forms yield an ApplicationForm, an OtherDocument, None or ParseError, in the guard."""
    seeds = [(FORMS / name).read_bytes() for name in ("new_lines.pdf", "new_table.pdf", "encrypted.pdf")]
    _run(seeds, "pdf", mutate)


def test_fuzz_docx_forms():
    """Mutated .docx zips and mutated document.xml inside them yield a form, None or ParseError."""
    seeds = [(FORMS / name).read_bytes() for name in ("docx_table.docx", "docx_lines.docx")]

    def make(data: bytes, rng: random.Random) -> tuple[str, bytes]:
        return mutate(data, rng) if rng.random() < 0.5 else _with_document_xml(data, rng)

    _run(seeds, "docx", make)
