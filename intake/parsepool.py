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

A backlog keeps both cores busy by reading ahead (``read_ahead``): the poll hands each
fetched message to a free child a few messages before it records it; the child
takes the message apart as the worker will and answers file by file (each file
with its own deadline, measured from the previous answer on the shared monotonic
clock). When the worker then asks for those files (``read_many(..., tag=)``) it
takes the answers instead of reading again; a file that killed or hung the child
is that file's ``UNREADABLE_FILE`` as above, and a file the child did not get to
is read as usual. Results are the same either way: the child runs the same code
on the same bytes (a file is known by its SHA-256, name and sniffed type).

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
import hashlib
import importlib.machinery
import logging
import multiprocessing
import os
import resource
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
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
# Imported once by the fork server, shared by every child: a child then starts in milliseconds. pypdfium2 (PDF pages for
# the form reader and the seal check) costs 0.1 s to import; OCR's native libraries are not preloaded (parsers.ocr).
PRELOAD = ["parsers.documents", "parsers.forms", "parsers.mail", "parsers.spreadsheet", "parsers.seal",
           "parsers.pdfium_pages", "pdfplumber", "openpyxl", "docx", "xlrd", "pypdfium2", "intake.parsewarm"]

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

# What a child sends back: a file's answer; for a message, its files' keys, one answer per file, the end.
FILE, KEYS, DOC, END = "file", "keys", "doc", "end"
MESSAGE = "message"  # the head of a raw message sent to be read ahead


def file_key(data: bytes, filename: str, sniffed: str) -> tuple[bytes, str, str]:
    """What names one file of a message read ahead: its bytes' digest, its name and its sniffed type."""
    return hashlib.sha256(data).digest(), filename, sniffed


def _child_main(conn: Connection, memory_bytes: int, reader: Reader, tasks: int) -> None:
    """Lower the address-space limit, then answer one file (or message) at a time until told to stop
    (or retiring)."""
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    done = 0  # files read (a message read ahead counts its files, at least one), as the parent counts them
    while done < tasks:
        try:
            head = conn.recv()
            if head is None:
                return
            data = conn.recv_bytes()
        except (EOFError, OSError, MemoryError):
            return
        try:
            if head == MESSAGE:
                retire, read = _read_message(conn, reader, data, memory_bytes)
                done += max(read, 1)
            else:
                result, note, retire = _checked(_answer(reader, data, *head), memory_bytes)
                del data
                conn.send((FILE, result, note, _status_kb("VmHWM"), retire))
                done += 1
        except (OSError, MemoryError, ValueError):
            return
        if retire:
            return


def _checked(answer: tuple[dict[str, Any], str], memory_bytes: int) -> tuple[dict[str, Any], str, bool]:
    """(result, note, retire): near the ceiling an error is the limit speaking (libxml2 says "unknown error"
    when malloc fails), and a heap that grew this far is not kept for the next file."""
    result, note = answer
    near = memory_bytes > 0 and _vm_peak() >= memory_bytes * RETIRE_AT
    retire = near or result.get("error_reason") == RESOURCE_REASON
    if near and result.get("kind") == "error":
        result, note = unreadable(RESOURCE_REASON), note or "address-space limit reached"
    return result, note, retire


def _read_message(conn: Connection, reader: Reader, raw: bytes, memory_bytes: int) -> tuple[bool, int]:
    """Take a raw message apart as the worker will (``parsers.mail``) and read each of its files, answering
    file by file: first the files' keys, then each file's result as it is read, then the end.
    (retire, files read)."""
    try:
        files = _message_files(raw)
    except MemoryError:
        conn.send((END, "MemoryError taking the message apart", _status_kb("VmHWM"), True))
        return True, 0
    except Exception:  # noqa: BLE001 - parse_mail never raises; if it did, the worker reads the files itself
        conn.send((END, traceback.format_exc(limit=5), _status_kb("VmHWM"), False))
        return False, 0
    del raw
    conn.send((KEYS, [key for key, _ in files], time.monotonic()))
    read = 0
    retire = False
    while files and not retire:
        key, (data, filename, sniffed) = files.pop(0)
        result, note, retire = _checked(_answer(reader, data, filename, sniffed), memory_bytes)
        del data
        conn.send((DOC, key, result, note, time.monotonic()))
        read += 1
    conn.send((END, "", _status_kb("VmHWM"), retire))
    return retire, read


