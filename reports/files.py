"""Files that readers may open at any moment: written whole or not at all.

A temporary file in the same directory is written, flushed and fsynced, then
renamed over the target with ``os.replace``; the directory is fsynced after
the rename so the new name survives a power cut too. A writer killed before
the rename leaves only its temporary file, which ``remove_stale_temp`` clears
at the next start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".tmp-"
STALE_AFTER_SECONDS = 3600  # a live writer finishes long before this; older temporary files are a kill's leftovers


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], None], mode: int | None = 0o644) -> None:
    """Replace ``path`` with what ``write`` puts into a file object, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # mkstemp makes 0600; staff open these files from a share
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` the same way: a reader of ``target`` (a staff PC on a share) sees the
    old file or the new one, never a part; the copy is readable by all (0644)."""
    with source.open("rb") as src:
        atomic_write(target, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))


def remove_stale_temp(root: Path, now: float | None = None) -> int:
    """Delete temporary files under ``root`` left by a killed writer (older than an hour); returns how many."""
    cutoff = (time.time() if now is None else now) - STALE_AFTER_SECONDS
    removed = 0
    if not root.is_dir():
        return 0
    for tmp in root.rglob(f"{TEMP_PREFIX}*"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except OSError:
            continue
    return removed
