"""A district's material end to end against Dovecot and aiosmtpd: receipts, late notice, exactly once.

Issue 4's acceptance: material over three messages (forms before the table,
then a correction) gives the right projects, statuses and 受理编号; each
receipt shows the state after its own message; a late message gets one late
notice; a second poll sends nothing; a crash between send and stamp sends no
duplicate; an SMTP server that is down leaves the reply queued until it is up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest
from support import SENDERS, config_toml, make_config, on_time

from intake.compose import compose
from intake.config import Config
from intake.models import ReplyState
from intake.poll.send import COPY_PENDING
from intake.store import Store
from intake.worker import Worker
from samples.forms import form_pdf
from samples.projects import sample_project
from samples.tables import summary_table_xlsx

YUNLONG = SENDERS["云龙区"]


def config_for(account, smtp, tmp_path: Path, **smtp_keys) -> Config:
    return make_config(tmp_path / "var", imap=account.mailbox_settings(),
                       smtp={"host": smtp.host, "port": smtp.port, **smtp_keys})


def poll(cfg: Config, **kw):
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def district_mail(i: int, *, day: int, files: list[tuple[str, bytes]], subject: str, hour: int = 10):
    arrival = on_time(day, hour)
    raw = compose(sender=YUNLONG, sender_name="云龙区知识产权局", subject=subject, attachments=files,
                  message_id=f"<yl{i}@example.cn>", arrival=arrival)
    return raw, arrival


def form_file(p) -> tuple[str, bytes]:
    return f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"])


def table_file(projects, name: str = "云龙区申报汇总表.xlsx") -> tuple[str, bytes]:
    return name, summary_table_xlsx("云龙区", [p.row for p in projects])


def projects_sheet(cfg: Config) -> list[dict]:
    wb = openpyxl.load_workbook(cfg.paths.data_dir / "ledger.xlsx", read_only=True)
    rows = list(wb["项目台账"].iter_rows(values_only=True))
    # read-only mode leaves out a row's empty cells at its end (e.g. 复核时间 without a decision)
    return [dict(zip(rows[0], (*r, *[None] * (len(rows[0]) - len(r))), strict=True)) for r in rows[1:]]


def deliver_one(account, project):
    """One on-time 云龙区 message with the project's table and form; returns the project."""
    raw, arrival = district_mail(1, day=4, files=[table_file([project]), form_file(project)], subject="申报材料")
    account.append(raw, arrival)
    return project


