"""状态变更通知 (spec 10.6): which district is told of which change, and the notice sent once through a real poll."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

import pytest
from report_factories import finding, message, project
from support import SENDERS, config_toml, make_config, on_time

from intake.changes import change_reasons, owed_changes, status_changes
from intake.compose import compose
from intake.config import Config
from intake.models import Code, Ledger, Outcome, ReplyState, Status, StoredMessage
from intake.store import MIGRATIONS, Store, _statements
from intake.worker import Worker
from samples.forms import form_pdf
from samples.projects import SampleProject, sample_project
from samples.tables import summary_table_xlsx

OVERLIMIT = finding(Code.AGENCY_OVERLIMIT)


def ledger(*projects) -> Ledger:
    return Ledger(list(projects), [], {})


# -- status_changes (pure) ---------------------------------------------------------------------


def test_a_status_changed_in_another_district_is_reported_with_old_new_and_reason() -> None:
    """云龙区's project going 受理 → 待审核 is one change for 云龙区, its reason the finding it gained."""
    before = ledger(project("XZ2024-云龙-001"), project("XZ2024-泉山-001", "泉山区"))
    after = ledger(project("XZ2024-云龙-001", findings=[OVERLIMIT]),
                   project("XZ2024-泉山-001", "泉山区", findings=[OVERLIMIT]))
    changes = status_changes(before, after, {"泉山区"})
    assert list(changes) == ["云龙区"]
    [change] = changes["云龙区"]
    assert (change.number, change.old, change.new) == ("XZ2024-云龙-001", Status.ACCEPTED, Status.REVIEW)
    assert change.reasons == (OVERLIMIT.message,)
    assert change.name == "高价值专利培育项目" and change.applicant == "徐州某某科技有限公司"


def test_own_districts_unchanged_projects_and_new_or_dropped_projects_are_not_reported() -> None:
    """A change in a district that sent the mail, a same status, a new project and a dropped one: no change."""
    before = ledger(project("XZ2024-云龙-001"), project("XZ2024-鼓楼-001", "鼓楼区"),
                    project("XZ2024-鼓楼-002", "鼓楼区"))
    after = ledger(project("XZ2024-云龙-001", findings=[OVERLIMIT]), project("XZ2024-鼓楼-001", "鼓楼区"),
                   project("XZ2024-鼓楼-003", "鼓楼区", findings=[OVERLIMIT]))
    assert status_changes(before, after, {"云龙区"}) == {}
    assert list(status_changes(before, after, set())) == ["云龙区"]


def test_reasons_name_what_no_longer_applies_when_a_finding_went_away() -> None:
    """待审核 → 受理 because the other project left: the reason says the earlier problem no longer applies."""
    reasons = change_reasons(project("XZ2024-云龙-001", findings=[OVERLIMIT]), project("XZ2024-云龙-001"))
    assert reasons == (f"此前的问题已不再存在：{OVERLIMIT.message}",)
    same = change_reasons(project("XZ2024-云龙-001"), project("XZ2024-云龙-001", status=Status.REJECTED))
    assert same == ("市局复核后调整了该项目的状态。",)


# -- owed_changes (pure, with a stand-in ledger builder) -------------------------------------


def _builder():
    """A ledger per message prefix: 云龙区 and 泉山区 have one project each; each turns 待审核 once the
    prefix holds both districts' mail (the shared agency), and the district's project exists once its
    own mail is in."""

    def build(messages: Sequence[StoredMessage]) -> Ledger:
        districts = {m.district for m in messages if m.outcome is Outcome.PROCESSED}
        shared = {"云龙区", "泉山区"} <= districts
        return ledger(*(project(f"XZ2024-{d[:2]}-001", d, findings=[OVERLIMIT] if shared else [])
                        for d in ("云龙区", "泉山区") if d in districts))

    return build


def test_mail_of_another_district_in_a_later_poll_is_owed_to_the_first() -> None:
    """云龙区 was told 受理 in an earlier poll; 泉山区's mail now: 云龙区 is owed the change, 泉山区 nothing."""
    owed = owed_changes([message(1, "云龙区")], [message(2, "泉山区")], _builder())
    assert list(owed) == ["云龙区"] and owed["云龙区"][0].new is Status.REVIEW


