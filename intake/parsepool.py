"""Documents are read in child processes, so a hostile file costs one file, never the worker.

``ParserPool`` keeps up to ``workers`` children (one per core by default). Each
child lowers its own address-space limit (``RLIMIT_AS``, ``child_memory_mb``)
before it reads anything, and reads one file at a time. The parent hands each
child its file over the child's own pipe and waits for the answers, the
children's exits and the per-file deadline (``file_timeout_seconds``) at once:

- an answer: the file's result, the same dict ``read_document`` gives in
  process (``{"kind": ..., "parsed": ...}`` or ``{"kind": "error", ...}``);
- a child that exits without answering (segfault, SIGKILL by the kernel's OOM
  killer, an abort in a C library): that file is ``UNREADABLE_FILE`` and the
  child is replaced;
- a child past the file's deadline (a hung or very slow parse): it is killed,
  the file is ``UNREADABLE_FILE``, the child is replaced;
- a child whose address space came near its limit (``RETIRE_AT``) answers and
  retires; an error it gives then is the limit speaking (a ``MemoryError``, or
  libxml2's "unknown error" when malloc fails) and is reported as such.

Every ``UNREADABLE_FILE`` of the pool has a reason a district can act on:
too big or malformed to read within the limits, or too slow to read.

Why a small supervisor of our own rather than a stock pool:
``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one
child dies (every file in flight fails with it, and the one that killed it is
not named) and cannot stop a hung task; ``multiprocessing.Pool`` replaces a
dead child but never answers for the task it held, and cannot stop a hung task
either. One pipe per child means a dying child takes nothing but its own file
with it, and the file that killed it is known.

Children are started by the ``forkserver`` method with the parsers preloaded:
a fresh, small, single-threaded process (a fork of the worker itself would
inherit its address space, its open store and its threads), started in
milliseconds. A child is also retired after ``tasks_per_child`` files, so heap
fragmentation cannot accumulate.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import logging
import multiprocessing
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger("intake")

CHILD_MEMORY_MB = 1536  # address space of one parser child: a 10-page form needs < 150 MB, OCR of a scan ~1 GB
FILE_TIMEOUT_SECONDS = 60.0  # wall clock for one file; a normal form takes well under 2 s
TASKS_PER_CHILD = 200  # a child is replaced after this many files
RETIRE_AT = 0.75  # a child whose address space reached this share of its limit answers, then is replaced
UNREADABLE = "UNREADABLE_FILE"
RESOURCE_REASON = "文件过大或结构异常，无法在限定资源内读取，请检查文件后重新发送"
TIMEOUT_REASON = "文件结构异常，读取超时，无法在限定时间内读取，请检查文件后重新发送"
PRELOAD = ["parsers.documents", "parsers.forms", "parsers.spreadsheet", "pdfplumber", "openpyxl", "docx", "xlrd",
           "intake.parsewarm"]

Item = tuple[bytes, str, str]  # (data, filename, sniffed)
Reader = Callable[[bytes, str, str], dict[str, Any]]


def unreadable(reason: str) -> dict[str, Any]:
    return {"kind": "error", "error_code": UNREADABLE, "error_reason": reason}


def read_document(data: bytes, filename: str, sniffed: str) -> dict[str, Any]:
    """What the parsers make of one file, as attachment columns, in this process. Never raises.

    A ``MemoryError`` anywhere in the parse (also one a parser turned into a ``ParseError``)
    is reported as the resource limit, not as a broken file.
    """
    from parsers.documents import parse_document
    from parsers.types import DocKind, ParseError

    try:
        doc = parse_document(data, filename, sniffed)
    except MemoryError:
        return unreadable(RESOURCE_REASON)
    except ParseError as e:
        if _caused_by(e, MemoryError):
            return unreadable(RESOURCE_REASON)
        seal = getattr(e, "seal", None)  # a scan keeps what the seal check saw (ledger column 盖章)
        return {"kind": "error", "error_code": e.code, "error_reason": e.reason,
                **({"parsed": {"seal": seal}} if seal is not None else {})}
    except Exception as e:  # a parser bug must not lose the message (logged)
        log.exception("parser failed on %s", filename)
        return unreadable(f"文件无法解析（{type(e).__name__}）")
    if doc is None:
        return {"kind": DocKind.UNRECOGNIZED}
    return {"kind": doc.kind, "parsed": doc.to_dict()}


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# -- the child ------------------------------------------------------------------------------


def _child_main(conn: Connection, memory_bytes: int, reader: Reader, tasks: int) -> None:
    """Lower the address-space limit, then answer one file at a time until told to stop (or retiring)."""
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    for _ in range(tasks):
        try:
            head = conn.recv()
            if head is None:
                return
            data = conn.recv_bytes()
        except (EOFError, OSError, MemoryError):
            return
        result, note = _answer(reader, data, *head)
        del data
        # Near the ceiling: an error here is the limit speaking (libxml2 says "unknown error" when malloc
        # fails), and a heap that grew this far is not kept for the next file.
        near = memory_bytes > 0 and _vm_peak() >= memory_bytes * RETIRE_AT
        retire = near or result.get("error_reason") == RESOURCE_REASON
        if near and result.get("kind") == "error":
            result, note = unreadable(RESOURCE_REASON), note or "address-space limit reached"
        try:
            conn.send((result, note, _status_kb("VmHWM"), retire))
        except (OSError, MemoryError, ValueError):
            return
        if retire:
            return


def _answer(reader: Reader, data: bytes, filename: str, sniffed: str) -> tuple[dict[str, Any], str]:
    """(result, a line for the parent's log or "")."""
    try:
        return reader(data, filename, sniffed), ""
    except MemoryError:
        return unreadable(RESOURCE_REASON), "MemoryError"
    except Exception as e:  # noqa: BLE001 - the reader is meant never to raise; say so in the parent's log
        return unreadable(f"文件无法解析（{type(e).__name__}）"), traceback.format_exc(limit=5)


def _vm_peak() -> int:
    """This process's peak address-space size in bytes (what RLIMIT_AS limits); 0 when unknown."""
    return _status_kb("VmPeak") * 1024


def _status_kb(key: str, pid: int | str = "self") -> int:
    """A ``kB`` line of /proc/PID/status (VmPeak, VmHWM, ...); 0 when unknown. VmHWM, not ``ru_maxrss``: the
    latter survives fork and exec, so a child would report its ancestors' peak."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return next(int(x.split()[1]) for x in f if x.startswith(key + ":"))
    except (OSError, StopIteration, ValueError):
        return 0


# -- the parent ------------------------------------------------------------------------------


@dataclass
class PoolStats:
    """What a pool did: files answered, children replaced and why, the children's peak RSS."""

    files: int = 0
    crashed: int = 0
    timed_out: int = 0
    memory_errors: int = 0
    children_started: int = 0
    child_peak_rss_kb: list[int] = field(default_factory=list)  # one entry per child that answered or was killed


@dataclass
class _Child:
    process: Any
    conn: Connection
    index: int | None = None  # the item it is reading
    deadline: float = 0.0
    answered: int = 0


class ParserPool:
    """Up to ``workers`` parser children; ``read_many`` reads files on them, one result per file."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        memory_mb: int = CHILD_MEMORY_MB,
        timeout: float = FILE_TIMEOUT_SECONDS,
        tasks_per_child: int = TASKS_PER_CHILD,
        reader: Reader = read_document,
    ) -> None:
        self.workers = max(1, workers or len(os.sched_getaffinity(0)))
        self.memory_bytes = memory_mb * 1024 * 1024
        self.timeout = timeout
        self.tasks_per_child = max(1, tasks_per_child)
        self.reader = reader
        self.stats = PoolStats()
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._idle: list[_Child] = []

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the idle children (they exit on their own; a stuck one is killed)."""
        children, self._idle = self._idle, []
        for child in children:
            with contextlib.suppress(OSError, ValueError):
                child.conn.send(None)
        for child in children:
            child.process.join(2)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()
            child.conn.close()

    def read(self, data: bytes, filename: str, sniffed: str) -> dict[str, Any]:
        return self.read_many([(data, filename, sniffed)])[0]

    def read_many(self, items: Iterable[Item]) -> list[dict[str, Any]]:
        """One result per item, in order. Never raises for a file; at most ``workers`` files at once."""
        todo = list(items)
        results: list[dict[str, Any] | None] = [None] * len(todo)
        busy: list[_Child] = []
        pending = iter(range(len(todo)))
        next_index = next(pending, None)
        while next_index is not None or busy:
            while next_index is not None and len(busy) < self.workers:
                child = self._give(next_index, todo[next_index])
                if child is None:  # the child died taking the file: try a fresh one once
                    child = self._give(next_index, todo[next_index])
                if child is None:
                    results[next_index] = unreadable(RESOURCE_REASON)
                else:
                    busy.append(child)
                next_index = next(pending, None)
            if busy:
                busy = self._collect(busy, todo, results)
        return [r if r is not None else unreadable(RESOURCE_REASON) for r in results]

    # -- inside read_many ------------------------------------------------------------------

    def _give(self, index: int, item: Item) -> _Child | None:
        child = self._idle.pop() if self._idle else self._start()
        data, filename, sniffed = item
        try:
            child.conn.send((filename, sniffed))
            child.conn.send_bytes(data)  # not pickled: no copy of the file in the worker
        except (OSError, ValueError):
            self._discard(child)
            return None
        child.index, child.deadline = index, time.monotonic() + self.timeout
        return child

    def _start(self) -> _Child:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_child_main, args=(child_end, self.memory_bytes, self.reader, self.tasks_per_child),
            name="intake-parser", daemon=True,
        )
        with _main_not_rerun():
            process.start()
        child_end.close()
        self.stats.children_started += 1
        return _Child(process, parent_end)

    def _collect(
        self, busy: list[_Child], todo: list[Item], results: list[dict[str, Any] | None]
    ) -> list[_Child]:
        """Wait for the first answer, exit or deadline among the busy children; the ones still busy."""
        now = time.monotonic()
        waits = [c.conn for c in busy] + [c.process.sentinel for c in busy]
        ready = set(wait(waits, timeout=max(0.0, min(c.deadline for c in busy) - now)))
        still = []
        for child in busy:
            index = child.index
            assert index is not None
            filename = todo[index][1]
            if child.conn in ready or child.process.sentinel in ready:
                if self._receive(child, results, filename):  # an exited child's answer may still be in the pipe
                    continue
                child.process.join(1)
                code = child.process.exitcode
                self.stats.crashed += 1
                log.error("parser child exited (code %s) reading %s: file unreadable, child replaced", code, filename)
                results[index] = unreadable(RESOURCE_REASON)
                self._discard(child)
            elif time.monotonic() >= child.deadline:
                self.stats.timed_out += 1
                self._note_peak(child)
                log.error("parser child over %.0f s reading %s: killed, file unreadable", self.timeout, filename)
                results[index] = unreadable(TIMEOUT_REASON)
                self._discard(child)
            else:
                still.append(child)
        return still

    def _receive(self, child: _Child, results: list[dict[str, Any] | None], filename: str) -> bool:
        """Take a child's answer; False when the pipe holds none (the child died)."""
        try:
            result, note, peak_kb, retiring = child.conn.recv()
        except (EOFError, OSError):
            return False
        index = child.index
        assert index is not None
        results[index] = result
        self.stats.files += 1
        self.stats.child_peak_rss_kb.append(peak_kb)
        if note:
            log.error("parser child reading %s: %s", filename, note)
        if result.get("error_reason") == RESOURCE_REASON:
            self.stats.memory_errors += 1
        child.answered += 1
        child.index = None
        if retiring or child.answered >= self.tasks_per_child:
            self._discard(child)  # it exits by itself after this answer
        else:
            self._idle.append(child)
        return True

    def _discard(self, child: _Child) -> None:
        """Kill (if still running) and reap a child; a new one is started when one is next needed."""
        if child.process.is_alive():
            child.process.join(0.2)
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
        child.conn.close()

    def _note_peak(self, child: _Child) -> None:
        if peak := _status_kb("VmHWM", child.process.pid):
            self.stats.child_peak_rss_kb.append(peak)


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start a child without it running the parent's main script again.

    multiprocessing re-executes a ``__main__`` run by path in every child it does not fork (the
    ``if __name__ == "__main__"`` idiom); the parsers need nothing of it, and under pytest or the
    ``intake`` script it costs a second per child. A main module *named* ``__main__`` is skipped.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None


def read_many(items: Iterable[Item], **options: Any) -> list[dict[str, Any]]:
    """``ParserPool(**options).read_many(items)`` with the pool closed afterwards."""
    with ParserPool(**options) as pool:
        return pool.read_many(items)
