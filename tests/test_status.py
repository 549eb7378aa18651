"""``intake status`` (intake/status.py): exit codes for a fresh, healthy and stale database, and its lines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import DEADLINE, SENDERS, make_config, on_time

from intake.config import Config
from intake.models import Outcome, ReplyKind, ReplyState
from intake.status import ATTENTION, HEALTHY, NEVER, STALE, status
from intake.store import NewMessage, Store


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    return make_config(tmp_path / "var")


@pytest.fixture
def store(cfg: Config) -> Iterator[Store]:
    with Store(cfg.paths.data_dir / "intake.db") as s:
        yield s


def finished_poll(store: Store, ok: bool = True, error: str | None = None) -> datetime:
    """Record a poll as the worker does; return when it finished."""
    poll = store.start_poll(dry_run=False)
    store.finish_poll(poll, ok, {"new": 2, "sent": 1}, error)
    row = store.last_poll(ok_only=False)
    return datetime.fromisoformat(row["finished_at"])


def record(store: Store, uid: int, outcome: Outcome = Outcome.PROCESSED, reply: bool = True) -> int:
    district = "云龙区"
    m = NewMessage(folder="INBOX", uidvalidity=1, uid=uid, message_id=f"<m{uid}@test>",
                   raw_sha256=f"{uid:064x}", raw_path=f"raw/{uid}.eml", size=100, sender=SENDERS[district],
                   sender_name="",
                   district=district, subject=f"材料 {uid}", arrival=on_time(), outcome=outcome)
    with store.transaction():
        db_id = store.insert_message(m)
        if reply:
            store.insert_reply(db_id, ReplyKind.RECEIPT, m.sender, f"<r{uid}@test>", b"raw")
    return db_id


def test_fresh_database_exits_never(cfg: Config, store: Store) -> None:
    """No poll has ever finished: exit 6 and says so."""
    report = status(cfg, store, datetime.now(UTC))
    assert report.exit_code == NEVER == 6
    assert "last successful poll: never" in report.lines


def test_a_poll_just_finished_is_healthy(cfg: Config, store: Store) -> None:
    """A successful poll a moment ago: exit 0, with when it finished and how long it took."""
    finished_poll(store)
    report = status(cfg, store, datetime.now(UTC))
    assert report.exit_code == HEALTHY == 0
    [line] = [x for x in report.lines if x.startswith("last successful poll:")]
    assert " took " in line and "STALE" not in line
    assert "last poll: new 2, replies sent 1" in report.lines


def test_a_poll_more_than_three_intervals_ago_is_stale(cfg: Config, store: Store) -> None:
    """Three intervals (15 min at 5 min) is still healthy; a minute more exits 5."""
    finished = finished_poll(store)
    limit = timedelta(minutes=3 * cfg.schedule.interval_minutes)
    assert status(cfg, store, finished + limit).exit_code == HEALTHY
    report = status(cfg, store, finished + limit + timedelta(minutes=1))
    assert report.exit_code == STALE == 5
    assert any("STALE" in line for line in report.lines)


def test_a_failed_poll_does_not_count_as_success(cfg: Config, store: Store) -> None:
    """Only successful polls keep the worker healthy; the last failure is shown with its reason."""
    finished_poll(store, ok=False, error="cannot connect to IMAP")
    report = status(cfg, store, datetime.now(UTC))
    assert report.exit_code == NEVER
    assert "last poll FAILED: cannot connect to IMAP" in report.lines


def test_lines_show_messages_projects_replies(cfg: Config, store: Store) -> None:
    """Messages by outcome, each district's status counts, queued and failed replies with the answer."""
    record(store, 1)
    failed = record(store, 2)
    record(store, 3, Outcome.UNKNOWN_SENDER, reply=False)
    [item] = [o for o in store.outbox([ReplyState.QUEUED]) if o.message_db_id == failed]
    store.set_reply_state(item.id, ReplyState.FAILED, error="550 Mailbox not found")
    finished_poll(store)
    lines = status(cfg, store, datetime.now(UTC)).lines
    assert "messages: processed 2, unknown_sender 1" in lines
    assert "projects: 0" in lines
    for district in SENDERS:
        assert f"  {district}: 0 (受理 0, 待补正 0, 待审核 0, 不予受理 0)" in lines
    [replies] = [x for x in lines if x.startswith("replies:")]
    assert "queued 1" in replies and "failed 1" in replies and "sent 0" in replies
    assert any("failed receipt to UID 2" in x and "550 Mailbox not found" in x for x in lines)