def test_in_one_batch_a_district_is_compared_with_what_its_last_receipt_showed() -> None:
    """云龙区 then 泉山区 in one poll: 云龙区's receipt said 受理, so it is owed the change, and 泉山区, whose
    receipt already said 待审核, nothing; the other way round, the other way round."""
    owed = owed_changes([], [message(1, "云龙区"), message(2, "泉山区")], _builder())
    assert list(owed) == ["云龙区"]
    owed = owed_changes([], [message(1, "泉山区"), message(2, "云龙区")], _builder())
    assert list(owed) == ["泉山区"]
    assert owed_changes([], [message(1, "泉山区"), message(2, "云龙区"), message(3, "泉山区")], _builder()) == {}


def test_mail_that_changes_no_project_owes_nothing() -> None:
    """Late, automatic and unknown mail change no project: nothing is owed and no ledger is built."""
    def build(_messages):
        raise AssertionError("no ledger needed")
    new = [message(2, "泉山区", outcome=Outcome.LATE), message(3, None, outcome=Outcome.UNKNOWN_SENDER)]
    assert owed_changes([message(1)], new, build) == {}


# -- through the real poll: Dovecot + aiosmtpd ---------------------------------------------------


AGENCY = sample_project(0).row["合作服务机构"]


def district_project(i: int, district: str) -> SampleProject:
    return sample_project(i, district=district).with_values(合作服务机构=AGENCY)


def district_mail(n: int, district: str, p: SampleProject, day: int) -> tuple[bytes, object]:
    files = [(f"{district}申报汇总表.xlsx", summary_table_xlsx(district, [p.row])),
             (f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"]))]
    raw = compose(sender=SENDERS[district], sender_name=f"{district}知识产权局", subject=f"{district}申报材料",
                  attachments=files, message_id=f"<d{n}@example.cn>", arrival=on_time(day))
    return raw, on_time(day)


def config_for(account, smtp, tmp_path: Path) -> Config:
    return make_config(tmp_path / "var", imap=account.mailbox_settings(),
                       smtp={"host": smtp.host, "port": smtp.port})


def poll(cfg: Config, **kw):
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def sent(smtp) -> list[tuple[str, str, EmailMessage]]:
    return [(c.rcpt_tos[0], c.message["X-Intake-Outcome"], c.message) for c in smtp.messages]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def test_other_districts_mail_sends_one_update_notice_and_a_second_poll_none(imap_account, smtp_server,
                                                                               tmp_path: Path) -> None:
    """泉山区's mail makes 云龙区's project AGENCY_OVERLIMIT: 云龙区 gets exactly one 状态变更通知
    (受理 → 待审核, with the reason), 泉山区 only its receipt; a later poll sends nothing more."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(*district_mail(1, "云龙区", district_project(0, "云龙区"), 4))
    poll(cfg)
    assert [(to, kind) for to, kind, _ in sent(smtp_server)] == [(SENDERS["云龙区"], "receipt")]
    assert "状态：受理" in text_of(smtp_server.messages[0].message)

    imap_account.append(*district_mail(2, "泉山区", district_project(1, "泉山区"), 5))
    second = poll(cfg)
    got = sent(smtp_server)[1:]
    assert sorted((to, kind) for to, kind, _ in got) == [(SENDERS["泉山区"], "receipt"),
                                                         (SENDERS["云龙区"], "update")]
    assert second.sent == 2
    notice = next(m for _, kind, m in got if kind == "update")
    assert notice["Subject"] == f"状态变更通知：{cfg.campaign.name}"
    assert notice["Auto-Submitted"] == "auto-replied" and notice["Date"].endswith("+0800")
    text = text_of(notice)
    assert "XZ2024-云龙-001" in text and "状态：受理 → 待审核" in text and "AGENCY_OVERLIMIT" not in text
    assert f"合作服务机构“{AGENCY}”共参与2个项目" in text
    receipt = next(m for _, kind, m in got if kind == "receipt")
    assert "状态：待审核" in text_of(receipt), "泉山区's own change is in its receipt"

    third = poll(cfg)
    assert third.sent == 0 and len(smtp_server.messages) == 3


def test_both_districts_in_one_poll_the_first_is_told_the_second_is_not(imap_account, smtp_server,
                                                                         tmp_path: Path) -> None:
    """云龙区 then 泉山区 in the same poll: 云龙区's receipt (受理) is followed by one notice; 泉山区 gets none."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append_many([district_mail(1, "云龙区", district_project(0, "云龙区"), 4),
                              district_mail(2, "泉山区", district_project(1, "泉山区"), 5)])
    poll(cfg)
    poll(cfg)
    kinds = [(to, kind) for to, kind, _ in sent(smtp_server)]
    assert sorted(kinds) == sorted([(SENDERS["云龙区"], "receipt"), (SENDERS["泉山区"], "receipt"),
                                    (SENDERS["云龙区"], "update")])


