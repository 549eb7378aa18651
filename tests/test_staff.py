"""The daily staff digest mail (intake/staff.py): when it is due, what it looks like, sent once a day."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from report_factories import sample_ledger
from servers import SmtpServer
from support import make_config

from intake.config import Config
from intake.errors import SendError
from intake.mailer import Mailer
from intake.staff import SENT_DATE_KEY, build_digest_mail, digest_due, digest_html, send_digest_if_due
from intake.store import Store

CST = timezone(timedelta(hours=8))
STAFF = ["chu-zhang@example.cn", "王科员 <wang@example.cn>"]
CAMPAIGN = "2024年徐州市高价值专利培育计划"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Beijing time, given in UTC as the worker's clock gives it."""
    return datetime(2024, 11, day, hour, minute, tzinfo=CST).astimezone(UTC)


# -- when it is due -------------------------------------------------------------


def test_not_due_before_the_report_hour() -> None:
    """07:59 local is before an 8 o'clock report, even though it is already 23:59 the day before in UTC."""
    assert not digest_due(at(5, 7, 59), None, 8, CST)


def test_due_at_and_after_the_report_hour() -> None:
    """From report_hour on, the first poll of the day sends it."""
    assert digest_due(at(5, 8, 0), None, 8, CST)
    assert digest_due(at(5, 17, 30), "2024-11-04", 8, CST)


def test_not_due_when_already_sent_today() -> None:
    """Sent earlier this local day: nothing more until tomorrow."""
    assert not digest_due(at(5, 9), "2024-11-05", 8, CST)
    assert not digest_due(at(5, 23, 59), "2024-11-05", 8, CST)


def test_due_again_on_a_new_local_day() -> None:
    """A new local day after report_hour is due again; the day is the local one, not UTC's."""
    assert digest_due(at(6, 8, 1), "2024-11-05", 8, CST)
    assert not digest_due(at(6, 7, 0), "2024-11-05", 8, CST)
    assert digest_due(at(6, 0, 30), "2024-11-05", 0, CST)  # report_hour 0: due just after midnight


# -- the message ----------------------------------------------------------------


def test_digest_mail_headers_and_parts() -> None:
    """Chinese subject with the local date, every staff address in To, auto-generated, HTML plus text."""
    msg = build_digest_mail("<p>日报</p>", sender="徐州市知识产权局 <xzip2019@163.com>", to=STAFF,
                            campaign=CAMPAIGN, now=at(5, 8, 30), tz=CST, domain="intake.test")
    assert msg["Subject"] == f"【xzip-intake】{CAMPAIGN}申报情况日报 2024-11-05"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert [a.addr_spec for a in msg["To"].addresses] == ["chu-zhang@example.cn", "wang@example.cn"]
    assert msg["From"].addresses[0].display_name == "徐州市知识产权局"
    assert msg["Message-ID"].endswith("@intake.test>")
    assert msg.get_body(("html",)).get_content().strip() == "<p>日报</p>"
    assert "申报情况日报" in msg.get_body(("plain",)).get_content()


def test_digest_mail_needs_a_recipient() -> None:
    """An empty recipient list is a programming error, not a mail with no To."""
    with pytest.raises(ValueError):
        build_digest_mail("<p/>", sender="a@b.cn", to=[], campaign=CAMPAIGN, now=at(5, 9), tz=CST)


# -- sending once a day through a real SMTP server --------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")


def staff_config(tmp_path: Path, server: SmtpServer, report_to: list[str]) -> Config:
    return make_config(tmp_path / "var", smtp={"host": server.host, "port": server.port},
                       staff={"report_to": report_to, "report_hour": 8})


def page(cfg: Config, now: datetime) -> str:
    ledger, messages, replies = sample_ledger()
    return digest_html(cfg, ledger, messages, replies, now)


