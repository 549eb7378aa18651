"""The system of record: SQLite holding messages, attachments, findings, replies and polls.

Schema changes are numbered migrations applied at open (``PRAGMA
user_version``). A message is recorded in one transaction together with the
reply it is owed, so a crash before the commit means the next poll does the
message again and a crash after it means nothing is done twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intake.models import (
    Code,
    Decision,
    FinalResult,
    Finding,
    NewMessage,
    Outcome,
    ReplyInfo,
    ReplyKind,
    ReplyState,
    Status,
    StoredAttachment,
    StoredMessage,
)
from intake.models import (
    NewAttachment as NewAttachment,  # re-exported: recorded types live in intake.models
)

# Every change the ledger shows bumps meta 'revision'. Attachments and findings are only ever inserted with
# their message (whose insert bumps it); updates to them are counted all the same.
_REVISION_TRIGGERS = "".join(
    f"CREATE TRIGGER {table}_{event.lower()} AFTER {event} ON {table} BEGIN"
    " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'; END;\n"
    for table, events in (
        ("messages", ("INSERT", "UPDATE", "DELETE")),
        ("attachments", ("UPDATE",)),
        ("findings", ("UPDATE",)),
        ("outbox", ("INSERT", "UPDATE")),
    )
    for event in events
)

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        message_id TEXT,
        raw_sha256 TEXT NOT NULL,
        raw_path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sender TEXT NOT NULL,
        sender_name TEXT NOT NULL DEFAULT '',
        district TEXT,
        subject TEXT NOT NULL DEFAULT '',
        internaldate TEXT NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        auto_reasons TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL DEFAULT 'imap',
        recorded_at TEXT NOT NULL,
        mailbox_done INTEGER NOT NULL DEFAULT 0,
        UNIQUE (folder, uidvalidity, uid)
    );
    CREATE INDEX messages_message_id ON messages (message_id);
    CREATE INDEX messages_raw_sha256 ON messages (raw_sha256);
    CREATE INDEX messages_pending ON messages (mailbox_done) WHERE mailbox_done = 0;
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id),
        position INTEGER NOT NULL,
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        sniffed TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        path TEXT NOT NULL,
        container TEXT,
        kind TEXT NOT NULL,
        parsed TEXT,
        error_code TEXT,
        error_reason TEXT
    );
    CREATE INDEX attachments_message ON attachments (message_id);
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages (id),
        code TEXT NOT NULL,
        text TEXT NOT NULL,
        file TEXT
    );
    CREATE INDEX findings_message ON findings (message_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL UNIQUE REFERENCES messages (id),
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        to_addr TEXT NOT NULL,
        reply_message_id TEXT NOT NULL,
        rfc822 BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE TABLE failures (
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        PRIMARY KEY (folder, uidvalidity, uid)
    );
    CREATE TABLE polls (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        ok INTEGER NOT NULL DEFAULT 0,
        dry_run INTEGER NOT NULL DEFAULT 0,
        summary TEXT,
        error TEXT
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: a revision number that every change to what the ledger shows bumps (so an idle poll can tell
    # that ledger.xlsx is current without rebuilding it), and the outbox looked up by state cheaply
    """
    INSERT OR IGNORE INTO meta VALUES ('revision', '0');
    """
    + _REVISION_TRIGGERS
    + """
    CREATE INDEX outbox_state ON outbox (state);
    """,
    # 状态变更通知 (spec 10.6): mail to a district that answers no single message (the ``notices`` table as
    # the staff-control branch defines it, IF NOT EXISTS so either may come first), and the last message
    # whose status changes were checked; an existing database starts after its last message
    """
    CREATE TABLE IF NOT EXISTS notices (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        district TEXT,
        message_id INTEGER REFERENCES messages (id),
        state TEXT NOT NULL,
        to_addr TEXT NOT NULL,
        reply_message_id TEXT NOT NULL,
        rfc822 BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX IF NOT EXISTS notices_state ON notices (state);
    INSERT OR IGNORE INTO meta VALUES ('updates_checked_through', (SELECT COALESCE(MAX(id), 0) FROM messages));
    """
    + "".join(
        f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_revision AFTER {event} ON {table} BEGIN"
        " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'; END;\n"
        for table, event in (("notices", "INSERT"), ("notices", "UPDATE"))
    ),
    # poll stages: a step's failure since when (status, alerts); replies owed but not rendered yet (a render
    # that fails is tried again each poll, the message stays recorded); alerts mailed to staff (one per item);
    # when a reply was refused for good
    """
    CREATE TABLE step_failures (
        step TEXT PRIMARY KEY,
        since TEXT NOT NULL,
        last_at TEXT NOT NULL,
        failures INTEGER NOT NULL,
        last_error TEXT NOT NULL
    );
    CREATE TABLE reply_due (
        message_id INTEGER PRIMARY KEY REFERENCES messages (id),
        kind TEXT NOT NULL,
        since TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE TABLE alerts_sent (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    );
    ALTER TABLE outbox ADD COLUMN failed_at TEXT;
    """
    + "".join(
        f"CREATE TRIGGER reply_due_{event.lower()} AFTER {event} ON reply_due BEGIN"
        " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'; END;\n"
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
    # staff decisions (spec 10.4), keyed by 受理编号 and never by a message, so rebuilding the ledger or
    # processing mail again keeps them; the last decision whose 状态变更通知 was queued; the close-out's
    # final list (spec 10.5), one row at most
    """
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        number TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        decided_by TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        auto_status TEXT,
        material_at TEXT,
        source TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX decisions_number ON decisions (number);
    CREATE TABLE closeout (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        closed_at TEXT NOT NULL,
        forced INTEGER NOT NULL,
        results TEXT NOT NULL
    );
    INSERT OR IGNORE INTO meta VALUES ('decisions_notified_through', '0');
    """
    + "".join(
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON {table} BEGIN"
        " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'; END;\n"
        for table in ("decisions", "closeout")
    ),
]


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    message_db_id: int
    kind: ReplyKind
    state: ReplyState
    to_addr: str
    reply_message_id: str
    rfc822: bytes
    attempts: int
    next_attempt_at: datetime | None
    queue: str = "outbox"  # or "notices": the table ``set_reply_state`` stamps
    district: str | None = None  # whose reply it is (replies are sent round-robin by district)


@dataclass(frozen=True)
class NewNotice:
    """A notice to a district ready to be queued: ``key`` makes queueing it twice a no-op."""

    key: str
    kind: ReplyKind
    district: str
    to_addr: str
    reply_message_id: str
    rfc822: bytes


@dataclass(frozen=True)
class NewDecision:
    """A staff decision ready to be kept: the project's 自动判定 and 来件时间 as staff saw them."""

    number: str
    status: Status
    reason: str
    auto_status: Status | None
    material_at: datetime | None


@dataclass(frozen=True)
class Closeout:
    """The close-out as kept: when, whether forced, and the final list."""

    closed_at: datetime
    forced: bool
    results: list[FinalResult]


@dataclass(frozen=True)
class ReplyDue:
    """A reply owed to a recorded message and not rendered yet (``attempts`` renders failed so far)."""

    message_db_id: int
    kind: ReplyKind
    since: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class StepFailure:
    """A poll step failing since ``since`` (cleared by its next success)."""

    step: str
    since: datetime
    last_at: datetime
    failures: int
    last_error: str


@dataclass(frozen=True)
class PendingMailboxAction:
    message_db_id: int
    folder: str
    uidvalidity: int
    uid: int
    outcome: Outcome


class Store:
    """The SQLite database under the data directory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------
    def _migrate(self) -> None:
        """Apply each missing migration in its own write transaction, reading ``user_version`` inside it:
        of two processes upgrading at once, the second waits for the lock and then sees the new version."""
        while True:
            with self.transaction():
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version >= len(MIGRATIONS):
                    return
                for statement in _statements(MIGRATIONS[version]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version + 1}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- what is known ----------------------------------------------------
    def known_uids(self, folder: str, uidvalidity: int, uids: Sequence[int]) -> set[int]:
        """The subset of ``uids`` already recorded for this folder and UIDVALIDITY."""
        known: set[int] = set()
        for start in range(0, len(uids), 500):
            chunk = list(uids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT uid FROM messages WHERE folder = ? AND uidvalidity = ? AND uid IN ({marks})",
                (folder, uidvalidity, *chunk),
            )
            known.update(r[0] for r in rows)
        return known

    def search_start(self, folder: str, uidvalidity: int) -> int:
        """The lowest UID that may still need work: after the highest recorded, or a retried failure."""
        top = self.db.execute(
            "SELECT COALESCE(MAX(uid), 0) FROM messages WHERE folder = ? AND uidvalidity = ?",
            (folder, uidvalidity),
        ).fetchone()[0]
        retry = self.db.execute(
            "SELECT MIN(uid) FROM failures WHERE folder = ? AND uidvalidity = ?", (folder, uidvalidity)
        ).fetchone()[0]
        return min(top + 1, retry) if retry else top + 1

    def known_uidvalidities(self, folder: str) -> set[int]:
        rows = self.db.execute("SELECT DISTINCT uidvalidity FROM messages WHERE folder = ?", (folder,))
        return {r[0] for r in rows}

    def find_earlier(self, message_id: str | None, raw_sha256: str) -> sqlite3.Row | None:
        """An earlier record of the same message: by Message-ID, else by the raw bytes' hash."""
        if message_id:
            sql, arg = "SELECT * FROM messages WHERE message_id = ? ORDER BY id LIMIT 1", message_id
        else:
            sql, arg = "SELECT * FROM messages WHERE raw_sha256 = ? ORDER BY id LIMIT 1", raw_sha256
        return self.db.execute(sql, (arg,)).fetchone()

    def remap(self, message_db_id: int, uidvalidity: int, uid: int) -> None:
        """Point an existing record at its new UID after the server changed UIDVALIDITY."""
        with self.transaction():
            self.db.execute(
                "UPDATE messages SET uidvalidity = ?, uid = ? WHERE id = ?", (uidvalidity, uid, message_db_id)
            )

    # -- failures ---------------------------------------------------------
    def note_failure(self, folder: str, uidvalidity: int, uid: int, error: str) -> int:
        """Count a failed attempt at a message; return how many in a row."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO failures VALUES (?, ?, ?, 1, ?) ON CONFLICT (folder, uidvalidity, uid) "
                "DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error",
                (folder, uidvalidity, uid, error),
            )
        row = self.db.execute(
            "SELECT attempts FROM failures WHERE folder = ? AND uidvalidity = ? AND uid = ?",
            (folder, uidvalidity, uid),
        ).fetchone()
        return int(row[0])

    # -- recording --------------------------------------------------------
    def insert_message(self, m: NewMessage) -> int:
        """Insert a message with its attachments and findings; call inside ``transaction()``."""
        cur = self.db.execute(
            "INSERT INTO messages (folder, uidvalidity, uid, message_id, raw_sha256, raw_path, size, sender,"
            " sender_name, district, subject, internaldate, outcome, error, auto_reasons, source, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                m.folder, m.uidvalidity, m.uid, m.message_id, m.raw_sha256, m.raw_path, m.size, m.sender,
                m.sender_name, m.district, m.subject, _iso(m.arrival), m.outcome.value, m.error,
                json.dumps(list(m.auto_reasons)), m.source, _iso(now_utc()),
            ),
        )
        db_id = int(cur.lastrowid or 0)
        self._insert_details(db_id, m)
        self.db.execute(
            "DELETE FROM failures WHERE folder = ? AND uidvalidity = ? AND uid = ?",
            (m.folder, m.uidvalidity, m.uid),
        )
        return db_id

    def _insert_details(self, db_id: int, m: NewMessage) -> None:
        """A message's attachments and findings."""
        self.db.executemany(
            "INSERT INTO attachments (message_id, position, filename, content_type, sniffed, sha256, size,"
            " path, container, kind, parsed, error_code, error_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    db_id, i, a.filename, a.content_type, a.sniffed, a.sha256, a.size, a.path, a.container,
                    a.kind, json.dumps(a.parsed, ensure_ascii=False) if a.parsed is not None else None,
                    a.error_code, a.error_reason,
                )
                for i, a in enumerate(m.attachments)
            ],
        )
        self.db.executemany(
            "INSERT INTO findings (message_id, code, text, file) VALUES (?, ?, ?, ?)",
            [(db_id, f.code.value, f.message, f.file) for f in m.findings],
        )

    def insert_reply(
        self, message_db_id: int, kind: ReplyKind, to_addr: str, reply_message_id: str, rfc822: bytes,
        state: ReplyState = ReplyState.QUEUED,
    ) -> None:
        """Queue a reply; call inside the same ``transaction()`` as its message."""
        self.db.execute(
            "INSERT INTO outbox (message_id, kind, state, to_addr, reply_message_id, rfc822, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message_db_id, kind.value, state.value, to_addr, reply_message_id, rfc822, _iso(now_utc())),
        )

    # -- reading back -----------------------------------------------------
    def messages(self, ids: Iterable[int] | None = None) -> list[StoredMessage]:
        """Stored messages in processing (= UID) order, with attachments and findings."""
        where, args = "", ()
        if ids is not None:
            id_list = list(ids)
            where, args = f"WHERE id IN ({','.join('?' * len(id_list))})", tuple(id_list)
        rows = self.db.execute(f"SELECT * FROM messages {where} ORDER BY id", args).fetchall()
        attachments: dict[int, list[StoredAttachment]] = {}
        findings: dict[int, list[Finding]] = {}
        for a in self.db.execute(f"SELECT * FROM attachments {where.replace('id IN', 'message_id IN')}"
                                 " ORDER BY message_id, position", args):
            attachments.setdefault(a["message_id"], []).append(_attachment(a))
        for f in self.db.execute(f"SELECT * FROM findings {where.replace('id IN', 'message_id IN')}"
                                 " ORDER BY id", args):
            findings.setdefault(f["message_id"], []).append(Finding(Code(f["code"]), f["text"], f["file"]))
        return [
            StoredMessage(
                id=r["id"], uid=r["uid"], message_id=r["message_id"], sender=r["sender"],
                district=r["district"], subject=r["subject"], arrival=datetime.fromisoformat(r["internaldate"]),
                outcome=Outcome(r["outcome"]), findings=tuple(findings.get(r["id"], ())),
                attachments=tuple(attachments.get(r["id"], ())), error=r["error"],
            )
            for r in rows
        ]

    def message_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def outcome_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT outcome, COUNT(*) FROM messages GROUP BY outcome")
        return {r[0]: r[1] for r in rows}

    # -- replies ----------------------------------------------------------
    def replies(self) -> dict[int, ReplyInfo]:
        """The reply owed to each message: queued, sent, failed …, or not rendered yet (``render_failed``
        once a render failed, ``queued`` before the first try)."""
        rows = self.db.execute("SELECT message_id, kind, state, sent_at, last_error FROM outbox")
        out = {r[0]: ReplyInfo(r[0], ReplyKind(r[1]), ReplyState(r[2]), _dt(r[3]), r[4]) for r in rows}
        for due in self.replies_due():
            state = ReplyState.RENDER_FAILED if due.attempts else ReplyState.QUEUED
            out[due.message_db_id] = ReplyInfo(due.message_db_id, due.kind, state, None, due.last_error)
        return out

    def outbox(self, states: Sequence[ReplyState]) -> list[OutboxItem]:
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT o.*, m.district AS district FROM outbox o LEFT JOIN messages m ON m.id = o.message_id"
            f" WHERE o.state IN ({marks}) ORDER BY o.id", [s.value for s in states]
        )
        return [
            OutboxItem(
                r["id"], r["message_id"], ReplyKind(r["kind"]), ReplyState(r["state"]), r["to_addr"],
                r["reply_message_id"], r["rfc822"], r["attempts"], _dt(r["next_attempt_at"]),
                district=r["district"],
            )
            for r in rows
        ]

    def set_reply_state(
        self, outbox_id: int, state: ReplyState, *, error: str | None = None,
        next_attempt_at: datetime | None = None, count_attempt: bool = False, queue: str = "outbox",
    ) -> None:
        table = _QUEUES[queue]
        with self.transaction():
            failed = ", failed_at = CASE WHEN ? = 'failed' THEN ? ELSE failed_at END" if table == "outbox" else ""
            self.db.execute(
                f"UPDATE {table} SET state = ?, last_error = COALESCE(?, last_error), next_attempt_at = ?,"
                f" attempts = attempts + ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END{failed}"
                " WHERE id = ?",
                (state.value, error, _iso(next_attempt_at), int(count_attempt), state.value, _iso(now_utc()),
                 *((state.value, _iso(now_utc())) if failed else ()), outbox_id),
            )

    def replace_reply_note(self, outbox_id: int, expected: str, note: str | None, queue: str = "outbox") -> None:
        """Put ``note`` (``None``: no note) in place of the reply's note ``expected``, and only of that one."""
        with self.transaction():
            self.db.execute(f"UPDATE {_QUEUES[queue]} SET last_error = ? WHERE id = ? AND last_error = ?",
                            (note, outbox_id, expected))

    def replies_sent_since(self, since: datetime) -> dict[str, int]:
        """Per recipient (lower case), the replies and notices sent since ``since`` plus those whose sending is
        under way or of unknown outcome (they may have arrived): what the daily limit per address counts."""
        counts: dict[str, int] = {}
        for table in _QUEUES.values():
            rows = self.db.execute(
                f"SELECT LOWER(to_addr), COUNT(*) FROM {table} WHERE (state = 'sent' AND sent_at >= ?)"
                " OR state IN ('sending', 'unknown') GROUP BY LOWER(to_addr)", (_iso(since.astimezone(UTC)),))
            for addr, n in rows:
                counts[addr] = counts.get(addr, 0) + n
        return counts

    def reply_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {r[0]: r[1] for r in rows}

    def next_import_uid(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(uid), 0) + 1 FROM messages WHERE folder = 'import'").fetchone()
        return int(row[0])

    # -- mailbox actions --------------------------------------------------
    def pending_mailbox_actions(self, folder: str, uidvalidity: int) -> list[PendingMailboxAction]:
        rows = self.db.execute(
            # The partial index holds only the few pending rows; left to itself SQLite picks the
            # (folder, uidvalidity, uid) index for the ORDER BY and reads every message of the folder.
            "SELECT id, folder, uidvalidity, uid, outcome FROM messages INDEXED BY messages_pending"
            " WHERE mailbox_done = 0"
            " AND folder = ? AND uidvalidity = ? AND source = 'imap' ORDER BY uid",
            (folder, uidvalidity),
        )
        return [PendingMailboxAction(r[0], r[1], r[2], r[3], Outcome(r[4])) for r in rows]

    def mark_mailbox_done(self, message_db_ids: Sequence[int]) -> None:
        with self.transaction():
            self.db.executemany("UPDATE messages SET mailbox_done = 1 WHERE id = ?", [(i,) for i in message_db_ids])

    # -- polls ------------------------------------------------------------
    def start_poll(self, dry_run: bool) -> int:
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO polls (started_at, dry_run) VALUES (?, ?)", (_iso(now_utc()), int(dry_run))
            )
        return int(cur.lastrowid or 0)

    def finish_poll(self, poll_id: int, ok: bool, summary: dict[str, Any], error: str | None = None) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE polls SET finished_at = ?, ok = ?, summary = ?, error = ? WHERE id = ?",
                (_iso(now_utc()), int(ok), json.dumps(summary, ensure_ascii=False), error, poll_id),
            )

    def last_poll(self, ok_only: bool = True) -> sqlite3.Row | None:
        sql = "SELECT * FROM polls WHERE finished_at IS NOT NULL"
        if ok_only:
            sql += " AND ok = 1"
        return self.db.execute(sql + " ORDER BY id DESC LIMIT 1").fetchone()

    def revision(self) -> int:
        """A number that grows with every change to messages, their files and findings, or replies."""
        return int(self.get_meta("revision") or 0)

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


    # -- poll stages (steps, replies owed, attempts, alerts) -----------------
    def note_attempt(self, folder: str, uidvalidity: int, uid: int) -> int:
        """Count an attempt at a message before reading it (a kill mid-parse still counts); return the count."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO failures VALUES (?, ?, ?, 1, ?) ON CONFLICT (folder, uidvalidity, uid) "
                "DO UPDATE SET attempts = attempts + 1",
                (folder, uidvalidity, uid, INTERRUPTED),
            )
        return self.attempts(folder, uidvalidity, uid)[0]

    def attempts(self, folder: str, uidvalidity: int, uid: int) -> tuple[int, str]:
        """Attempts at a message without a recorded outcome so far, and the last reason."""
        row = self.db.execute(
            "SELECT attempts, last_error FROM failures WHERE folder = ? AND uidvalidity = ? AND uid = ?",
            (folder, uidvalidity, uid),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, "")

    def note_missing(self, folder: str, uidvalidity: int, uid: int, reason: str) -> None:
        """Remember a UID the server did not answer for (no attempt counted), so the next poll asks again."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO failures VALUES (?, ?, ?, 0, ?) ON CONFLICT (folder, uidvalidity, uid) "
                "DO UPDATE SET last_error = excluded.last_error",
                (folder, uidvalidity, uid, reason),
            )

    def note_attempt_error(self, folder: str, uidvalidity: int, uid: int, error: str) -> None:
        """Why the attempt counted by ``note_attempt`` failed."""
        with self.transaction():
            self.db.execute(
                "UPDATE failures SET last_error = ? WHERE folder = ? AND uidvalidity = ? AND uid = ?",
                (error, folder, uidvalidity, uid),
            )

    def step_failed(self, step: str, error: str, now: datetime) -> datetime:
        """Record a failing poll step; returns since when it has been failing."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO step_failures VALUES (?, ?, ?, 1, ?) ON CONFLICT (step) DO UPDATE SET"
                " last_at = excluded.last_at, failures = failures + 1, last_error = excluded.last_error",
                (step, _iso(now), _iso(now), error),
            )
        row = self.db.execute("SELECT since FROM step_failures WHERE step = ?", (step,)).fetchone()
        return datetime.fromisoformat(row[0])

    def step_ok(self, step: str) -> None:
        if self.db.execute("SELECT 1 FROM step_failures WHERE step = ?", (step,)).fetchone():
            with self.transaction():
                self.db.execute("DELETE FROM step_failures WHERE step = ?", (step,))

    def step_failures(self) -> list[StepFailure]:
        rows = self.db.execute("SELECT * FROM step_failures ORDER BY since, step")
        return [StepFailure(r["step"], datetime.fromisoformat(r["since"]), datetime.fromisoformat(r["last_at"]),
                            r["failures"], r["last_error"]) for r in rows]

    def insert_reply_due(self, message_db_id: int, kind: ReplyKind) -> None:
        """Note that a message is owed a reply; call inside the message's ``transaction()``."""
        self.db.execute("INSERT INTO reply_due (message_id, kind, since) VALUES (?, ?, ?)",
                        (message_db_id, kind.value, _iso(now_utc())))

    def replies_due(self) -> list[ReplyDue]:
        rows = self.db.execute("SELECT * FROM reply_due ORDER BY message_id")
        return [ReplyDue(r["message_id"], ReplyKind(r["kind"]), datetime.fromisoformat(r["since"]), r["attempts"],
                         r["last_error"]) for r in rows]

    def queue_rendered_reply(
        self, message_db_id: int, kind: ReplyKind, to_addr: str, reply_message_id: str, rfc822: bytes
    ) -> None:
        """Move a reply from owed to queued, in one transaction."""
        with self.transaction():
            self.insert_reply(message_db_id, kind, to_addr, reply_message_id, rfc822)
            self.db.execute("DELETE FROM reply_due WHERE message_id = ?", (message_db_id,))

    def reply_render_failed(self, message_db_id: int, error: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE reply_due SET attempts = attempts + 1, last_error = ? WHERE message_id = ?",
                            (error, message_db_id))

    def failed_replies(self) -> list[sqlite3.Row]:
        """Replies refused for good: outbox id, message, recipient, reason, since when."""
        return self.db.execute(
            "SELECT o.id, o.message_id, o.to_addr, o.last_error, COALESCE(o.failed_at, o.created_at) AS since,"
            " m.uid, m.folder FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.state = 'failed'"
            " ORDER BY o.id"
        ).fetchall()

    def failed_notices(self) -> list[sqlite3.Row]:
        """Notices (状态变更通知, 结果通知, staff re-sends) refused for good: id, kind, district, recipient, reason,
        since when it was queued."""
        return self.db.execute(
            "SELECT id, kind, district, to_addr, last_error, created_at AS since FROM notices"
            " WHERE state = 'failed' ORDER BY id"
        ).fetchall()

    def messages_needing_staff(self) -> list[sqlite3.Row]:
        """Messages recorded as ``error`` or from an unknown sender, oldest first."""
        return self.db.execute(
            "SELECT id, folder, uid, sender, subject, outcome, error, recorded_at FROM messages"
            " WHERE outcome IN ('error', 'unknown_sender') ORDER BY id"
        ).fetchall()

    # -- reprocessing (intake reprocess) -----------------------------------------
    def replace_message(self, db_id: int, m: NewMessage) -> None:
        """Replace what was decided about a recorded message (its place, UID, arrival and original stay);
        call inside ``transaction()``."""
        self.db.execute(
            "UPDATE messages SET message_id = ?, sender = ?, sender_name = ?, district = ?, subject = ?,"
            " outcome = ?, error = ?, auto_reasons = ? WHERE id = ?",
            (m.message_id, m.sender, m.sender_name, m.district, m.subject, m.outcome.value, m.error,
             json.dumps(list(m.auto_reasons)), db_id),
        )
        self.db.execute("DELETE FROM attachments WHERE message_id = ?", (db_id,))
        self.db.execute("DELETE FROM findings WHERE message_id = ?", (db_id,))
        self._insert_details(db_id, m)

    def owe_reply(self, db_id: int, kind: ReplyKind | None) -> str:
        """Make the reply a reprocessed message is owed ``kind`` (``None``: none), never a second one; call
        inside ``transaction()``. Returns what became of it: ``owed`` (rendered and sent by the next poll),
        ``none``, or the state of a reply that went out or may have (``sent``, ``unknown`` …), which stays.
        A reply queued and never sent is dropped, to be rendered again from the new results."""
        row = self.db.execute("SELECT state FROM outbox WHERE message_id = ?", (db_id,)).fetchone()
        if row is not None and row[0] != ReplyState.QUEUED:
            return str(row[0])
        self.db.execute("DELETE FROM outbox WHERE message_id = ?", (db_id,))
        self.db.execute("DELETE FROM reply_due WHERE message_id = ?", (db_id,))
        if kind is None:
            return "none"
        self.insert_reply_due(db_id, kind)
        return "owed"

    def message_rows(self, where: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        """Message rows matching a condition written by our code (never by a user), in store order."""
        return self.db.execute(f"SELECT * FROM messages WHERE {where} ORDER BY id", tuple(args)).fetchall()

    def messages_with_code(self, code: str) -> set[int]:
        """The messages carrying a message-level finding ``code``."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT message_id FROM findings WHERE code = ?", (code,))}

    def alerted(self, kind: str) -> tuple[set[str], datetime | None]:
        """The keys of ``kind`` already mailed to staff, and when the last alert of that kind went out."""
        rows = self.db.execute("SELECT key, sent_at FROM alerts_sent WHERE kind = ?", (kind,)).fetchall()
        last = max((datetime.fromisoformat(r[1]) for r in rows), default=None)
        return {r[0] for r in rows}, last

    def mark_alerted(self, items: Iterable[tuple[str, str]], now: datetime) -> None:
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO alerts_sent VALUES (?, ?, ?)",
                                [(kind, key, _iso(now)) for kind, key in items])

    def copy_to(self, path: Path) -> Store:
        """A consistent copy of the database at ``path`` (replaced if present), opened."""
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(path)
        try:
            self.db.backup(target)
        finally:
            target.close()
        return Store(path)


    # -- notices to districts (状态变更通知, spec 10.6) -------------------------------
    def insert_notice(
        self, key: str, kind: ReplyKind, to_addr: str, reply_message_id: str, rfc822: bytes, *,
        district: str | None = None, message_db_id: int | None = None,
    ) -> bool:
        """Queue a notice under ``key``; False (nothing queued) when that key was queued before."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO notices (key, kind, district, message_id, state, to_addr, reply_message_id,"
            " rfc822, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, kind.value, district, message_db_id, ReplyState.QUEUED.value, to_addr, reply_message_id,
             rfc822, _iso(now_utc())),
        )
        return cur.rowcount == 1

    def notices(self, states: Sequence[ReplyState]) -> list[OutboxItem]:
        """Queued notices as outbox items (``queue="notices"``), oldest first."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT * FROM notices WHERE state IN ({marks}) ORDER BY id", [s.value for s in states]
        )
        return [
            OutboxItem(
                r["id"], r["message_id"] or 0, ReplyKind(r["kind"]), ReplyState(r["state"]), r["to_addr"],
                r["reply_message_id"], r["rfc822"], r["attempts"], _dt(r["next_attempt_at"]), "notices",
                r["district"],
            )
            for r in rows
        ]

    def max_message_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])

    def updates_checked_through(self) -> int:
        """The last message (store id) whose status changes to other districts were checked."""
        return int(self.get_meta(UPDATES_KEY) or 0)

    def queue_updates(self, notices: Sequence[NewNotice], through: int, decisions_through: int | None = None) -> int:
        """Queue the 状态变更通知 owed for the messages up to ``through`` (and the staff decisions up to
        ``decisions_through``) and mark them checked, in one transaction (a crash before it leaves the check
        to the next poll, after it nothing to repeat)."""
        with self.transaction():
            queued = sum(self.insert_notice(n.key, n.kind, n.to_addr, n.reply_message_id, n.rfc822,
                                            district=n.district) for n in notices)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (UPDATES_KEY, str(through)))
            if decisions_through is not None:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (DECISIONS_KEY, str(decisions_through)))
        return queued


    # -- staff decisions (spec 10.4) ------------------------------------------------------------
    def insert_decisions(self, decisions: Sequence[NewDecision], by: str, at: datetime, source: str = "") -> None:
        """Keep the decisions, all in one transaction."""
        with self.transaction():
            self.db.executemany(
                "INSERT INTO decisions (number, status, reason, decided_by, decided_at, auto_status, material_at,"
                " source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.number, d.status.value, d.reason, by, _iso(at), d.auto_status.value if d.auto_status else None,
                  _iso(d.material_at), source) for d in decisions],
            )

    def decisions(self) -> list[Decision]:
        """Every decision ever made, oldest first."""
        rows = self.db.execute("SELECT * FROM decisions ORDER BY id")
        return [Decision(r["id"], r["number"], Status(r["status"]), r["reason"], r["decided_by"],
                         datetime.fromisoformat(r["decided_at"]),
                         Status(r["auto_status"]) if r["auto_status"] else None, _dt(r["material_at"]), r["source"])
                for r in rows]

    def decisions_notified_through(self) -> int:
        """The last decision whose status changes were checked for 状态变更通知."""
        return int(self.get_meta(DECISIONS_KEY) or 0)

    # -- close-out (spec 10.5) ----------------------------------------------------------------------
    def closeout(self) -> Closeout | None:
        row = self.db.execute("SELECT * FROM closeout WHERE id = 1").fetchone()
        if row is None:
            return None
        results = [FinalResult(r["number"], r["district"], r["name"], r["applicant"], Status(r["status"]),
                               r["reason"], r.get("code", "")) for r in json.loads(row["results"])]
        return Closeout(datetime.fromisoformat(row["closed_at"]), bool(row["forced"]), results)

    def final_results(self) -> list[FinalResult] | None:
        """The final list once the close-out ran, else None."""
        closed = self.closeout()
        return closed.results if closed else None

    def close_out(self, closed_at: datetime, forced: bool, results: Sequence[FinalResult],
              notices: Sequence[NewNotice]) -> bool:
        """Keep the final list and queue the 结果通知 in one transaction; False (nothing done) if closed before."""
        with self.transaction():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO closeout VALUES (1, ?, ?, ?)",
                (_iso(closed_at), int(forced), json.dumps([r.__dict__ | {"status": r.status.value} for r in results],
                                                          ensure_ascii=False)),
            )
            if cur.rowcount != 1:
                return False
            for n in notices:
                self.insert_notice(n.key, n.kind, n.to_addr, n.reply_message_id, n.rfc822, district=n.district)
        return True

    # -- staff re-sends (spec 10.9) -------------------------------------------------------------------
    def sent_reply(self, message_db_id: int) -> OutboxItem | None:
        """The automatic reply of a message (receipt or late notice), whatever its state."""
        row = self.db.execute("SELECT * FROM outbox WHERE message_id = ?", (message_db_id,)).fetchone()
        if row is None:
            return None
        return OutboxItem(row["id"], row["message_id"], ReplyKind(row["kind"]), ReplyState(row["state"]),
                          row["to_addr"], row["reply_message_id"], row["rfc822"], row["attempts"],
                          _dt(row["next_attempt_at"]))

    def resends(self) -> dict[int, list[ReplyInfo]]:
        """The staff re-sends per message (store id), oldest first."""
        rows = self.db.execute("SELECT message_id, kind, state, sent_at, last_error FROM notices"
                               " WHERE kind = ? AND message_id IS NOT NULL ORDER BY id", (ReplyKind.RESEND.value,))
        out: dict[int, list[ReplyInfo]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(ReplyInfo(r[0], ReplyKind(r[1]), ReplyState(r[2]), _dt(r[3]), r[4]))
        return out

    def queue_resend(self, message_db_id: int, district: str | None, to_addr: str, reply_message_id: str,
                     rfc822: bytes) -> int:
        """Queue a staff re-send of a message's reply as a notice of its own; returns which re-send it is."""
        with self.transaction():
            n = 1 + self.db.execute("SELECT COUNT(*) FROM notices WHERE kind = ? AND message_id = ?",
                                    (ReplyKind.RESEND.value, message_db_id)).fetchone()[0]
            self.insert_notice(f"resend:{message_db_id}:{n}", ReplyKind.RESEND, to_addr, reply_message_id, rfc822,
                               district=district, message_db_id=message_db_id)
        return int(n)

    def notice_counts(self) -> dict[tuple[str, str], int]:
        """Notices to districts (状态变更通知, 结果通知, 补发) by (kind, state)."""
        rows = self.db.execute("SELECT kind, state, COUNT(*) FROM notices GROUP BY kind, state")
        return {(r[0], r[1]): r[2] for r in rows}

    def message_by_uid(self, folder: str, uid: int) -> sqlite3.Row | None:
        """The latest record of ``uid`` in ``folder`` (the current UIDVALIDITY's, when it changed)."""
        return self.db.execute("SELECT * FROM messages WHERE folder = ? AND uid = ? ORDER BY id DESC LIMIT 1",
                               (folder, uid)).fetchone()


_QUEUES = {"outbox": "outbox", "notices": "notices"}  # set_reply_state's table, never a caller's string in SQL
UPDATES_KEY = "updates_checked_through"
DECISIONS_KEY = "decisions_notified_through"


INTERRUPTED = "the process ended while reading this message (killed or crashed)"


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script, one by one (a trigger body's ``;`` does not end it)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:60]}")


def _attachment(a: sqlite3.Row) -> StoredAttachment:
    return StoredAttachment(
        id=a["id"], filename=a["filename"], sha256=a["sha256"], size=a["size"], sniffed=a["sniffed"],
        kind=a["kind"], path=a["path"], parsed=json.loads(a["parsed"]) if a["parsed"] else None,
        error_code=a["error_code"], error_reason=a["error_reason"], container=a["container"],
    )
