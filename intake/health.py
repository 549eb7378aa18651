"""``intake health``: are polls succeeding? One line and an exit code, for the Docker HEALTHCHECK and monitors.

Unlike ``intake status`` it reads only the ``polls`` table, through a read-only connection: it never creates
or migrates the database, never waits on the worker's lock, and answers in milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HEALTHY, UNHEALTHY, NEVER = 0, 5, 6


@dataclass(frozen=True)
class Poll:
    finished_at: datetime
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Health:
    line: str
    exit_code: int


def judge(polls: Sequence[Poll], now: datetime, max_age: timedelta, max_failures: int, tz: ZoneInfo) -> Health:
    """Healthy when the newest successful poll is at most ``max_age`` old and the newest ``max_failures``
    polls did not all fail. ``polls`` are finished polls, newest first."""
    last_ok = next((p for p in polls if p.ok), None)
    if last_ok is None:
        why = f"; last poll failed: {polls[0].error}" if polls else ""
        return Health(f"UNHEALTHY: no poll has succeeded yet{why}", NEVER)
    when = f"{last_ok.finished_at.astimezone(tz):%Y-%m-%d %H:%M:%S%z}"
    age = now - last_ok.finished_at
    recent = polls[:max_failures]
    if max_failures > 0 and len(recent) == max_failures and not any(p.ok for p in recent):
        return Health(f"UNHEALTHY: the last {max_failures} polls failed (last success {when}); "
                      f"last error: {recent[0].error}", UNHEALTHY)
    if age > max_age:
        return Health(f"UNHEALTHY: last successful poll {when}, {int(age.total_seconds() // 60)} min ago "
                      f"(more than {int(max_age.total_seconds() // 60)} min)", UNHEALTHY)
    return Health(f"ok: last successful poll {when}, {int(age.total_seconds() // 60)} min ago", HEALTHY)


def read_polls(db_path: Path, limit: int) -> list[Poll]:
    """The newest ``limit`` finished polls plus the newest successful one, newest first; [] without a database."""
    if not db_path.exists():
        return []
    db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT id, finished_at, ok, error FROM polls WHERE finished_at IS NOT NULL "
                          "ORDER BY id DESC LIMIT ?", (max(limit, 1),)).fetchall()
        rows += db.execute("SELECT id, finished_at, ok, error FROM polls WHERE finished_at IS NOT NULL AND ok = 1 "
                           "ORDER BY id DESC LIMIT 1").fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):  # created, not yet migrated: the worker has not finished a poll
            return []
        raise
    finally:
        db.close()
    unique = sorted({r[0]: r for r in rows}.values(), key=lambda r: r[0], reverse=True)
    return [Poll(datetime.fromisoformat(r[1]), bool(r[2]), r[3]) for r in unique]


def health(db_path: Path, now: datetime, max_age: timedelta, max_failures: int, tz: ZoneInfo) -> Health:
    try:
        polls = read_polls(db_path, max_failures)
    except sqlite3.Error as e:
        return Health(f"UNHEALTHY: cannot read {db_path}: {e}", UNHEALTHY)
    return judge(polls, now, max_age, max_failures, tz)