def crash_poll(cfg: Config, tmp_path: Path, failpoint: str) -> None:
    """``intake poll`` in a subprocess that dies abruptly (like SIGKILL) at the named failpoint."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--config", str(config_path)],
                          env={**os.environ, "INTAKE_FAILPOINT": failpoint}, capture_output=True, timeout=120)
    assert proc.returncode == 137, proc.stderr.decode()


@pytest.fixture
def three_projects():
    return [sample_project(i) for i in range(3)]


def test_material_over_three_messages_then_late(imap_account, smtp_server, tmp_path: Path, three_projects):
    """Forms first, then the table, then a correction, then a late message: receipts track the state."""
    a, b, c = three_projects
    cfg = config_for(imap_account, smtp_server, tmp_path)
    b_fixed_amount = b.row["申请资助金额"] - 5
    corrected = [a, b.with_values(申请资助金额=b_fixed_amount), c]
    mails = [
        district_mail(1, day=3, files=[form_file(a), form_file(b)], subject="云龙区申报书"),
        district_mail(2, day=4, files=[table_file([a, b, c])], subject="云龙区申报汇总表"),
        district_mail(3, day=6, files=[table_file(corrected, "汇总表（更正）.xlsx"), form_file(corrected[1]),
                                       form_file(c)], subject="更正材料"),
        district_mail(4, day=9, hour=9, files=[table_file([a])], subject="补充材料"),
    ]
    imap_account.append_many(mails)

    first = poll(cfg)
    assert first.sent == 4 and first.send_failed == 0
    replies = smtp_server.messages
    assert [m.message["X-Intake-Outcome"] for m in replies] == ["receipt", "receipt", "receipt", "late"]
    for captured, n in zip(replies, range(1, 5), strict=True):
        msg = captured.message
        assert captured.rcpt_tos == [YUNLONG]
        assert msg["In-Reply-To"] == f"<yl{n}@example.cn>" and f"<yl{n}@example.cn>" in msg["References"]
        assert msg["Auto-Submitted"] == "auto-replied"
    assert replies[0].message["Subject"] == "回执：云龙区申报书"
    assert replies[3].message["Subject"] == "逾期通知：补充材料"

    # Receipt 1: two forms, no table yet -> no projects; both forms listed as unmatched.
    r1 = body(replies[0].message)
    assert "目前尚未登记你局的申报项目" in r1 and r1.count("未能对应到汇总表") == 2
    # Receipt 2: three projects; c has no form yet.
    r2 = body(replies[1].message)
    assert "共3个项目" in r2 and "受理2个" in r2 and "待补正1个" in r2
    # Receipt 3: b's table row corrected (with its corrected form), c's form arrived: all accepted.
    r3 = body(replies[2].message)
    assert "共3个项目：受理3个" in r3
    numbers = {p: f"XZ2024-云龙-00{n}" for n, p in enumerate(("a", "b", "c"), start=1)}
    for text in (r2, r3):
        for number in numbers.values():
            assert number in text
    late = body(replies[3].message)
    assert "逾期" in late

    rows = projects_sheet(cfg)
    assert [(r["受理编号"], r["牵头申报单位"], r["状态"]) for r in rows] == [
        (numbers["a"], a.row["牵头申报单位"], "受理"),
        (numbers["b"], b.row["牵头申报单位"], "受理"),
        (numbers["c"], c.row["牵头申报单位"], "受理"),
    ]
    assert rows[1]["申请资助金额（万元）"] == b_fixed_amount  # the late table (only a) never entered

    second = poll(cfg)
    assert second.new == 0 and second.sent == 0 and len(smtp_server.messages) == 4
    assert [(r["受理编号"], r["状态"]) for r in projects_sheet(cfg)] == [
        (r["受理编号"], r["状态"]) for r in rows]


@pytest.mark.parametrize("crash_at", ["after_sent_stamp", "after_sent_copy"])
def test_crash_after_the_server_took_the_reply_sends_no_duplicate(imap_account, smtp_server, tmp_path: Path,
                                                                   three_projects, crash_at: str):
    """Killed once the server took the reply and it was stamped sent, before its Sent copy was APPENDed (or
    after, before the note of the pending copy was cleared): nothing is sent again, and the reply shows that
    its copy never reached the Sent folder when the APPEND was cut off."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    deliver_one(imap_account, three_projects[0])
    crash_poll(cfg, tmp_path, crash_at)
    assert len(smtp_server.messages) == 1
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert store.reply_counts() == {ReplyState.SENT: 1}
        note = store.db.execute("SELECT last_error FROM outbox").fetchone()[0]
    assert note == f"{COPY_PENDING} {cfg.mailbox.sent_folder}"
    assert _sent_copies(imap_account, cfg) == (crash_at == "after_sent_copy")

    again = poll(cfg)
    assert again.sent == 0 and len(smtp_server.messages) == 1
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert store.reply_counts() == {ReplyState.SENT: 1}


def test_a_sent_reply_whose_copy_was_kept_carries_no_note(imap_account, smtp_server, tmp_path: Path,
                                                          three_projects):
    """The note of a pending Sent copy is cleared once the APPEND worked."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    deliver_one(imap_account, three_projects[0])
    assert poll(cfg).sent == 1
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert [tuple(r) for r in store.db.execute("SELECT state, last_error FROM outbox")] == [("sent", None)]
    assert _sent_copies(imap_account, cfg) == 1


def _sent_copies(account, cfg: Config) -> int:
    folder = cfg.mailbox.sent_folder
    if folder not in account.server.folders(account.user):
        return 0
    return len(account.server.uids(account.user, folder))


def test_crash_after_record_before_send_sends_once(imap_account, smtp_server, tmp_path: Path, three_projects):
    """Killed right after the message's outcome was committed: the next poll sends its reply, once."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    deliver_one(imap_account, three_projects[0])
    crash_poll(cfg, tmp_path, "after_record")
    assert smtp_server.messages == []
    first = poll(cfg)
    assert first.new == 0 and first.sent == 1
    assert poll(cfg).sent == 0 and len(smtp_server.messages) == 1


