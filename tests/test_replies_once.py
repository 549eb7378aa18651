"""Replies never twice, against Dovecot and aiosmtpd: the Sent folder is looked at before every send, an SMTP
answer lost after DATA is settled by it, a lost data directory answers nothing again; replies go round-robin
by district and at most smtp.max_replies_per_sender_per_day to one address; forged district mail is not
trusted under mailbox.require_authenticated."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import SENDERS, make_config, on_time

from intake.compose import compose
from intake.config import Config
from intake.models import Outcome
from intake.status import status
from intake.store import Store
from intake.worker import Worker
from samples.projects import sample_project
from samples.tables import summary_table_xlsx

YUNLONG, GULOU = SENDERS["云龙区"], SENDERS["鼓楼区"]
SENT = "已发送"
STAFF = {"staff": {"report_to": ["staff@example.cn"], "report_hour": 23}}


def config_for(account, tmp_path: Path, smtp, *, smtp_keys: dict | None = None, tables: dict | None = None,
               **mailbox) -> Config:
    return make_config(tmp_path / "var", imap=account.mailbox_settings(**mailbox),
                       smtp={"host": smtp.host, "port": smtp.port, **(smtp_keys or {})}, **(tables or {}))


def poll(cfg: Config, **kw):
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def district_mail(i: int, sender: str = YUNLONG, headers: tuple = (), files: list | None = None) -> bytes:
    return compose(sender=sender, subject=f"申报材料{i}", body="见附件", message_id=f"<d{i}@example.cn>",
                   arrival=on_time(), attachments=files or [], headers=headers)


def receipts(smtp_server) -> list[str]:
    """In-Reply-To of each receipt the SMTP server took, in order."""
    return [str(m.message["In-Reply-To"]) for m in smtp_server.messages
            if m.message["X-Intake-Outcome"] == "receipt"]


def rows(cfg: Config, sql: str) -> list[tuple]:
    with sqlite3.connect(cfg.paths.data_dir / "intake.db") as db:
        return db.execute(sql).fetchall()


def status_lines(cfg: Config, now: datetime | None = None) -> list[str]:
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return status(cfg, store, now or datetime.now(UTC)).lines


# -- an SMTP answer lost after DATA --------------------------------------------------------------------


def test_reply_taken_but_answered_too_late_is_found_in_sent_and_not_sent_again(imap_account, make_smtp_server,
                                                                                 tmp_path: Path) -> None:
    """The server keeps the receipt but answers DATA after the client's timeout: the reply is ``unknown`` (not
    queued again, no copy appended by us); the server's own Sent copy (as 163.com keeps one) settles it as
    sent at the next poll, and nothing is sent a second time."""
    smtp = make_smtp_server()
    smtp.answer_data_late(3.0)
    imap_account.append(district_mail(1), on_time())
    cfg = config_for(imap_account, tmp_path, smtp, smtp_keys={"timeout_seconds": 1})
    first = poll(cfg)
    assert first.sent == 0 and len(smtp.messages) == 1, "the server took the message all the same"
    assert rows(cfg, "SELECT state FROM outbox") == [("unknown",)]
    assert SENT not in imap_account.folders(), "no Sent copy for a reply not known to be sent"
    assert "unknown 1" in next(x for x in status_lines(cfg) if x.startswith("replies:"))

    imap_account.append(smtp.messages[0].raw, datetime.now(UTC), folder=SENT)  # the server's own copy
    second = poll(cfg)
    assert len(smtp.messages) == 1 and second.sent == 0
    assert rows(cfg, "SELECT state FROM outbox") == [("sent",)]
    poll(cfg)
    assert receipts(smtp) == ["<d1@example.cn>"]


def test_reply_lost_after_data_without_a_sent_copy_goes_again_once(imap_account, make_smtp_server,
                                                                   tmp_path: Path) -> None:
    """The residual window: the server took the receipt, answered too late and kept no Sent copy. The next
    poll finds no copy and sends it again once, with the same Message-ID; later polls send nothing."""
    smtp = make_smtp_server()
    smtp.answer_data_late(3.0)
    imap_account.append(district_mail(1), on_time())
    cfg = config_for(imap_account, tmp_path, smtp, smtp_keys={"timeout_seconds": 1})
    poll(cfg)
    assert rows(cfg, "SELECT state FROM outbox") == [("unknown",)]
    poll(cfg)
    poll(cfg)
    assert receipts(smtp) == ["<d1@example.cn>", "<d1@example.cn>"]
    assert len({m.message["Message-ID"] for m in smtp.messages}) == 1
    assert rows(cfg, "SELECT state FROM outbox") == [("sent",)] and len(imap_account.uids(SENT)) == 1


def test_an_unknown_reply_waits_while_the_sent_folder_cannot_be_searched(relayed_imap, make_smtp_server,
                                                                         tmp_path: Path) -> None:
    """A reply left ``unknown`` is not settled (nor sent) while the Sent folder refuses to be searched; the
    resolve step fails alone, new mail is recorded meanwhile, and once the folder answers the reply is found
    there and the new mail is answered: each receipt reaches the server once."""
    smtp = make_smtp_server()
    smtp.answer_data_late(3.0)
    relayed_imap.append(district_mail(1), on_time())
    cfg = config_for(relayed_imap, tmp_path, smtp, smtp_keys={"timeout_seconds": 1})
    poll(cfg)
    assert rows(cfg, "SELECT state FROM outbox") == [("unknown",)]

    relayed_imap.append(smtp.messages[0].raw, datetime.now(UTC), folder=SENT)  # the server's own copy
    relayed_imap.relay.refuse("EXAMINE")
    relayed_imap.append(district_mail(2, GULOU), on_time())
    second = poll(cfg)
    assert second.outcomes == {Outcome.PROCESSED: 1}
    assert {"resolve", "send"} <= set(second.failed_steps)
    assert rows(cfg, "SELECT state FROM outbox ORDER BY id") == [("unknown",), ("queued",)]
    assert "unknown 1" in next(x for x in status_lines(cfg) if x.startswith("replies:"))
    assert len(smtp.messages) == 1

    relayed_imap.relay.allow_all()
    poll(cfg)
    poll(cfg)
    assert receipts(smtp) == ["<d1@example.cn>", "<d2@example.cn>"]
    assert rows(cfg, "SELECT state FROM outbox ORDER BY id") == [("sent",), ("sent",)]


# -- a lost data directory ---------------------------------------------------------------------------


def test_deleted_data_directory_answers_no_message_again(imap_account, smtp_server, tmp_path: Path) -> None:
    """Store and archive deleted: the INBOX messages are recorded again, but their receipts are found in the
    Sent folder (same original and X-Intake-Outcome, though a new Message-ID) and stamped sent without being
    sent; a message that arrives afterwards is answered as usual."""
    imap_account.append(district_mail(1), on_time())
    imap_account.append(district_mail(2, GULOU), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server)
    assert poll(cfg).sent == 2
    assert len(imap_account.uids(SENT)) == 2, "every sent reply has its copy in the Sent folder"

    shutil.rmtree(cfg.paths.data_dir)
    imap_account.append(district_mail(3), on_time())
    again = poll(cfg)
    assert again.outcomes == {Outcome.PROCESSED: 3}
    assert sorted(receipts(smtp_server)) == ["<d1@example.cn>", "<d2@example.cn>", "<d3@example.cn>"]
    assert rows(cfg, "SELECT state FROM outbox") == [("sent",)] * 3
    assert len(imap_account.uids(SENT)) == 3


def test_the_sent_folder_is_looked_at_once_per_stage_not_once_per_reply(relayed_imap, smtp_server,
                                                                         tmp_path: Path) -> None:
    """Five receipts cost one look at the Sent folder (one LIST, one EXAMINE, one SEARCH, one FETCH of header
    fields), then one APPEND each with no LIST between; after the data directory is lost the same single look
    finds all five copies and nothing is sent again."""
    for i in range(1, 6):
        relayed_imap.append(district_mail(i, GULOU if i % 2 else YUNLONG), on_time())
    relayed_imap.create_folder(SENT)
    relay = relayed_imap.relay
    cfg = config_for(relayed_imap, tmp_path, smtp_server)
    assert poll(cfg).sent == 5
    first = list(relay.commands)
    assert sum(c.startswith("EXAMINE") for c in first) == 1
    assert sum(c.startswith("LIST") for c in first) <= 2, "the lookup's and the first APPEND's, not one a reply"
    assert sum(c.startswith("APPEND") for c in first) == 5

    shutil.rmtree(cfg.paths.data_dir)
    again = poll(cfg)
    second = relay.commands[len(first):]
    assert again.outcomes == {Outcome.PROCESSED: 5} and again.sent == 5
    assert len(receipts(smtp_server)) == 5 and len(relayed_imap.uids(SENT)) == 5
    assert sum(c.startswith("EXAMINE") for c in second) == 1
    assert sum(c.startswith("UID SEARCH") and "HEADER" in c for c in second) == 1
    assert sum(c.startswith("UID FETCH") and "HEADER.FIELDS" in c for c in second) == 1
    assert not any(c.startswith("APPEND") for c in second)


def test_lost_data_directory_with_chinese_originals_across_chunks_answers_nothing_again(
        imap_account, smtp_server, tmp_path: Path, monkeypatch) -> None:
    """Originals whose Message-ID is raw UTF-8 Chinese get receipts whose In-Reply-To is RFC 2047-encoded in
    the Sent copy; with more replies than one SEARCH and one header FETCH hold, a lost data directory still
    finds every copy (by original and outcome) and sends none again."""
    import intake.mailbox as mailbox_module

    monkeypatch.setattr(mailbox_module, "SEARCH_KEYS_PER_COMMAND", 2)
    monkeypatch.setattr(mailbox_module, "HEADERS_PER_FETCH", 2)
    for i in range(1, 6):
        raw = district_mail(i, GULOU if i % 2 else YUNLONG)
        if i <= 2:
            raw = raw.replace(f"<d{i}@example.cn>".encode(), f"<原件{i}@example.cn>".encode())
        imap_account.append(raw, on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server)
    assert poll(cfg).sent == 5
    originals = sorted(receipts(smtp_server))
    assert "<原件1@example.cn>" in originals and "<原件2@example.cn>" in originals

    shutil.rmtree(cfg.paths.data_dir)
    again = poll(cfg)
    assert again.outcomes == {Outcome.PROCESSED: 5}
    assert sorted(receipts(smtp_server)) == originals, "nothing answered twice"
    assert rows(cfg, "SELECT state FROM outbox") == [("sent",)] * 5
    assert len(imap_account.uids(SENT)) == 5


def test_sent_folder_that_cannot_be_searched_holds_replies_not_intake(relayed_imap, smtp_server,
                                                                       tmp_path: Path) -> None:
    """With the Sent folder refused, new mail is still recorded; the reply waits queued with the reason, the
    send step shows as failing in status, and the first poll after the server answers sends it once."""
    relayed_imap.create_folder(SENT)  # as a real mailbox always has it
    relayed_imap.relay.refuse("EXAMINE")
    relayed_imap.append(district_mail(1), on_time())
    cfg = config_for(relayed_imap, tmp_path, smtp_server)
    summary = poll(cfg)
    assert summary.outcomes == {Outcome.PROCESSED: 1} and summary.sent == 0 and smtp_server.messages == []
    assert "send" in summary.failed_steps
    [(state, error)] = rows(cfg, "SELECT state, last_error FROM outbox")
    assert state == "queued" and error.startswith("Sent folder not searched")
    lines = status_lines(cfg)
    assert any(x.startswith("step send FAILING since") for x in lines)
    assert "queued 1" in next(x for x in lines if x.startswith("replies:"))

    relayed_imap.relay.allow_all()
    assert poll(cfg).sent == 1
    poll(cfg)
    assert receipts(smtp_server) == ["<d1@example.cn>"]


def test_a_refused_sent_copy_is_kept_on_the_reply(relayed_imap, smtp_server, tmp_path: Path) -> None:
    """Every sent reply is appended to the Sent folder; when that fails the reply is still sent
    (once) and its record says no copy was kept (so staff know a lost data directory could answer it
    again)."""
    relayed_imap.relay.refuse("CREATE", count=1)  # the Sent folder cannot be made for the first copy
    relayed_imap.append(district_mail(1), on_time())
    relayed_imap.append(district_mail(2, GULOU), on_time())
    cfg = config_for(relayed_imap, tmp_path, smtp_server)
    poll(cfg)
    poll(cfg)
    assert receipts(smtp_server) == ["<d1@example.cn>", "<d2@example.cn>"]
    [(state1, error1), (state2, error2)] = rows(cfg, "SELECT state, last_error FROM outbox ORDER BY id")
    assert (state1, state2) == ("sent", "sent") and error2 is None
    assert error1.startswith(f"sent, but no copy kept in {SENT}")
    assert len(relayed_imap.uids(SENT)) == 1


# -- floods ------------------------------------------------------------------------------------------


def test_replies_go_round_robin_by_district(imap_account, smtp_server, tmp_path: Path) -> None:
    """Four receipts queued for 云龙区 before one for 鼓楼区, two sent per poll: 鼓楼区's goes in the first poll."""
    for i in range(1, 5):
        imap_account.append(district_mail(i), on_time())
    imap_account.append(district_mail(5, GULOU), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, smtp_keys={"max_replies_per_poll": 2})
    assert poll(cfg).sent == 2
    assert receipts(smtp_server) == ["<d1@example.cn>", "<d5@example.cn>"]
    poll(cfg)
    poll(cfg)
    assert receipts(smtp_server)[2:] == ["<d2@example.cn>", "<d3@example.cn>", "<d4@example.cn>"]


