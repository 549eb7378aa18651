"""The intake worker against a real Dovecot: every message once, nothing twice, crashes completed."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from support import DEADLINE, SENDERS, config_toml, make_config, on_time, plain_mail

from intake.compose import compose
from intake.config import Config
from intake.errors import MailboxError
from intake.models import Outcome
from intake.store import Store
from intake.worker import Worker


def config_for(account, tmp_path: Path, smtp=None, **mailbox) -> Config:
    smtp_keys = {"host": smtp.host, "port": smtp.port} if smtp else {"host": "127.0.0.1", "port": 9}
    return make_config(tmp_path / "var", imap=account.mailbox_settings(**mailbox), smtp=smtp_keys)


def poll(cfg: Config, **kw):
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def recorded(cfg: Config) -> list[tuple[int, str]]:
    with sqlite3.connect(cfg.paths.data_dir / "intake.db") as db:
        return db.execute("SELECT uid, outcome FROM messages ORDER BY uid").fetchall()


@pytest.fixture
def many(imap_account):
    """500 messages from unknown senders, appended with chosen INTERNALDATEs."""
    count = imap_account.append_many((plain_mail(i), on_time(1 + i % 7, 9, i % 60)) for i in range(500))
    assert count == 500
    return imap_account


def test_500_messages_each_recorded_once_second_poll_fetches_nothing(many, tmp_path: Path) -> None:
    """One poll records all 500 messages once; a second poll finds nothing new and fetches no body."""
    cfg = config_for(many, tmp_path)
    first = poll(cfg)
    rows = recorded(cfg)
    assert first.new == 500 and first.fetched == 500
    assert [uid for uid, _ in rows] == many.uids() and len(set(rows)) == 500
    assert {o for _, o in rows} == {Outcome.UNKNOWN_SENDER}
    second = poll(cfg)
    assert second.new == 0 and second.fetched == 0
    assert len(recorded(cfg)) == 500


def test_killed_mid_batch_then_restarted_records_each_once(many, tmp_path: Path) -> None:
    """A poll killed with SIGKILL mid-batch, then run again, ends with every message recorded exactly once."""
    cfg = config_for(many, tmp_path, batch_size=25)
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "intake.cli", "poll", "--config", str(config_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    db = cfg.paths.data_dir / "intake.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if db.exists() and _count(db) >= 120:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _count(db)
    assert 120 <= partial < 500, "the kill must land mid-poll"
    poll(cfg)
    rows = recorded(cfg)
    assert len(rows) == 500 and sorted(uid for uid, _ in rows) == many.uids()


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_processed_mail_flagged_seen_and_moved_to_chinese_folder(imap_account, tmp_path: Path) -> None:
    """After its outcome is committed, a message is flagged \\Seen and moved to 已处理; nothing is deleted."""
    for i in range(3):
        imap_account.append(plain_mail(i), on_time())
    cfg = config_for(imap_account, tmp_path, processed_folder="已处理")
    summary = poll(cfg, dry_run=False)
    assert summary.moved == 3
    assert imap_account.uids("INBOX") == []
    moved = imap_account.fetch_flags("已处理")
    assert len(moved) == 3 and all("\\Seen" in flags for flags in moved.values())
    assert "\\Deleted" not in set().union(*moved.values())


def test_unread_mail_stays_unread_until_recorded(imap_account, tmp_path: Path) -> None:
    """Fetching uses BODY.PEEK: a dry run reads the mail but records nothing and leaves it unseen and in place."""
    imap_account.append(plain_mail(1), on_time())
    cfg = config_for(imap_account, tmp_path, processed_folder="已处理")
    summary = poll(cfg, dry_run=True)
    assert summary.fetched == 1 and summary.outcomes == {Outcome.UNKNOWN_SENDER: 1}
    assert recorded(cfg) == []
    flags = imap_account.fetch_flags("INBOX")
    assert len(flags) == 1 and "\\Seen" not in next(iter(flags.values()))


def test_internaldate_decides_lateness_not_the_date_header(imap_account, tmp_path: Path) -> None:
    """A district message whose Date header says on time but whose INTERNALDATE is after the deadline is late."""
    late = DEADLINE.replace(day=9, hour=0, minute=0, second=1)
    raw = compose(sender=SENDERS["云龙区"], subject="材料", arrival=on_time(), message_id="<late@x>")
    imap_account.append(raw, late)
    raw2 = compose(sender=SENDERS["云龙区"], subject="材料", arrival=on_time(), message_id="<ontime@x>")
    imap_account.append(raw2, DEADLINE)  # 23:59:59 on 8 Nov counts as on time
    cfg = config_for(imap_account, tmp_path)
    poll(cfg)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        by_id = {m.message_id: m for m in store.messages()}
    assert by_id["<late@x>"].outcome is Outcome.LATE
    assert by_id["<late@x>"].arrival == late
    assert by_id["<ontime@x>"].outcome is Outcome.PROCESSED


def test_uidvalidity_change_neither_reprocesses_nor_skips(imap_account, tmp_path: Path) -> None:
    """When the server renumbers the folder, known mail is re-attached by Message-ID and new mail is read."""
    for i in range(5):
        imap_account.append(plain_mail(i), on_time())
    cfg = config_for(imap_account, tmp_path)
    poll(cfg)
    imap_account.server.reset_uidvalidity(imap_account.user)
    imap_account.append(plain_mail(99), on_time())
    summary = poll(cfg)
    assert summary.remapped == 5 and summary.outcomes == {Outcome.UNKNOWN_SENDER: 1}
    rows = recorded(cfg)
    assert len(rows) == 6
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert len(store.known_uidvalidities("INBOX")) == 1


def test_163_login_needs_id_before_select(netease_imap, tmp_path: Path) -> None:
    """Through a 163-like server, login without ID fails with a clear error; with ID it polls."""
    netease_imap.append(plain_mail(1), on_time())
    with pytest.raises(MailboxError, match="Unsafe Login"):
        poll(config_for(netease_imap, tmp_path / "a", imap_id=False))
    summary = poll(config_for(netease_imap, tmp_path / "b", imap_id=True), dry_run=True)
    assert summary.new == 1


def test_broken_message_is_retried_then_recorded_as_error(imap_account, tmp_path: Path) -> None:
    """A message that fails three polls in a row is recorded as error; the others are processed meanwhile."""
    good, bad = plain_mail(1), plain_mail(2)
    imap_account.append(good, on_time())
    imap_account.append(bad, on_time())
    cfg = config_for(imap_account, tmp_path)
    from intake.archive import sha256

    assert sha256(good)[:2] != sha256(bad)[:2]
    blocker = cfg.paths.data_dir / "archive" / sha256(bad)[:2]
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the archive needs a folder")  # the archive write fails for this message
    outcomes = []
    for _ in range(3):
        s = poll(cfg)
        outcomes.append(dict(s.outcomes))
    rows = dict(recorded(cfg))
    assert sorted(rows.values()) == [Outcome.ERROR, Outcome.UNKNOWN_SENDER]
    assert outcomes[0] == {Outcome.UNKNOWN_SENDER: 1} and outcomes[1] == {}
    assert outcomes[2] == {Outcome.ERROR: 1}
    assert poll(cfg).new == 0


def test_idle_poll_leaves_ledger_alone_until_something_changes(imap_account, tmp_path: Path) -> None:
    """ledger.xlsx and digest.html are rewritten (new file, atomic swap) only when what they show changed:
    a new message, a missing file, a config change; the digest also at the first poll of each hour."""
    cfg = config_for(imap_account, tmp_path)
    ledger, digest = cfg.paths.data_dir / "ledger.xlsx", cfg.paths.data_dir / "digest.html"
    imap_account.append_many((plain_mail(i), on_time(2, 9, i)) for i in range(3))
    now = [on_time(5, 10, 5)]
    clock = lambda: now[0]  # noqa: E731

    def written() -> tuple[int, int]:
        return ledger.stat().st_ino, digest.stat().st_ino

    poll(cfg, clock=clock)
    first = written()
    now[0] += timedelta(minutes=10)
    assert poll(cfg, clock=clock).new == 0
    assert written() == first, "an idle poll in the same hour rewrote the ledger"

    imap_account.append(plain_mail(3), on_time(5, 10, 20))
    poll(cfg, clock=clock)
    after_mail = written()
    assert after_mail[0] != first[0] and after_mail[1] != first[1]
    rows = list(openpyxl.load_workbook(ledger, read_only=True)["来件登记"].iter_rows(values_only=True))
    assert len(rows) == 1 + 4

    now[0] += timedelta(hours=1)
    poll(cfg, clock=clock)
    assert written()[1] != after_mail[1], "the digest's countdown was not refreshed in a new hour"

    ledger.unlink()
    poll(cfg, clock=clock)
    assert ledger.is_file()

    before = written()
    changed = dataclasses.replace(cfg, campaign=dataclasses.replace(cfg.campaign, name="另一个征集"))
    poll(changed, clock=clock)
    assert written()[0] != before[0], "a config change did not rewrite the ledger"
