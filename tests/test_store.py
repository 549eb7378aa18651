"""The store's schema: migrations applied in order, and the revision that tells an idle poll nothing changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support import SENDERS, on_time

from intake.models import Outcome, ReplyKind, ReplyState
from intake.store import MIGRATIONS, NewMessage, Store, _statements


def new_message(uid: int) -> NewMessage:
    return NewMessage(folder="INBOX", uidvalidity=1, uid=uid, message_id=f"<m{uid}@test>",
                      raw_sha256=f"{uid:064x}", raw_path=f"raw/{uid}.eml", size=100, sender=SENDERS["云龙区"],
                      sender_name="", district="云龙区", subject=f"材料 {uid}", arrival=on_time(),
                      outcome=Outcome.PROCESSED)


def record(store: Store, uid: int) -> int:
    with store.transaction():
        db_id = store.insert_message(new_message(uid))
        store.insert_reply(db_id, ReplyKind.RECEIPT, SENDERS["云龙区"], f"<r{uid}@test>", b"raw")
    return db_id


def test_fresh_database_has_every_migration(tmp_path: Path) -> None:
    with Store(tmp_path / "intake.db") as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.revision() == 0


def test_revision_grows_with_every_change_the_ledger_shows(tmp_path: Path) -> None:
    """Recording a message, a reply's state, a remap and the mailbox flag each bump it; polls and meta do not."""
    with Store(tmp_path / "intake.db") as store:
        seen = [store.revision()]

        def bumped() -> bool:
            seen.append(store.revision())
            return seen[-1] > seen[-2]

        db_id = record(store, 1)
        assert bumped()
        outbox_id = store.outbox([ReplyState.QUEUED])[0].id
        store.set_reply_state(outbox_id, ReplyState.SENT)
        assert bumped()
        store.remap(db_id, 2, 7)
        assert bumped()
        store.mark_mailbox_done([db_id])
        assert bumped()
        store.finish_poll(store.start_poll(dry_run=False), True, {})
        store.set_meta("outputs_written", "x")
        assert not bumped()


def test_a_version_1_database_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    """A database written before migration 2 opens, gains the revision, and counts changes from then on."""
    path = tmp_path / "intake.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.close()
    with Store(path) as store:
        record(store, 1)  # written by the new code, but the schema came from version 1
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.message_count() == 1 and store.revision() > 0


def test_migration_statements_keep_trigger_bodies_whole() -> None:
    script = """
    CREATE TABLE t (x INTEGER);
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET x = x + 1; SELECT 1; END;
    """
    statements = list(_statements(script))
    assert len(statements) == 2 and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        list(_statements("CREATE TABLE u (x INTEGER)"))
