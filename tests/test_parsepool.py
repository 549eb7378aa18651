"""The parser pool: hostile files cost one file (UNREADABLE_FILE), never the worker; children are replaced.

The test-only readers below run in the children (the pool pickles them by name; tests/ is on the path).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

import hostile
import pytest

from intake import parsepool
from intake.parsepool import RESOURCE_REASON, TIMEOUT_REASON, ParserPool, read_document

FORMS = Path(__file__).parent / "data" / "docs" / "forms"
TABLES = Path(__file__).parent / "data" / "docs" / "tables"
SMALL_CHILD_MB = 320  # small enough that a bomb reaches it within seconds (a child starts at ~220 MB of address space)


def _item(path: Path) -> tuple[bytes, str, str]:
    return path.read_bytes(), path.name, path.suffix.lstrip(".")


def _by_name(data: bytes, filename: str, sniffed: str) -> dict:
    """Test reader: misbehaves as the file name says, else reads the file for real."""
    if filename == "hang":
        time.sleep(3600)
    if filename == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if filename == "segfault":
        ctypes.string_at(0)
    if filename == "hog":
        hoard = bytearray(8 * 1024**3)  # far over any child limit: MemoryError at once
        return {"kind": "never", "size": len(hoard)}
    if filename == "pid":
        return {"kind": "pid", "pid": os.getpid()}
    return read_document(data, filename, sniffed)


def _meet(data: bytes, filename: str, sniffed: str) -> dict:
    """Test reader: announces itself in a folder, then waits for the other file's child to do the same."""
    folder = Path(data.decode())
    (folder / filename).touch()
    other = folder / ("b" if filename == "a" else "a")
    for _ in range(200):
        if other.exists():
            return {"kind": "met", "pid": os.getpid()}
        time.sleep(0.05)
    return {"kind": "alone", "pid": os.getpid()}


def _unreadable(result: dict, reason: str) -> bool:
    return result == {"kind": "error", "error_code": "UNREADABLE_FILE", "error_reason": reason}


def test_results_are_what_the_parsers_give_in_process():
    """Read through the pool, real forms, tables and broken files give exactly the in-process dicts, in order."""
    items = [_item(p) for p in [*sorted(FORMS.glob("new_*.pdf"))[:3], FORMS / "docx_table.docx",
                                FORMS / "corrupt.pdf", FORMS / "encrypted.pdf", *sorted(TABLES.glob("*.xlsx"))[:3]]]
    with ParserPool() as pool:
        assert pool.read_many(items) == [read_document(*i) for i in items]


def test_pdf_bomb_over_the_memory_limit_is_unreadable_and_the_next_file_parses():
    """A 2 KB PDF that would take gigabytes becomes UNREADABLE_FILE for its file; the pool goes on."""
    bomb = hostile.pdf_text_bomb(3_000_000)
    form = _item(FORMS / "new_lines.pdf")
    with ParserPool(1, memory_mb=SMALL_CHILD_MB, timeout=120) as pool:
        result, after = pool.read_many([(bomb, "bomb.pdf", "pdf"), form])
    assert _unreadable(result, RESOURCE_REASON)
    assert after == read_document(*form)


@pytest.mark.parametrize(("name", "make"), [
    ("bomb.xlsx", lambda: hostile.xlsx_shared_strings_bomb(500_000)),
    ("bomb.docx", lambda: hostile.docx_paragraph_bomb(500_000)),
])
def test_office_bomb_is_stopped_by_a_limit_and_the_next_file_parses(name: str, make):
    """An xlsx/docx that passes the parsers' zip checks but would take minutes or gigabytes is cut off by the
    child's memory or time limit: UNREADABLE_FILE, and the next file parses."""
    form = _item(FORMS / "docx_table.docx")
    with ParserPool(1, memory_mb=SMALL_CHILD_MB, timeout=2) as pool:
        result, after = pool.read_many([(make(), name, name.rsplit(".", 1)[1]), form])
    assert result["error_code"] == "UNREADABLE_FILE" and result["error_reason"] in (RESOURCE_REASON, TIMEOUT_REASON)
    assert after == read_document(*form)


