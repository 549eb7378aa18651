"""One poller at a time: an exclusive ``flock`` on ``<data_dir>/intake.lock``."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from intake.errors import LockedError


@contextmanager
def poll_lock(data_dir: Path) -> Iterator[None]:
    """Hold the worker lock; raise ``LockedError`` at once if another process has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "intake.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"another intake process is polling {data_dir}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