def test_at_most_the_daily_limit_goes_to_one_address(imap_account, smtp_server, tmp_path: Path) -> None:
    """With two replies a day per address, 云龙区's third receipt waits queued (status and an alert say so)
    while 鼓楼区's goes; the next day it is sent, once."""
    for i in range(1, 4):
        imap_account.append(district_mail(i), on_time())
    imap_account.append(district_mail(4, GULOU), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, smtp_keys={"max_replies_per_sender_per_day": 2},
                     tables=STAFF)
    poll(cfg)
    poll(cfg)
    assert receipts(smtp_server) == ["<d1@example.cn>", "<d4@example.cn>", "<d2@example.cn>"]
    assert rows(cfg, "SELECT state FROM outbox ORDER BY id") == [("sent",), ("sent",), ("queued",), ("sent",)]
    assert f"  held until tomorrow: 1 to {YUNLONG} (smtp.max_replies_per_sender_per_day = 2)" in status_lines(cfg)
    [alert] = [m.message for m in smtp_server.messages if m.message["X-Intake-Outcome"] == "alert"]
    assert YUNLONG in alert.get_body().get_content() and "每日发送上限" in alert.get_body().get_content()

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert poll(cfg, clock=lambda: tomorrow).sent == 1
    poll(cfg, clock=lambda: tomorrow)
    assert receipts(smtp_server)[3:] == ["<d3@example.cn>"]
    assert not any("held until tomorrow" in x for x in status_lines(cfg, tomorrow))