def test_a_hung_parse_is_killed_after_the_wall_clock_limit():
    """A parse that never returns is killed at the deadline; the file is UNREADABLE_FILE, the next one parses."""
    form = _item(FORMS / "new_lines.pdf")
    with ParserPool(1, timeout=1, reader=_by_name) as pool:
        hung, after = pool.read_many([(b"", "hang", "pdf"), form])
        assert pool.stats.timed_out == 1 and pool.stats.children_started == 2
    assert _unreadable(hung, TIMEOUT_REASON)
    assert after == read_document(*form)


@pytest.mark.parametrize("how", ["sigkill", "segfault"])
def test_a_child_killed_by_a_signal_is_replaced(how: str):
    """A child that dies (SIGKILL as from the OOM killer, or a segfault in C code) costs its file only: a new
    child reads the next file, and the one after reuses it."""
    form = _item(FORMS / "new_lines.pdf")
    with ParserPool(1, reader=_by_name) as pool:
        first, dead, after, again = pool.read_many([(b"", "pid", ""), (b"", how, "pdf"), form, (b"", "pid", "")])
        assert pool.stats.crashed == 1 and pool.stats.children_started == 2
    assert dead["error_code"] == "UNREADABLE_FILE"
    assert after == read_document(*form)
    assert first["pid"] != again["pid"]


def test_memory_error_is_unreadable_and_the_child_retires():
    """A MemoryError at the address-space limit is UNREADABLE_FILE with the resource reason; that child is not
    used again."""
    with ParserPool(1, memory_mb=SMALL_CHILD_MB, reader=_by_name) as pool:
        first, hog, second = pool.read_many([(b"", "pid", ""), (b"", "hog", ""), (b"", "pid", "")])
        assert pool.stats.memory_errors == 1
    assert _unreadable(hog, RESOURCE_REASON)
    assert first["pid"] != second["pid"]


