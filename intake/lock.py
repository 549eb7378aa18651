"""One poller at a time: an exclusive lock on ``<data_dir>/intake.lock``.

``filelock`` takes the operating system's own lock (``flock`` on Linux and macOS, the Win32 file lock on
Windows), so the lock is released by the kernel when the process dies, however it dies: no stale lock
file to clean up after a crash or a power cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from intake.errors import LockedError

LOCK_NAME = "intake.lock"


@contextmanager
def poll_lock(data_dir: Path) -> Iterator[None]:
    """Hold the worker lock; raise ``LockedError`` at once if another process (or another holder) has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # thread_local=False and is_singleton=False: a second poll_lock in the same process is refused too,
    # exactly like one in another process (no re-entry by accident).
    lock = FileLock(data_dir / LOCK_NAME, timeout=0, thread_local=False, is_singleton=False)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(f"another intake process is polling {data_dir} (lock {data_dir / LOCK_NAME})") from None
    try:
        yield
    finally:
        lock.release()
