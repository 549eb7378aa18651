"""Atomic, durable files and the clean-up of what a killed writer leaves (reports/files.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intake.archive import Archive
from intake.store import MIGRATIONS, Store
from reports import files
from reports.files import TEMP_PREFIX, atomic_write, remove_stale_temp


def test_atomic_write_replaces_whole_and_fsyncs_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target holds the new bytes, no temporary file remains, and the directory was fsynced after the rename."""
    target = tmp_path / "ledger.xlsx"
    target.write_bytes(b"old")
    synced: list[Path] = []
    monkeypatch.setattr(files, "fsync_dir", lambda d: synced.append(d))
    atomic_write(target, lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.xlsx"]
    assert synced == [tmp_path]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """An exception while writing keeps the previous content and removes the half-written temporary file."""
    target = tmp_path / "digest.html"
    target.write_bytes(b"old")

    def boom(fh: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["digest.html"]


def test_stale_temporary_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    """Temporary files older than an hour (a killed writer's) go; a live writer's recent one and real files stay."""
    (tmp_path / "archive" / "ab").mkdir(parents=True)
    stale = tmp_path / "archive" / "ab" / f"{TEMP_PREFIX}x"
    fresh = tmp_path / f"{TEMP_PREFIX}ledger-1.xlsx"
    real = tmp_path / "ledger.xlsx"
    for p in (stale, fresh, real):
        p.write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assert remove_stale_temp(tmp_path) == 1
    assert not stale.exists() and fresh.exists() and real.exists()


def test_a_killed_archive_write_is_cleaned_at_the_next_start(tmp_path: Path) -> None:
    """A writer killed with SIGKILL between write and rename leaves a temporary file; the next Archive clears it."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from reports import files\n"
        "files.os.replace = lambda *a: os.kill(os.getpid(), 9)\n"
        "from intake.archive import Archive\n"
        f"Archive(Path({str(tmp_path)!r})).put(b'data', 'pdf')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent, check=False)
    assert proc.returncode == -9
    leftovers = list(tmp_path.rglob(f"{TEMP_PREFIX}*"))
    assert len(leftovers) == 1
    old = time.time() - 2 * 3600
    os.utime(leftovers[0], (old, old))
    assert Archive(tmp_path).remove_stale_temp() == 1
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))


def test_two_processes_migrating_at_once_both_end_on_the_last_version(tmp_path: Path) -> None:
    """Migrations read user_version inside the write transaction: two processes opening a new database together
    never apply a migration twice (which would fail on CREATE TABLE) and both see the final version."""
    db = tmp_path / "intake.db"
    code = f"from pathlib import Path\nfrom intake.store import Store\nprint(Store(Path({str(db)!r})).schema_version)\n"
    root = Path(__file__).parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err.decode()[-500:] for _, err in results]
    assert {out.strip() for out, _ in results} == {str(len(MIGRATIONS)).encode()}
    with Store(db) as store:
        assert store.schema_version == len(MIGRATIONS)