# -- forged district mail ----------------------------------------------------------------------------

FAILED_SPF = ("Authentication-Results", f"mx.163.com; spf=fail smtp.mailfrom={YUNLONG}; dkim=none")
PASSED = ("Authentication-Results", f"mx.163.com; spf=pass smtp.mailfrom={YUNLONG}; dkim=pass header.d=example.cn")


def test_district_address_failing_spf_is_an_unknown_sender_when_authentication_is_required(
        imap_account, smtp_server, tmp_path: Path) -> None:
    """Under require_authenticated, 云龙区 mail whose Authentication-Results show SPF failing is recorded as
    unknown_sender with UNAUTHENTICATED_SENDER, not merged, not answered, and alerted to staff; mail that
    passes is processed as usual."""
    table = ("云龙区申报汇总表.xlsx", summary_table_xlsx("云龙区", [sample_project(0).row]))
    imap_account.append(district_mail(1, headers=(FAILED_SPF,), files=[table]), on_time())
    imap_account.append(district_mail(2, GULOU, headers=(PASSED,)), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, require_authenticated=True, tables=STAFF)
    summary = poll(cfg)
    assert summary.outcomes == {Outcome.UNKNOWN_SENDER: 1, Outcome.PROCESSED: 1}
    assert rows(cfg, "SELECT uid, district, outcome FROM messages ORDER BY uid") == [
        (1, None, "unknown_sender"), (2, "鼓楼区", "processed")]
    [(code, text)] = rows(cfg, "SELECT code, text FROM findings WHERE message_id = 1")
    assert code == "UNAUTHENTICATED_SENDER" and "spf=fail" in text and "可能被冒用" in text
    assert receipts(smtp_server) == ["<d2@example.cn>"]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert Worker(cfg, store).ledger().projects == [], "nothing of the forged mail is merged"
    [alert] = [m.message for m in smtp_server.messages if m.message["X-Intake-Outcome"] == "alert"]
    assert "未通过发件认证" in alert.get_body().get_content()
    assert any("district address failing SPF/DKIM" in x for x in status_lines(cfg))


def test_failing_spf_is_not_judged_unless_authentication_is_required(imap_account, smtp_server,
                                                                      tmp_path: Path) -> None:
    """Without require_authenticated (the default) the same mail is the district's, merged and answered."""
    table = ("云龙区申报汇总表.xlsx", summary_table_xlsx("云龙区", [sample_project(0).row]))
    imap_account.append(district_mail(1, headers=(FAILED_SPF,), files=[table]), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server)
    assert poll(cfg).outcomes == {Outcome.PROCESSED: 1}
    assert receipts(smtp_server) == ["<d1@example.cn>"]