def _message_files(raw: bytes) -> list[tuple[tuple[bytes, str, str], Item]]:
    """The files of a message the worker may ask to read: every attachment without a problem of its own."""
    from parsers.mail import parse_mail

    parts = parse_mail(raw)
    problems = {p.filename for p in parts.problems if p.filename}
    return [(file_key(a.data, a.filename, a.sniffed), (a.data, a.filename, a.sniffed))
            for a in parts.attachments if a.filename not in problems]


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
    read_ahead: int = 0  # files whose result came from a message read ahead


@dataclass(eq=False)
class _Job:
    """A file to read (``item``), or a message to read ahead (``raw``, the results by ``file_key``)."""

    item: Item | None = None
    raw: bytes | None = None
    tag: Hashable = None
    result: dict[str, Any] | None = None  # a file's
    keys: list[tuple[bytes, str, str]] = field(default_factory=list)  # a message's files, in reading order
    results: dict[tuple[bytes, str, str], dict[str, Any]] = field(default_factory=dict)  # a message's
    done: bool = False

    def name(self) -> str:
        """The file being read (for the log): a file's name, or a message's first file not answered yet."""
        if self.item is not None:
            return self.item[1]
        pending = next((k for k in self.keys if k not in self.results), None)
        return pending[1] if pending else "(a message read ahead)"


@dataclass(eq=False)
class _Child:
    process: Any
    conn: Connection
    job: _Job | None = None  # what it is reading
    deadline: float = 0.0
    answered: int = 0


