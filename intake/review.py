"""``intake review``: staff decisions kept in the store, one from the command line or many from a workbook.

The checks are ``intake.decisions``'s (pure); here the current ledger is built from the store, a staff copy
of 项目台账 is read, and the decisions are kept, all of a file in one transaction or none. After the
close-out no decision is taken: the final list went out to the districts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from intake.config import Config
from intake.decisions import Refused, ReviewPlan, ReviewRow, cell_text, check_rows, decide
from intake.errors import IntakeError
from intake.store import Store
from intake.view import current_ledger

SHEET = "项目台账"
NUMBER, CONCLUSION, COMMENT = "受理编号", "复核结论", "复核意见"
AUTO, MATERIAL, DECIDED_AT = "自动判定", "来件时间", "复核时间"
REQUIRED = (NUMBER, CONCLUSION, COMMENT, AUTO, MATERIAL, DECIDED_AT)
HEADER_SEARCH_ROWS = 5  # the header is row 1 of the ledger; a copy may have a title row or two above it


class ReviewError(IntakeError):
    """A decision or a workbook refused as a whole, with the reason in one line."""


@dataclass(frozen=True)
class Applied:
    """What ``review_file`` did: the lines to print, and whether the file's decisions were kept."""

    lines: list[str]
    kept: int
    ok: bool


def review_one(store: Store, cfg: Config, number: str, status: str, reason: str, by: str, now: datetime) -> str:
    """Keep one decision; returns the line to print (``XZ2024-云龙-001: 待审核 -> 受理``)."""
    _refuse_after_close(store)
    ledger = current_ledger(store, cfg)
    try:
        new = decide(ledger, number, status, reason)
    except Refused as e:
        raise ReviewError(str(e)) from None
    before = next(p.status for p in ledger.projects if p.number == new.number)
    store.insert_decisions([new], by, now)
    return f"{new.number}: {before.value} -> {new.status.value} (decided by {by})"


def review_file(store: Store, cfg: Config, path: Path, by: str, now: datetime) -> Applied:
    """Check every row of a staff copy of 项目台账 and keep its decisions: all of them, or none."""
    _refuse_after_close(store)
    rows = read_rows(path)
    plan: ReviewPlan = check_rows(rows, current_ledger(store, cfg), cfg.campaign.tz)
    if not plan.ok:
        return Applied([*plan.lines, f"nothing applied: {plan.refused} row(s) refused; correct them and run again"],
                       0, False)
    if plan.decisions:
        store.insert_decisions(plan.decisions, by, now, source=path.name)
    return Applied([*plan.lines, f"{len(plan.decisions)} decision(s) kept"], len(plan.decisions), True)


def _refuse_after_close(store: Store) -> None:
    closed = store.closeout()
    if closed is not None:
        raise ReviewError(f"the close-out ran on {closed.closed_at:%Y-%m-%d %H:%M:%S %z}: the final list was sent "
                          "to the districts, so no more decisions are taken")


def read_rows(path: Path) -> list[ReviewRow]:
    """The rows of the copy's 项目台账 sheet (else its first sheet), by header name; ``ReviewError`` when the
    file cannot be read or lacks a column."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - openpyxl raises zipfile, KeyError, InvalidFileException …: one line
        raise ReviewError(f"{path}: cannot read it as an .xlsx workbook ({type(e).__name__}: {e})") from None
    try:
        ws = wb[SHEET] if SHEET in wb.sheetnames else wb.worksheets[0]
        return list(_rows(ws.iter_rows(values_only=True), path))
    finally:
        wb.close()


def _rows(values: Iterator[Sequence[Any]], path: Path) -> Iterator[ReviewRow]:
    columns: dict[str, int] | None = None
    for row_number, row in enumerate(values, 1):
        if columns is None:
            names = [cell_text(v) for v in row]
            if NUMBER in names:
                columns = {n: names.index(n) for n in REQUIRED if n in names}
                missing = [n for n in REQUIRED if n not in columns]
                if missing:
                    raise ReviewError(f"{path}: sheet lacks the column(s) {', '.join(missing)}; "
                                      "use a copy of 项目台账 from the current ledger")
            elif row_number >= HEADER_SEARCH_ROWS:
                raise ReviewError(f"{path}: no header row with 受理编号 in the first {HEADER_SEARCH_ROWS} rows")
            continue

        def get(name: str, row: Sequence[Any] = row, cols: dict[str, int] = columns) -> str:
            i = cols[name]
            return cell_text(row[i]) if i < len(row) else ""

        if any(v is not None for v in row):
            yield ReviewRow(row_number, get(NUMBER), get(CONCLUSION), get(COMMENT), get(AUTO), get(MATERIAL),
                            get(DECIDED_AT))
    if columns is None:
        raise ReviewError(f"{path}: no header row with 受理编号")