def test_time_left_to_the_deadline(cfg: Config, store: Store) -> None:
    """Before the deadline the time left is shown; after it, that it passed."""
    lines = status(cfg, store, DEADLINE - timedelta(hours=2, minutes=30)).lines
    assert "deadline: 2024-11-08 23:59:59 (2 h 30 min left)" in lines
    lines = status(cfg, store, DEADLINE + timedelta(seconds=1)).lines
    assert "deadline: 2024-11-08 23:59:59 (passed)" in lines


def test_what_needs_a_person_is_listed_with_since_when_and_exits_7(cfg: Config, store: Store) -> None:
    """A message recorded as error, an unknown sender and a step failing for over an hour make status list each
    with since when and exit ATTENTION; a step failing for minutes is shown but is not yet a person's job."""
    finished_poll(store)
    now = datetime.now(UTC)
    assert status(cfg, store, now).exit_code == HEALTHY
    store.step_failed("send", "SMTPServerDisconnected: gone", now - timedelta(minutes=10))
    report = status(cfg, store, now)
    assert report.exit_code == HEALTHY
    assert any(x.startswith("step send FAILING since") and "gone" in x for x in report.lines)

    record(store, 1, Outcome.ERROR, reply=False)
    record(store, 2, Outcome.UNKNOWN_SENDER, reply=False)
    store.step_failed("mailbox_actions:INBOX", "MailboxError: refused", now - timedelta(hours=2))
    report = status(cfg, store, now)
    assert report.exit_code == ATTENTION
    assert "NEEDS A PERSON: 3 item(s)" in report.lines
    local = (now - timedelta(hours=2)).astimezone(cfg.campaign.tz)
    assert f"  poll step failing since {local:%Y-%m-%d %H:%M:%S}: mailbox_actions:INBOX (1 polls):" \
           " MailboxError: refused" in report.lines
    assert any(x.startswith("  message recorded as error since") and "UID 1" in x for x in report.lines)
    assert any(x.startswith("  unknown sender since") and "UID 2" in x for x in report.lines)


def test_a_stale_worker_stays_stale_whatever_else_needs_a_person(cfg: Config, store: Store) -> None:
    """Exit code 5 (stale) wins over 7 (attention): polling itself has stopped."""
    finished_poll(store)
    record(store, 1, Outcome.ERROR, reply=False)
    later = datetime.now(UTC) + timedelta(minutes=3 * cfg.schedule.interval_minutes + 1)
    assert status(cfg, store, later).exit_code == STALE


def test_a_notice_refused_for_good_needs_a_person(cfg: Config, store: Store) -> None:
    """A 结果通知 (or 状态变更通知, re-send) refused for good is listed like a refused receipt and exits
    ATTENTION; one still queued is not."""
    finished_poll(store)
    now = datetime.now(UTC)
    with store.transaction():
        store.insert_notice("final:云龙区", ReplyKind.FINAL, SENDERS["云龙区"], "<n1@test>", b"raw", district="云龙区")
        store.insert_notice("final:鼓楼区", ReplyKind.FINAL, SENDERS["鼓楼区"], "<n2@test>", b"raw", district="鼓楼区")
    assert status(cfg, store, now).exit_code == HEALTHY
    first = store.notices([ReplyState.QUEUED])[0]
    store.set_reply_state(first.id, ReplyState.FAILED, error="554 DT:SPM", queue="notices")
    report = status(cfg, store, now)
    assert report.exit_code == ATTENTION
    assert "NEEDS A PERSON: 1 item(s)" in report.lines
    assert any(x.startswith("  notice refused for good since") and "云龙区" in x and "554 DT:SPM" in x
               for x in report.lines)