class ParserPool:
    """Up to ``workers`` parser children; ``read_many`` reads files on them, one result per file.

    ``read_ahead(tag, raw)`` hands a whole message to a free child before the worker gets to it: the child
    takes it apart as the worker will and reads its files, and ``read_many(files, tag=tag)`` later takes
    those results instead of reading the files again (a file it does not have is read as usual). Children
    are kept busy with such messages while the worker records the one before, so both cores work.
    """

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
        self._busy: list[_Child] = []
        self._queue: deque[_Job] = deque()
        self._ahead: dict[Hashable, _Job] = {}  # messages read ahead, oldest first

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the children: idle ones exit on their own (a stuck one is killed); one still reading a message
        ahead that nobody will ask for is killed."""
        for child in self._busy:
            self._discard(child, wait=0.0)
        children, self._idle, self._busy = self._idle, [], []
        self._queue.clear()
        self._ahead.clear()
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

    def read_ahead(self, tag: Hashable, raw: bytes) -> None:
        """Queue the raw message ``tag`` to be read ahead; a free child starts on it at once. Never blocks
        on a parse."""
        job = _Job(raw=raw, tag=tag)
        self._ahead[tag] = job
        self._queue.append(job)
        self._dispatch()
        if self._busy:
            self._collect(timeout=0.0)
            self._dispatch()

    def read_many(self, items: Iterable[Item], *, tag: Hashable = None) -> list[dict[str, Any]]:
        """One result per item, in order. Never raises for a file; at most ``workers`` files at once.

        ``tag``: the message these files came from, if it was read ahead (its results are used)."""
        todo = list(items)
        results: list[dict[str, Any] | None] = [None] * len(todo)
        ahead = self._take_ahead(tag) if tag is not None else {}
        jobs: list[tuple[int, _Job]] = []
        for i, item in enumerate(todo):
            found = ahead.get(file_key(*item)) if ahead else None
            if found is not None:
                results[i] = found
                self.stats.read_ahead += 1
            else:
                jobs.append((i, _Job(item=item)))
        self._queue.extendleft(job for _, job in reversed(jobs))  # before any message read ahead
        self._drive(lambda: all(job.done for _, job in jobs))
        for i, job in jobs:
            results[i] = job.result
        return [r if r is not None else unreadable(RESOURCE_REASON) for r in results]

    # -- inside read_many ------------------------------------------------------------------

    def _take_ahead(self, tag: Hashable) -> dict[tuple[bytes, str, str], dict[str, Any]]:
        """The results of message ``tag`` read ahead (waiting for them); messages queued before it are dropped
        (the worker has passed them)."""
        job = self._ahead.get(tag)
        if job is None:
            return {}
        for older in list(self._ahead):
            if older == tag:
                break
            passed = self._ahead.pop(older)
            if passed in self._queue:
                self._queue.remove(passed)
        if job in self._queue:
            self._queue.remove(job)
            self._queue.appendleft(job)
        self._drive(lambda: job.done)
        del self._ahead[tag]
        return job.results

    def _drive(self, until: Callable[[], bool]) -> None:
        """Hand out queued work and collect answers until ``until()``; then hand out more, so the children
        go on reading while the worker is away."""
        while True:
            self._dispatch()
            if until() or not self._busy:
                break
            self._collect()
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and len(self._busy) < self.workers:
            job = self._queue.popleft()
            child = self._give(job)
            if child is None:  # the child died taking the job: try a fresh one once
                child = self._give(job)
            if child is None:
                self._fail(job, RESOURCE_REASON)
            else:
                self._busy.append(child)

    def _give(self, job: _Job) -> _Child | None:
        child = self._idle.pop() if self._idle else self._start()
        if job.item is not None:
            data, filename, sniffed = job.item
            head: Any = (filename, sniffed)
        else:
            data, head = job.raw or b"", MESSAGE
        try:
            child.conn.send(head)
            child.conn.send_bytes(data)  # not pickled: no copy of the file in the worker
        except (OSError, ValueError):
            self._discard(child)
            return None
        job.raw = None  # the child has it now
        child.job, child.deadline = job, time.monotonic() + self.timeout
        return child

    def _fail(self, job: _Job, reason: str) -> None:
        """A job its child could not finish: a file is unreadable, and so is the file a message was on."""
        if job.item is not None:
            job.result = unreadable(reason)
        elif (pending := next((k for k in job.keys if k not in job.results), None)) is not None:
            job.results[pending] = unreadable(reason)
        job.done = True

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

    def _collect(self, timeout: float | None = None) -> None:
        """Wait for the first answer, exit or deadline among the busy children (at most ``timeout``)."""
        now = time.monotonic()
        limit = max(0.0, min(c.deadline for c in self._busy) - now)
        waits = [c.conn for c in self._busy] + [c.process.sentinel for c in self._busy]
        ready = set(wait(waits, timeout=limit if timeout is None else min(limit, timeout)))
        still = []
        for child in self._busy:
            job = child.job
            assert job is not None
            if child.conn in ready or child.process.sentinel in ready:
                answered = self._receive(child)  # an exited child's answer may still be in the pipe
                if answered is True:
                    continue
                if answered is None and child.process.sentinel not in ready:
                    still.append(child)
                    continue
                child.process.join(1)
                code = child.process.exitcode
                self.stats.crashed += 1
                log.error("parser child exited (code %s) reading %s: file unreadable, child replaced", code,
                          job.name())
                self._fail(job, RESOURCE_REASON)
                self._discard(child)
            elif time.monotonic() >= child.deadline:
                self.stats.timed_out += 1
                self._note_peak(child)
                log.error("parser child over %.0f s reading %s: killed, file unreadable", self.timeout, job.name())
                self._fail(job, TIMEOUT_REASON)
                self._discard(child)
            else:
                still.append(child)
        self._busy = still

    def _receive(self, child: _Child) -> bool | None:
        """Take what a child has sent: True when its job is done, None when it is still reading, False when
        the pipe holds nothing more (the child died)."""
        try:
            while child.conn.poll():
                if self._take(child, child.conn.recv()):
                    return True
        except (EOFError, OSError):
            return False
        return None

    def _take(self, child: _Child, answer: tuple[Any, ...]) -> bool:
        """One answer of a child; True when its job is done."""
        job = child.job
        assert job is not None
        kind, *rest = answer
        if kind == KEYS:
            job.keys, started = list(rest[0]), rest[1]
            child.deadline = started + self.timeout
            return False
        if kind == DOC:
            key, result, note, at = rest
            job.results[key] = result
            child.answered += 1  # counted per file, as the child counts them
            child.deadline = at + self.timeout  # the next file has its own time (one clock for all processes)
            self._noted(result, note, key[1])
            return False
        if kind == FILE:
            result, note, peak_kb, retiring = rest
            job.result = result
            self._noted(result, note, job.name())
        else:  # END
            note, peak_kb, retiring = rest
            if note:
                log.error("parser child reading a message ahead: %s", note)
        job.done = True
        self.stats.child_peak_rss_kb.append(peak_kb)
        if kind == FILE or not job.results:
            child.answered += 1  # a file; a message read ahead without files counts one
        child.job = None
        if retiring or child.answered >= self.tasks_per_child:
            self._discard(child)  # it exits by itself after this answer
        else:
            self._idle.append(child)
        return True

    def _noted(self, result: dict[str, Any], note: str, filename: str) -> None:
        self.stats.files += 1
        if note:
            log.error("parser child reading %s: %s", filename, note)
        if result.get("error_reason") == RESOURCE_REASON:
            self.stats.memory_errors += 1

    def _discard(self, child: _Child, wait: float = 0.2) -> None:
        """Kill (if still running) and reap a child; a new one is started when one is next needed."""
        if child.process.is_alive() and wait:
            child.process.join(wait)
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
