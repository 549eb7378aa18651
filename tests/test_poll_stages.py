"""The poll's stages against Dovecot and aiosmtpd: each step fails alone, extra folders, dry run, attempts
counted before parsing, replies rendered apart from recording, alerts to staff."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
from servers import reorder_fetch
from support import SENDERS, config_toml, make_config, on_time, plain_mail

from intake.compose import compose
from intake.config import Config
from intake.models import Outcome
from intake.status import ATTENTION, HEALTHY, status
from intake.store import Store
from intake.worker import Worker
from samples.projects import sample_project
from samples.tables import summary_table_xlsx

YUNLONG, GULOU = SENDERS["云龙区"], SENDERS["鼓楼区"]
SPAM = "垃圾邮件"


def config_for(account, tmp_path: Path, smtp=None, *, tables: dict | None = None, **mailbox) -> Config:
    smtp_keys = {"host": smtp.host, "port": smtp.port} if smtp else {"host": "127.0.0.1", "port": 9}
    return make_config(tmp_path / "var", imap=account.mailbox_settings(**mailbox), smtp=smtp_keys, **(tables or {}))


def poll(cfg: Config, **kw):
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def district_mail(i: int, sender: str = YUNLONG, files: list[tuple[str, bytes]] | None = None) -> bytes:
    return compose(sender=sender, subject=f"申报材料{i}", body="见附件", message_id=f"<d{i}@example.cn>",
                   arrival=on_time(), attachments=files or [])


def replies(smtp_server, outcome: str = "receipt") -> list[str]:
    """In-Reply-To of each captured reply of that kind (receipt, late, alert, digest)."""
    return [str(m.message["In-Reply-To"] or m.message["Subject"]) for m in smtp_server.messages
            if m.message["X-Intake-Outcome"] == outcome]


def rows(cfg: Config, sql: str) -> list[tuple]:
    with sqlite3.connect(cfg.paths.data_dir / "intake.db") as db:
        return db.execute(sql).fetchall()


def test_refused_flag_and_move_fail_alone_and_are_done_later(relayed_imap, smtp_server, tmp_path: Path) -> None:
    """With STORE/MOVE refused, new district mail is still recorded and answered; the mailbox step is recorded
    failing since its first failure, shown by the digest and status (exit 7 after an hour, with an alert), and
    done by the first poll after the server accepts again."""
    refusing_imap = relayed_imap
    refusing_imap.relay.refuse("UID STORE").refuse("UID MOVE").refuse("STORE").refuse("MOVE")
    cfg = config_for(refusing_imap, tmp_path, smtp_server, processed_folder="已处理",
                     tables={"staff": {"report_to": ["staff@example.cn"], "report_hour": 23}})
    real_now = datetime.now(UTC)
    now = [real_now - timedelta(minutes=70)]
    refusing_imap.append(district_mail(1), on_time())
    first = poll(cfg, clock=lambda: now[0])
    assert first.outcomes == {Outcome.PROCESSED: 1} and first.sent == 1
    assert first.failed_steps == ["mailbox_actions:INBOX"]
    assert refusing_imap.relay.refused, "the relay must have refused something"
    assert "mailbox_actions:INBOX" in (cfg.paths.data_dir / "digest.html").read_text(encoding="utf-8")
    with Store(cfg.paths.data_dir / "intake.db") as store:
        early = status(cfg, store, now[0] + timedelta(minutes=1))
    assert any(line.startswith("step mailbox_actions:INBOX FAILING since") for line in early.lines)

    now[0] = real_now
    refusing_imap.append(district_mail(2), on_time())
    second = poll(cfg, clock=lambda: now[0])
    assert second.outcomes == {Outcome.PROCESSED: 1} and second.sent == 1
    assert replies(smtp_server) == ["<d1@example.cn>", "<d2@example.cn>"]
    assert [since for (since,) in rows(cfg, "SELECT since FROM step_failures")] == [
        (real_now - timedelta(minutes=70)).isoformat()]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        report = status(cfg, store, datetime.now(UTC))
    assert report.exit_code == ATTENTION
    assert any("poll step failing since" in line and "mailbox_actions:INBOX" in line for line in report.lines)
    [alert] = [m.message for m in smtp_server.messages if m.message["X-Intake-Outcome"] == "alert"]
    assert "mailbox_actions:INBOX" in alert.get_body().get_content()
    assert len(refusing_imap.uids("INBOX")) == 2

    refusing_imap.relay.allow_all()
    third = poll(cfg, clock=lambda: now[0])
    assert third.failed_steps == [] and third.moved == 2
    assert refusing_imap.uids("INBOX") == [] and len(refusing_imap.uids("已处理")) == 2
    assert rows(cfg, "SELECT * FROM step_failures") == []
    assert replies(smtp_server) == ["<d1@example.cn>", "<d2@example.cn>"]


def test_a_folder_that_cannot_be_read_fails_alone(imap_account, smtp_server, tmp_path: Path) -> None:
    """An extra folder the server does not have fails its own steps; INBOX mail is recorded and answered."""
    imap_account.append(district_mail(1), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, extra_folders=["不存在的文件夹"])
    summary = poll(cfg)
    assert summary.outcomes == {Outcome.PROCESSED: 1} and summary.sent == 1
    assert "fetch:不存在的文件夹" in summary.failed_steps
    assert sorted(s for (s,) in rows(cfg, "SELECT step FROM step_failures")) == [
        "fetch:不存在的文件夹", "mailbox_actions:不存在的文件夹"]
    assert rows(cfg, "SELECT ok FROM polls") == [(1,)], "INBOX was read: the poll counts as successful"


# -- extra folders --------------------------------------------------------------------------------


def test_spam_folder_polled_like_inbox_with_its_own_uidvalidity(imap_account, smtp_server, tmp_path: Path) -> None:
    """District mail filed in 垃圾邮件 is recorded under that folder, answered once and moved to 已处理; when
    the server renumbers 垃圾邮件 alone, its mail is re-attached, not answered again."""
    imap_account.create_folder(SPAM)
    imap_account.append(district_mail(1), on_time())
    imap_account.append(district_mail(2, GULOU), on_time(), folder=SPAM)
    imap_account.append(plain_mail(3), on_time(), folder=SPAM)
    cfg = config_for(imap_account, tmp_path, smtp_server, extra_folders=[SPAM], processed_folder="已处理")
    first = poll(cfg)
    assert first.new == 3 and first.failed_steps == []
    assert sorted(rows(cfg, "SELECT folder, uid, outcome FROM messages")) == [
        ("INBOX", 1, "processed"), (SPAM, 1, "processed"), (SPAM, 2, "unknown_sender")]
    assert sorted(replies(smtp_server)) == ["<d1@example.cn>", "<d2@example.cn>"]
    assert imap_account.uids(SPAM) == [] and len(imap_account.uids("已处理")) == 3

    # Put the spam back (another client) and renumber the spam folder alone.
    imap_account.append(district_mail(2, GULOU), on_time(), folder=SPAM)
    imap_account.server.reset_uidvalidity(imap_account.user, SPAM)
    imap_account.append(district_mail(4, GULOU), on_time(), folder=SPAM)
    second = poll(cfg)
    assert second.remapped == 1
    assert sorted(replies(smtp_server)) == ["<d1@example.cn>", "<d2@example.cn>", "<d4@example.cn>"]
    assert len({v for (v,) in rows(cfg, "SELECT DISTINCT uidvalidity FROM messages WHERE folder = 'INBOX'")}) == 1


# -- dry run ----------------------------------------------------------------------------------------


def test_dry_run_leaves_nothing_to_send_later(imap_account, smtp_server, tmp_path: Path, caplog) -> None:
    """A dry run logs what it would send and keeps nothing; the real poll then answers each message once, and
    a later poll only the mail new to it."""
    imap_account.append(district_mail(1), on_time())
    imap_account.append(district_mail(2, GULOU), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, processed_folder="已处理")
    caplog.set_level("INFO", logger="intake")
    dry = poll(cfg, dry_run=True)
    assert dry.would_send == 2 and dry.sent == 0 and smtp_server.messages == []
    assert sum("dry run: would send receipt to" in r.getMessage() for r in caplog.records) == 2
    assert rows(cfg, "SELECT COUNT(*) FROM messages") == [(0,)] and rows(cfg, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert len(imap_account.uids("INBOX")) == 2, "a dry run moves nothing"
    preview = cfg.paths.data_dir / "dry-run"
    assert sorted(p.name for p in preview.iterdir()) == ["digest.html", "ledger.xlsx"]

    real = poll(cfg)
    assert real.new == 2 and real.sent == 2
    assert sorted(replies(smtp_server)) == ["<d1@example.cn>", "<d2@example.cn>"]
    imap_account.append(district_mail(3), on_time())
    later = poll(cfg)
    assert later.new == 1 and later.sent == 1
    assert sorted(replies(smtp_server)) == ["<d1@example.cn>", "<d2@example.cn>", "<d3@example.cn>"]


def test_a_poll_publishes_the_ledger_and_a_dry_run_does_not(imap_account, smtp_server, tmp_path: Path) -> None:
    """With paths.publish_dir set, a poll that changed the ledger leaves an identical copy there; a dry run's
    preview is never published."""
    imap_account.append(district_mail(1, files=[("云龙区申报汇总表.xlsx",
                                                 summary_table_xlsx("云龙区", [sample_project(0).row]))]), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, tables={"paths": {"publish_dir": str(tmp_path / "share")}})
    share = tmp_path / "share"
    poll(cfg, dry_run=True)
    assert not share.exists()
    poll(cfg)
    assert sorted(p.name for p in share.iterdir()) == ["digest.html", "ledger.xlsx"]
    assert (share / "ledger.xlsx").read_bytes() == (cfg.paths.data_dir / "ledger.xlsx").read_bytes()
    assert openpyxl.load_workbook(share / "ledger.xlsx")["项目台账"].max_row == 2, "the district's project"


# -- attempts counted before parsing ------------------------------------------------------------------


def crash_poll(cfg: Config, tmp_path: Path, failpoint: str) -> subprocess.CompletedProcess[bytes]:
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--config", str(config_path)],
                          env={**os.environ, "INTAKE_FAILPOINT": failpoint}, capture_output=True, timeout=120)


def test_a_message_that_kills_its_parser_ends_as_error_after_three_tries(imap_account, tmp_path: Path) -> None:
    """Each poll dies while reading the message's documents; the attempt was counted before, so the fourth
    poll records it as error without reading it, and processes the mail after it."""
    table = ("云龙区申报汇总表.xlsx", summary_table_xlsx("云龙区", [sample_project(0).row]))
    imap_account.append(district_mail(1, files=[table]), on_time())
    imap_account.append(plain_mail(2), on_time())
    cfg = config_for(imap_account, tmp_path)
    for attempt in (1, 2, 3):
        proc = crash_poll(cfg, tmp_path, "reading_documents")
        assert proc.returncode == 137, proc.stderr.decode()
        assert rows(cfg, "SELECT attempts FROM failures") == [(attempt,)]
    proc = crash_poll(cfg, tmp_path, "reading_documents")
    assert proc.returncode == 0, proc.stderr.decode()
    [(outcome, error)] = rows(cfg, "SELECT outcome, error FROM messages WHERE uid = 1")
    assert outcome == "error" and "gave up after 3 attempts" in error and "killed or crashed" in error
    assert rows(cfg, "SELECT uid, outcome FROM messages WHERE uid = 2") == [(2, "unknown_sender")]
    assert rows(cfg, "SELECT * FROM failures") == []


# -- replies rendered apart from recording -------------------------------------------------------------


def test_a_reply_that_does_not_render_waits_and_the_message_is_kept(imap_account, smtp_server, tmp_path: Path):
    """A broken edited template leaves the message recorded and merged, its reply render_failed (ledger and
    status say so); once the template is fixed the next poll sends the receipt once."""
    templates = tmp_path / "templates"
    templates.mkdir()
    broken = templates / "receipt.txt.j2"
    broken.write_text("{{ campaign }} {{ no_such_variable }}\n", encoding="utf-8")
    project = sample_project(0)
    table = ("云龙区申报汇总表.xlsx", summary_table_xlsx("云龙区", [project.row]))
    imap_account.append(district_mail(1, files=[table]), on_time())
    cfg = config_for(imap_account, tmp_path, smtp_server, tables={"paths": {"templates_dir": str(templates)}})
    for _ in range(2):
        summary = poll(cfg)
        assert summary.render_failed == 1 and summary.sent == 0 and smtp_server.messages == []
    assert rows(cfg, "SELECT outcome FROM messages") == [("processed",)]
    wb = openpyxl.load_workbook(cfg.paths.data_dir / "ledger.xlsx", read_only=True)
    assert len(list(wb["项目台账"].iter_rows(values_only=True))) == 2, "the project is in the ledger"
    register = list(wb["来件登记"].iter_rows(values_only=True))
    assert any("render_failed" in str(cell) and "no_such_variable" in str(cell) for cell in register[1])
    with Store(cfg.paths.data_dir / "intake.db") as store:
        report = status(cfg, store, datetime.now(UTC))
    assert "render_failed 1" in next(x for x in report.lines if x.startswith("replies:"))
    assert any(x.strip().startswith("reply does not render since") for x in report.lines)

    broken.unlink()
    fixed = poll(cfg)
    assert fixed.rendered == 1 and fixed.sent == 1
    assert poll(cfg).sent == 0 and replies(smtp_server) == ["<d1@example.cn>"]


def test_poll_refuses_to_start_with_a_template_that_does_not_render(tmp_path: Path, monkeypatch) -> None:
    """``intake poll`` checks the templates on a sample before touching the mailbox: one line, exit 2."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "late.html.j2").write_text("{% if %}\n", encoding="utf-8")
    cfg = make_config(tmp_path / "var", imap={"host": "127.0.0.1", "port": 9})
    text = config_toml(cfg).replace("[paths]\n", f'[paths]\ntemplates_dir = "{templates}"\n')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    for command in ("poll", "run"):
        proc = subprocess.run([sys.executable, "-m", "intake.cli", command, "--config", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("config error: templates in") and "TemplateSyntaxError" in line


# -- alerts ----------------------------------------------------------------------------------------------


def test_alerts_once_per_item_and_at_most_once_per_kind_an_hour(imap_account, smtp_server, tmp_path: Path):
    """A refused receipt and an unknown sender give one alert mail listing both; another unknown sender within
    the hour waits; after the hour one alert lists only the new one; status lists them and exits 7."""
    cfg = config_for(imap_account, tmp_path, smtp_server,
                     tables={"staff": {"report_to": ["staff@example.cn"], "report_hour": 23}})
    now = [datetime.now(UTC)]
    smtp_server.fail_next("550 5.1.1 mailbox unavailable", stage="RCPT")
    imap_account.append(district_mail(1), on_time())
    imap_account.append(plain_mail(2, "stranger@example.org"), on_time())
    poll(cfg, clock=lambda: now[0])
    alerts = [m.message for m in smtp_server.messages if m.message["X-Intake-Outcome"] == "alert"]
    assert len(alerts) == 1
    text = alerts[0].get_body().get_content()
    assert "回复被邮件服务器拒收" in text and "550" in text and "stranger@example.org" in text

    imap_account.append(plain_mail(3, "another@example.org"), on_time())
    now[0] += timedelta(minutes=30)
    poll(cfg, clock=lambda: now[0])
    assert len([m for m in smtp_server.messages if m.message["X-Intake-Outcome"] == "alert"]) == 1

    now[0] += timedelta(minutes=31)
    poll(cfg, clock=lambda: now[0])
    alerts = [m.message for m in smtp_server.messages if m.message["X-Intake-Outcome"] == "alert"]
    assert len(alerts) == 2
    second = alerts[1].get_body().get_content()
    assert "another@example.org" in second and "stranger@example.org" not in second and "550" not in second
    assert alerts[1]["To"] == "staff@example.cn"

    with Store(cfg.paths.data_dir / "intake.db") as store:
        report = status(cfg, store, datetime.now(UTC))
    assert report.exit_code == ATTENTION
    assert any(x.strip().startswith("reply refused for good since") for x in report.lines)
    assert sum(x.strip().startswith("unknown sender since") for x in report.lines) == 2


def test_no_alert_and_healthy_when_nothing_needs_a_person(imap_account, smtp_server, tmp_path: Path) -> None:
    """District mail answered normally sends staff no alert and leaves status healthy (exit 0)."""
    cfg = config_for(imap_account, tmp_path, smtp_server,
                     tables={"staff": {"report_to": ["staff@example.cn"], "report_hour": 23}})
    imap_account.append(district_mail(1), on_time())
    assert poll(cfg).sent == 1
    assert replies(smtp_server, "alert") == []
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert status(cfg, store, datetime.now(UTC)).exit_code == HEALTHY


def test_a_uid_the_server_left_out_is_asked_for_again(relayed_imap, tmp_path: Path) -> None:
    """A UID whose FETCH answer comes back incomplete is not skipped once higher UIDs are recorded: the next
    poll asks for it again and records it."""
    relayed_imap.append_many([(plain_mail(i), on_time()) for i in range(1, 4)])
    drop_date = reorder_fetch(["UID"], drop=["INTERNALDATE"])
    relayed_imap.relay.rewrite = lambda line: drop_date(line) if b"(UID 1 " in line else line
    cfg = config_for(relayed_imap, tmp_path)
    first = poll(cfg)
    assert rows(cfg, "SELECT uid FROM messages ORDER BY uid") == [(2,), (3,)] and first.new == 3
    relayed_imap.relay.rewrite = None
    second = poll(cfg)
    assert second.new == 1 and rows(cfg, "SELECT uid FROM messages ORDER BY uid") == [(1,), (2,), (3,)]
    assert rows(cfg, "SELECT * FROM failures") == []