def test_crash_before_the_notices_are_queued_is_completed_by_the_next_poll(imap_account, smtp_server,
                                                                            tmp_path: Path) -> None:
    """A poll killed right after recording 泉山区's mail queues no notice; the next poll queues and sends
    exactly one, and a third sends nothing."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(*district_mail(1, "云龙区", district_project(0, "云龙区"), 4))
    poll(cfg)
    imap_account.append(*district_mail(2, "泉山区", district_project(1, "泉山区"), 5))
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--config", str(config_path)],
                          env={**os.environ, "INTAKE_FAILPOINT": "after_record"}, capture_output=True, timeout=120)
    assert proc.returncode == 137, proc.stderr.decode()
    assert len(smtp_server.messages) == 1
    poll(cfg)
    poll(cfg)
    kinds = sorted(kind for _, kind, _ in sent(smtp_server))
    assert kinds == ["receipt", "receipt", "update"]


def test_dry_run_shows_the_notice_and_leaves_nothing_to_send_later(imap_account, smtp_server, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A dry run logs the notice it would send and queues none; the real poll after it, which processes the
    same mail as new (a dry run keeps nothing), sends the notice once."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(*district_mail(1, "云龙区", district_project(0, "云龙区"), 4))
    poll(cfg)
    imap_account.append(*district_mail(2, "泉山区", district_project(1, "泉山区"), 5))
    with caplog.at_level("INFO", logger="intake"):
        poll(cfg, dry_run=True)
    assert any("dry run, not sent: 状态变更通知" in r.getMessage() and "XZ2024-云龙-001" in r.getMessage()
               for r in caplog.records)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert store.notices(list(ReplyState)) == []
    assert [kind for _, kind, _ in sent(smtp_server)] == ["receipt"]
    poll(cfg)
    poll(cfg)
    assert sorted(kind for _, kind, _ in sent(smtp_server)) == ["receipt", "receipt", "update"]


def test_an_upgraded_database_checks_only_mail_recorded_after_the_upgrade(tmp_path: Path) -> None:
    """A database from before 状态变更通知 starts checking after its last message (no notices about history);
    a fresh one starts at the beginning."""
    path = tmp_path / "intake.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        for statement in _statements(script):
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    for uid in (1, 2):
        db.execute("INSERT INTO messages (folder, uidvalidity, uid, raw_sha256, raw_path, size, sender, internaldate,"
                   " outcome, recorded_at) VALUES ('INBOX', 1, ?, '', '', 0, 'a@b', '2024-11-05T10:00:00+08:00',"
                   " 'processed', '2024-11-05T10:00:00+08:00')", (uid,))
    db.close()
    with Store(path) as store:
        assert store.updates_checked_through() == store.max_message_id() == 2
    with Store(tmp_path / "fresh.db") as store:
        assert store.updates_checked_through() == 0


def test_a_broken_update_template_holds_the_notice_back_but_not_the_receipts(imap_account, smtp_server,
                                                                              tmp_path: Path) -> None:
    """An edited update template with an error: the poll still sends 泉山区's receipt and queues no notice;
    once the template is fixed, the next poll sends the one notice owed."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "update.txt.j2").write_text("{{ ofice }}", encoding="utf-8")
    cfg = dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, templates_dir=templates))
    imap_account.append(*district_mail(1, "云龙区", district_project(0, "云龙区"), 4))
    poll(cfg)
    imap_account.append(*district_mail(2, "泉山区", district_project(1, "泉山区"), 5))
    poll(cfg)
    assert [kind for _, kind, _ in sent(smtp_server)] == ["receipt", "receipt"]
    (templates / "update.txt.j2").unlink()
    poll(cfg)
    poll(cfg)
    assert [kind for _, kind, _ in sent(smtp_server)] == ["receipt", "receipt", "update"]