def test_sends_once_per_day(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """The first due poll mails every staff address; later polls that day send nothing; the next day sends."""
    cfg = staff_config(tmp_path, smtp_server, STAFF)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        html = page(cfg, at(5, 8, 5))
        assert send_digest_if_due(cfg, store, html, at(5, 8, 5), Mailer) is True
        assert len(smtp_server.messages) == 1
        [got] = smtp_server.messages
        assert sorted(got.rcpt_tos) == ["chu-zhang@example.cn", "wang@example.cn"]
        assert got.message["Subject"] == f"【xzip-intake】{CAMPAIGN}申报情况日报 2024-11-05"
        assert got.message["Auto-Submitted"] == "auto-generated"
        assert "各区县申报情况" in got.message.get_body(("html",)).get_content()
        assert store.get_meta(SENT_DATE_KEY) == "2024-11-05"

        assert send_digest_if_due(cfg, store, html, at(5, 8, 10), Mailer) is False
        assert send_digest_if_due(cfg, store, html, at(5, 23, 55), Mailer) is False
        assert len(smtp_server.messages) == 1

        assert send_digest_if_due(cfg, store, html, at(6, 8, 0), Mailer) is True
        assert len(smtp_server.messages) == 2


def test_the_sent_day_survives_a_restart(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """The day is in the database: a worker restarted the same day does not send again."""
    cfg = staff_config(tmp_path, smtp_server, STAFF)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert send_digest_if_due(cfg, store, "<p/>", at(5, 9), Mailer)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert not send_digest_if_due(cfg, store, "<p/>", at(5, 10), Mailer)
    assert len(smtp_server.messages) == 1


def test_nothing_before_the_report_hour(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """Polls before report_hour send nothing and record nothing."""
    cfg = staff_config(tmp_path, smtp_server, STAFF)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert not send_digest_if_due(cfg, store, "<p/>", at(5, 7, 55), Mailer)
        assert store.get_meta(SENT_DATE_KEY) is None
    assert smtp_server.messages == []


def test_empty_report_to_sends_nothing(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """Without staff addresses (the default) no mail is sent and no connection is even opened."""
    cfg = staff_config(tmp_path, smtp_server, [])
    opened: list[Any] = []

    def factory(smtp: Any) -> Mailer:
        opened.append(smtp)
        return Mailer(smtp)

    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert not send_digest_if_due(cfg, store, "<p/>", at(5, 9), factory)
        assert store.get_meta(SENT_DATE_KEY) is None
    assert smtp_server.messages == [] and opened == []


def test_temporary_refusal_is_retried_next_poll(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """A 451 leaves the day unrecorded, so the next poll sends the digest."""
    cfg = staff_config(tmp_path, smtp_server, STAFF[:1])
    smtp_server.fail_next("451 DT:SPM try again later")
    with Store(cfg.paths.data_dir / "intake.db") as store:
        with pytest.raises(SendError) as caught:
            send_digest_if_due(cfg, store, "<p/>", at(5, 9), Mailer)
        assert caught.value.temporary and store.get_meta(SENT_DATE_KEY) is None
        assert send_digest_if_due(cfg, store, "<p/>", at(5, 9, 5), Mailer)
    assert len(smtp_server.messages) == 1


def test_permanent_refusal_is_not_retried_all_day(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """A 550 for a staff address is raised once and the day recorded: no retry every five minutes."""
    cfg = staff_config(tmp_path, smtp_server, STAFF[:1])
    smtp_server.fail_next("550 Mailbox not found", stage="RCPT")
    with Store(cfg.paths.data_dir / "intake.db") as store:
        with pytest.raises(SendError) as caught:
            send_digest_if_due(cfg, store, "<p/>", at(5, 9), Mailer)
        assert not caught.value.temporary and store.get_meta(SENT_DATE_KEY) == "2024-11-05"
        assert not send_digest_if_due(cfg, store, "<p/>", at(5, 9, 5), Mailer)
    assert smtp_server.messages == []


# -- the workbook travels with the digest ---------------------------------------------


def write_workbook(cfg: Config) -> Path:
    from reports.ledger import write_ledger

    ledger, messages, replies = sample_ledger()
    path = cfg.paths.data_dir / "ledger.xlsx"
    write_ledger(path, ledger, messages, replies, CST, data_dir=cfg.paths.data_dir)
    return path


def attachments(msg: Any) -> list[Any]:
    return list(msg.iter_attachments())


def test_digest_mail_attaches_the_ledger(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """The mail staff receive carries ledger.xlsx, byte for byte, as an xlsx attachment, and says so."""
    cfg = staff_config(tmp_path, smtp_server, STAFF[:1])
    workbook = write_workbook(cfg)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert send_digest_if_due(cfg, store, page(cfg, at(5, 9)), at(5, 9), Mailer)
    [got] = smtp_server.messages
    [part] = attachments(got.message)
    assert part.get_filename() == "ledger-2024-11-05.xlsx"
    assert part.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert part.get_content() == workbook.read_bytes()
    copy = tmp_path / "received.xlsx"
    copy.write_bytes(part.get_content())
    from openpyxl import load_workbook

    assert "项目台账" in load_workbook(copy).sheetnames
    assert "附件为截至发信时的台账" in got.message.get_body(("plain",)).get_content()
    assert 'id="ledger-note"' in got.message.get_body(("html",)).get_content()


def test_a_ledger_over_the_size_cap_is_named_not_attached(
    tmp_path: Path, smtp_server: SmtpServer, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the cap the mail has no attachment and a line saying where the workbook is (server, share)."""
    import intake.staff

    cfg = staff_config(tmp_path, smtp_server, STAFF[:1])
    cfg = replace(cfg, paths=replace(cfg.paths, publish_dir=tmp_path / "share"))
    size = write_workbook(cfg).stat().st_size
    monkeypatch.setattr(intake.staff, "ATTACH_MAX_BYTES", size - 1)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert send_digest_if_due(cfg, store, page(cfg, at(5, 9)), at(5, 9), Mailer)
    [got] = smtp_server.messages
    assert attachments(got.message) == []
    for body in (got.message.get_body(("plain",)).get_content(), got.message.get_body(("html",)).get_content()):
        assert "超过邮件附件上限" in body
        assert str(cfg.paths.data_dir / "ledger.xlsx") in body and str(tmp_path / "share" / "ledger.xlsx") in body


def test_a_missing_ledger_is_said_not_attached(tmp_path: Path, smtp_server: SmtpServer, env: None) -> None:
    """Before any workbook exists the digest still goes out, saying the ledger is not written yet."""
    cfg = staff_config(tmp_path, smtp_server, STAFF[:1])
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert send_digest_if_due(cfg, store, "<html><body><p>日报</p></body></html>", at(5, 9), Mailer)
    [got] = smtp_server.messages
    assert attachments(got.message) == []
    assert "尚未生成" in got.message.get_body(("plain",)).get_content()