def test_smtp_down_reply_queued_then_sent(imap_account, smtp_server, tmp_path: Path, three_projects):
    """With the SMTP server down the receipt stays queued; once it is up (and the backoff passed) it goes out."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    deliver_one(imap_account, three_projects[0])
    smtp_server.stop()
    now = [on_time(4, 12)]
    down = poll(cfg, clock=lambda: now[0])
    assert down.sent == 0 and down.queued == 1
    smtp_server.start()
    assert poll(cfg, clock=lambda: now[0]).sent == 0, "the backoff has not passed yet"
    now[0] += timedelta(minutes=2)
    up = poll(cfg, clock=lambda: now[0])
    assert up.sent == 1 and up.queued == 0 and len(smtp_server.messages) == 1


@pytest.mark.parametrize("answer", ["451 DT:SPM 163 smtp14,EsCowAC5", "451 MI:SFQ", "421 HL:ICC"])
def test_netease_temporary_refusals_are_retried(imap_account, smtp_server, tmp_path: Path, three_projects,
                                                answer: str):
    cfg = config_for(imap_account, smtp_server, tmp_path)
    deliver_one(imap_account, three_projects[0])
    smtp_server.fail_next(answer)
    now = [on_time(4, 12)]
    assert poll(cfg, clock=lambda: now[0]).queued == 1
    now[0] += timedelta(minutes=5)
    assert poll(cfg, clock=lambda: now[0]).sent == 1
    assert len(smtp_server.messages) == 1


def test_permanent_refusal_is_recorded_for_staff(imap_account, smtp_server, tmp_path: Path, three_projects):
    """``554 DT:SPM`` fails the reply for good; the ledger's 来件登记 shows it; later polls do not retry."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    deliver_one(imap_account, three_projects[0])
    smtp_server.fail_next("554 DT:SPM 163 smtp3,content rejected", count=5)
    now = [on_time(4, 12)]
    first = poll(cfg, clock=lambda: now[0])
    assert first.send_failed == 1 and first.queued == 0
    now[0] += timedelta(hours=3)
    assert poll(cfg, clock=lambda: now[0]).sent == 0 and smtp_server.messages == []
    wb = openpyxl.load_workbook(cfg.paths.data_dir / "ledger.xlsx", read_only=True)
    log_rows = list(wb["来件登记"].iter_rows(values_only=True))
    assert any("554" in " ".join(str(v) for v in row if v is not None) for row in log_rows[1:])


def test_staff_digest_written_with_the_ledger_and_mailed_once_a_day(imap_account, smtp_server, tmp_path: Path,
                                                                three_projects):
    """digest.html is written beside the ledger; staff get it by mail once per local day."""
    cfg = make_config(tmp_path / "var", imap=imap_account.mailbox_settings(),
                      smtp={"host": smtp_server.host, "port": smtp_server.port},
                      staff={"report_to": ["王科员 <wang@xzip.example.cn>"], "report_hour": 8})
    a = deliver_one(imap_account, three_projects[0])
    now = [on_time(5, 9)]
    poll(cfg, clock=lambda: now[0])
    digest = (cfg.paths.data_dir / "digest.html").read_text(encoding="utf-8")
    assert "云龙区" in digest and a.row["项目名称"] not in digest  # accepted projects are no open problem
    to_staff = [m for m in smtp_server.messages if m.rcpt_tos == ["wang@xzip.example.cn"]]
    assert len(to_staff) == 1 and to_staff[0].message["Auto-Submitted"] == "auto-generated"
    now[0] += timedelta(hours=3)
    poll(cfg, clock=lambda: now[0])
    assert len([m for m in smtp_server.messages if m.rcpt_tos == ["wang@xzip.example.cn"]]) == 1
    now[0] += timedelta(days=1)
    poll(cfg, clock=lambda: now[0])
    assert len([m for m in smtp_server.messages if m.rcpt_tos == ["wang@xzip.example.cn"]]) == 2