def test_children_are_recycled_after_their_task_count():
    """A child reads at most tasks_per_child files, then a fresh one takes over."""
    with ParserPool(1, tasks_per_child=2, reader=_by_name) as pool:
        pids = [r["pid"] for r in pool.read_many([(b"", "pid", "")] * 5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_two_files_are_read_at_once(tmp_path: Path):
    """With two workers, two files are read by two children at the same time (each waits to see the other)."""
    folder = str(tmp_path).encode()
    with ParserPool(2, reader=_meet) as pool:
        a, b = pool.read_many([(folder, "a", ""), (folder, "b", "")])
    assert (a["kind"], b["kind"]) == ("met", "met") and a["pid"] != b["pid"]


def _files(raw: bytes) -> list[tuple[bytes, str, str]]:
    """A message's attachments as the worker reads them (``parsers.mail``)."""
    from parsers.mail import parse_mail

    return [(a.data, a.filename, a.sniffed) for a in parse_mail(raw).attachments]


def _message(*names: str, data: bytes = b"x") -> bytes:
    return hostile.message_with([(name, "application/octet-stream", data) for name in names], subject=b"ahead")


def test_a_message_read_ahead_gives_the_same_results_without_reading_again():
    """A message handed to the pool ahead is read by a child; the worker's read of its files takes those results
    (the same dicts as in process), and a file that was not in it is read as usual."""
    form, table = (FORMS / "new_lines.pdf").read_bytes(), next(iter(sorted(TABLES.glob("*.xlsx")))).read_bytes()
    raw = hostile.message_with([("申报书.pdf", "application/pdf", form), ("汇总表.xlsx", "application/vnd."
                                "openxmlformats-officedocument.spreadsheetml.sheet", table)])
    files = _files(raw)
    other = _item(FORMS / "new_table.pdf")
    with ParserPool(2) as pool:
        pool.read_ahead("m1", raw)
        assert pool.read_many([*files, other], tag="m1") == [read_document(*f) for f in [*files, other]]
        assert pool.stats.read_ahead == 2 and pool.stats.files == 3


def test_children_read_ahead_while_the_worker_is_away(tmp_path: Path):
    """Two messages handed ahead are read by two children at once, with no further call into the pool (the
    worker records the message before them meanwhile): each child waits to see the other."""
    folder = str(tmp_path).encode()
    with ParserPool(2, reader=_meet) as pool:
        pool.read_ahead("m1", _message("a", data=folder))
        pool.read_ahead("m2", _message("b", data=folder))
        deadline = time.monotonic() + 10
        while not ((tmp_path / "a").exists() and (tmp_path / "b").exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        (a,) = pool.read_many(_files(_message("a", data=folder)), tag="m1")
        (b,) = pool.read_many(_files(_message("b", data=folder)), tag="m2")
        assert pool.stats.read_ahead == 2
    assert (a["kind"], b["kind"]) == ("met", "met") and a["pid"] != b["pid"]


@pytest.mark.parametrize(("how", "reason"), [("sigkill", RESOURCE_REASON), ("hang", TIMEOUT_REASON)])
def test_a_file_that_kills_or_hangs_its_child_while_read_ahead_is_unreadable(how: str, reason: str):
    """A child that dies or hangs on a message's file read ahead: that file is UNREADABLE_FILE (not read a
    second time), the files answered before it keep their results, those after it are read as usual."""
    raw = _message("pid", how, "pid2")
    first, bad, last = _files(raw)
    with ParserPool(1, timeout=1, reader=_by_name) as pool:
        pool.read_ahead("m1", raw)
        got = pool.read_many([first, bad, last], tag="m1")
        assert pool.stats.read_ahead == 2 and pool.stats.children_started == 2
        assert (pool.stats.crashed, pool.stats.timed_out) == ((1, 0) if how == "sigkill" else (0, 1))
    assert got[0]["kind"] == "pid" and _unreadable(got[1], reason)
    assert got[2] == read_document(*last) and got[2]["kind"] != "pid"


def test_files_read_ahead_count_towards_the_task_count():
    """A child's task count counts files, also those of a message read ahead: after a message of three files a
    child with tasks_per_child=2 is replaced (a message is never split between children)."""
    raw = _message("pid", "pid2", "pid3")
    with ParserPool(1, tasks_per_child=2, reader=_by_name) as pool:
        pool.read_ahead("m1", raw)
        first = pool.read_many(_files(raw)[:1], tag="m1")[0]
        after = pool.read(b"", "pid", "")
        assert pool.stats.children_started == 2
    assert first["kind"] == "pid" and after["kind"] == "pid" and first["pid"] != after["pid"]


def test_messages_passed_over_are_not_read():
    """A message read ahead that the worker never asks for (it had no files to read) is dropped once a later
    message is asked for; one still queued is never sent to a child."""
    with ParserPool(1, reader=_by_name) as pool:
        for tag in ("m1", "m2", "m3"):
            pool.read_ahead(tag, _message("pid"))
        (got,) = pool.read_many(_files(_message("pid")), tag="m3")
        assert got["kind"] == "pid" and pool.stats.read_ahead == 1
        assert list(pool._ahead) == [] and not pool._queue  # m2 was dropped unread
        assert pool.stats.files == 2  # m1 (already with the child) and m3


def test_module_level_read_many_closes_its_children():
    """The convenience function answers and leaves no child running."""
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    assert parsepool.read_many([(b"", "pid", "")], reader=_by_name)[0]["kind"] == "pid"
    assert {p.pid for p in multiprocessing.active_children()} <= before


def test_parsing_table_is_optional_and_checked():
    """[parsing] may be left out (1 GiB, 60 s); a child limit too small to start a parser is one line naming it."""
    import tomllib

    from intake.config import parse_config
    from intake.errors import ConfigError

    root = Path(__file__).resolve().parents[1]
    raw = tomllib.loads((root / "config.toml").read_text(encoding="utf-8"))
    raw.pop("parsing", None)
    cfg = parse_config(raw, root, need_secrets=False)
    assert (cfg.parsing.child_memory_mb, cfg.parsing.file_timeout_seconds) == (1536, 60)
    with pytest.raises(ConfigError, match=r"^parsing\.child_memory_mb: must be at least 512$"):
        parse_config({**raw, "parsing": {"child_memory_mb": 300}}, root, need_secrets=False)


# -- the worker, against a real Dovecot --------------------------------------------------------------


def test_a_poll_over_hostile_mail_records_every_message_with_its_district(imap_account, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    """One poll over a district's hostile mail: a PDF bomb beside a good form (the bomb UNREADABLE_FILE, the form
    read), 1,000 nested multiparts and a message over the size limit (each recorded under the district with a
    message-level UNREADABLE_FILE, never as unknown_sender), and the worker process lives on."""
    from support import make_config, on_time

    from intake.models import Outcome
    from intake.poll import fetch
    from intake.store import Store
    from intake.worker import Worker
    from parsers import mail

    monkeypatch.setattr(fetch, "MAX_MESSAGE_BYTES", 2 * 1024 * 1024)
    sender = b"ylq-ip@example.cn"
    form = (FORMS / "new_lines.pdf").read_bytes()
    bomb_mail = hostile.message_with([("炸弹.pdf", "application/pdf", hostile.pdf_text_bomb(3_000_000)),
                                      ("申报书.pdf", "application/pdf", form)], sender=sender, subject=b"bomb")
    big_mail = hostile.message_with([("大文件.pdf", "application/pdf", b"%PDF-1.4\n" + os.urandom(2_500_000))],
                                    sender=sender, subject=b"big")
    imap_account.append_many([(bomb_mail, on_time(5)), (hostile.nested_multipart(1000, sender), on_time(5)),
                              (big_mail, on_time(5))])
    cfg = make_config(tmp_path / "var", imap=imap_account.mailbox_settings(), smtp={"host": "127.0.0.1", "port": 9},
                      parsing={"child_memory_mb": 512, "file_timeout_seconds": 5})
    cfg.districts[0].senders[:] = [sender.decode()]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        summary = Worker(cfg, store).poll()
        bomb, deep, big = sorted(store.messages(), key=lambda m: m.uid)
    assert summary.outcomes == {Outcome.PROCESSED: 3}
    assert {m.district for m in (bomb, deep, big)} == {cfg.districts[0].name}
    files = {a.filename: a for a in bomb.attachments}
    assert files["炸弹.pdf"].error_code == "UNREADABLE_FILE"
    assert files["炸弹.pdf"].error_reason in (RESOURCE_REASON, TIMEOUT_REASON)
    assert files["申报书.pdf"].kind == "application_form"
    assert [(f.code, f.message) for f in deep.findings] == [("UNREADABLE_FILE", mail.DEEP)]
    assert [(f.code, f.message) for f in big.findings] == [
        ("UNREADABLE_FILE", "邮件大小约4 MB，超过2 MB的接收上限，附件未能读取，请压缩或分开发送")]
    assert big.attachments == ()


@pytest.mark.parametrize("limit", [None, 1000], ids=["ahead", "too-big-to-hold"])
def test_a_poll_reads_the_next_messages_ahead_with_the_same_results(imap_account, tmp_path: Path, limit,
                                                                    monkeypatch: pytest.MonkeyPatch):
    """A poll hands each fetched message to the parser children before recording it: every file of a backlog
    is read once, ahead, and the recorded attachments are what the parsers give in process. A message over
    the read-ahead size is read in its turn instead, with the same results."""
    from support import make_config, on_time

    from intake.poll import cycle
    from intake.store import Store
    from intake.worker import Worker

    if limit is not None:
        monkeypatch.setattr(cycle, "READ_AHEAD_BYTES", limit)

    sender = b"ylq-ip@example.cn"
    forms = [FORMS / "new_lines.pdf", FORMS / "new_table.pdf", FORMS / "upgrade_table_10_pages.pdf"]
    table = next(iter(sorted(TABLES.glob("*.xlsx"))))
    mails = [hostile.message_with([("申报书.pdf", "application/pdf", f.read_bytes()),
                                   ("汇总表.xlsx", "application/octet-stream", table.read_bytes())],
                                  sender=sender, subject=f"m{i}".encode()) for i, f in enumerate(forms)]
    imap_account.append_many([(m, on_time(5)) for m in mails])
    cfg = make_config(tmp_path / "var", imap=imap_account.mailbox_settings(), smtp={"host": "127.0.0.1", "port": 9})
    cfg.districts[0].senders[:] = [sender.decode()]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        worker = Worker(cfg, store)
        worker.poll()
        stored = sorted(store.messages(), key=lambda m: m.uid)
    assert worker.ctx.parsers is not None and worker.ctx.parsers.stats.read_ahead == (6 if limit is None else 0)
    for message, form in zip(stored, forms, strict=True):
        got = {a.filename: (a.kind, a.error_code) for a in message.attachments}
        want = read_document(form.read_bytes(), "申报书.pdf", "pdf")
        assert got["申报书.pdf"] == (want["kind"], None)
        assert got["汇总表.xlsx"][0] == read_document(table.read_bytes(), "汇总表.xlsx", "xlsx")["kind"]
