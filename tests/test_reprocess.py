"""``intake reprocess`` against Dovecot and aiosmtpd: recorded messages run again from their archived
originals; results replaced in one transaction, the ledger follows, replies owed sent once and none twice."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from support import SENDERS, config_toml, make_config, on_time

from intake.compose import compose
from intake.config import Config
from intake.models import Outcome
from intake.poll import record
from intake.reprocess import reprocess, select
from intake.store import Store
from intake.worker import Worker
from samples.forms import form_pdf
from samples.projects import SampleProject, sample_project
from samples.tables import summary_table_xlsx

NEW_ADDRESS = "ylq-new@example.cn"  # 云龙区's new address, not in the config at first
AGENCY = sample_project(0).row["合作服务机构"]


def config_for(account, smtp, tmp_path: Path) -> Config:
    return make_config(tmp_path / "var", imap=account.mailbox_settings(), smtp={"host": smtp.host, "port": smtp.port})


def with_sender(cfg: Config, district: str, address: str) -> Config:
    districts = [dataclasses.replace(d, senders=[*d.senders, address]) if d.name == district else d
                 for d in cfg.districts]
    return dataclasses.replace(cfg, districts=districts)


def project(i: int, district: str) -> SampleProject:
    return sample_project(i, district=district).with_values(合作服务机构=AGENCY)


def district_mail(n: int, district: str, sender: str | None = None, day: int = 5, shared_agency: bool = True) -> bytes:
    p = project(n, district) if shared_agency else sample_project(n, district=district)
    files = [(f"{district}申报汇总表.xlsx", summary_table_xlsx(district, [p.row])),
             (f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"]))]
    return compose(sender=sender or SENDERS[district], subject=f"{district}申报材料{n}", attachments=files,
                   message_id=f"<d{n}@example.cn>", arrival=on_time(day))


def poll(cfg: Config, **kw):
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def reprocess_and_poll(cfg: Config, **selection) -> list[str]:
    with Store(cfg.paths.data_dir / "intake.db") as store:
        worker = Worker(cfg, store)
        rows, _missing = select(worker.ctx, **selection)
        done = [r.line() for r in reprocess(worker.ctx, rows)]
        worker.poll()
    return done


def sent(smtp) -> list[tuple[str, str, str]]:
    """(recipient, X-Intake-Outcome, In-Reply-To) of every mail the SMTP server took."""
    return [(c.rcpt_tos[0], str(c.message["X-Intake-Outcome"]), str(c.message["In-Reply-To"] or ""))
            for c in smtp.messages]


def rows(cfg: Config, sql: str) -> list[tuple]:
    with sqlite3.connect(cfg.paths.data_dir / "intake.db") as db:
        return db.execute(sql).fetchall()


def record_as_errors(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three polls in which deciding every message fails (a bug, fixed afterwards): each ends as ``error``."""
    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in the findings")
    with monkeypatch.context() as patch:
        patch.setattr(record, "message_findings", broken)
        for _ in range(3):
            poll(cfg)


def register(cfg: Config) -> list[tuple]:
    """(UID, 处理结果, 回复类型) of each row of 来件登记."""
    sheet = openpyxl.load_workbook(cfg.paths.data_dir / "ledger.xlsx")["来件登记"]
    head = [c.value for c in sheet[1]]
    return [(r[head.index("UID")], r[head.index("处理结果")], r[head.index("回复类型")])
            for r in sheet.iter_rows(min_row=2, values_only=True)]


def run_cli(cfg: Config, tmp_path: Path, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess:
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    env = {**os.environ, **({"INTAKE_FAILPOINT": failpoint} if failpoint else {})}
    return subprocess.run([sys.executable, "-m", "intake.cli", "reprocess", "--config", str(config_path), *args],
                          env=env, capture_output=True, timeout=180)


def test_error_reprocessed_after_the_fix_is_processed_with_one_receipt(imap_account, smtp_server, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A message recorded as error (a bug, since fixed) is run again by ``intake reprocess --outcome error``:
    processed, merged, in the ledger, answered once; running the command again changes and sends nothing."""
    imap_account.append(district_mail(0, "云龙区"), on_time())
    cfg = config_for(imap_account, smtp_server, tmp_path)
    record_as_errors(cfg, monkeypatch)
    assert rows(cfg, "SELECT uid, outcome FROM messages") == [(1, "error")] and smtp_server.messages == []

    proc = run_cli(cfg, tmp_path, "--outcome", "error")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "INBOX uid 1: error -> processed (reply owed: sent by the next poll)" in proc.stdout.decode()
    assert sent(smtp_server) == [(SENDERS["云龙区"], "receipt", "<d0@example.cn>")]
    assert register(cfg) == [(1, "已处理", "回执")]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        [p] = Worker(cfg, store).ledger().projects
    assert p.values["牵头申报单位"] == sample_project(0).row["牵头申报单位"]
    revision = rows(cfg, "SELECT value FROM meta WHERE key = 'revision'")

    proc = run_cli(cfg, tmp_path, "1")
    assert proc.returncode == 0 and "INBOX uid 1: processed, unchanged" in proc.stdout.decode()
    assert len(smtp_server.messages) == 1
    assert rows(cfg, "SELECT value FROM meta WHERE key = 'revision'") == revision, "nothing was written"


def test_unknown_sender_whose_address_is_now_configured_gets_its_receipt_once(imap_account, smtp_server,
                                                                              tmp_path: Path) -> None:
    """云龙区 wrote from an address not yet in the config (unknown_sender, not answered). With the address
    added, reprocess makes it 云龙区's: one receipt to it, and one 状态变更通知 to 泉山区, whose project now
    shares its agency with 云龙区's; reprocessing again sends nothing."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(district_mail(1, "泉山区"), on_time(4))
    imap_account.append(district_mail(2, "云龙区", NEW_ADDRESS), on_time(5))
    poll(cfg)
    assert rows(cfg, "SELECT uid, outcome FROM messages ORDER BY uid") == [(1, "processed"), (2, "unknown_sender")]
    assert sent(smtp_server) == [(SENDERS["泉山区"], "receipt", "<d1@example.cn>")]

    updated = with_sender(cfg, "云龙区", NEW_ADDRESS)
    lines = reprocess_and_poll(updated, outcome="unknown_sender")
    assert lines == ["INBOX uid 2: unknown_sender -> processed (reply owed: sent by the next poll, "
                     "1 状态变更通知 queued)"]
    assert sorted(sent(smtp_server)[1:]) == sorted([(NEW_ADDRESS, "receipt", "<d2@example.cn>"),
                                                    (SENDERS["泉山区"], "update", "")])
    with Store(cfg.paths.data_dir / "intake.db") as store:
        assert sorted(p.district for p in Worker(updated, store).ledger().projects) == ["云龙区", "泉山区"]

    assert reprocess_and_poll(updated, uids=[1, 2]) == ["INBOX uid 1: processed, unchanged",
                                                        "INBOX uid 2: processed, unchanged"]
    poll(updated)
    assert len(smtp_server.messages) == 3


def test_reprocessing_an_answered_message_sends_nothing_new(imap_account, smtp_server, tmp_path: Path) -> None:
    """A message already answered by a receipt, reprocessed with a config that now makes it late: its
    results change (outcome late, nothing merged) but no late notice follows the receipt; changed back, no
    second receipt either."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(district_mail(0, "云龙区"), on_time())
    poll(cfg)
    assert sent(smtp_server) == [(SENDERS["云龙区"], "receipt", "<d0@example.cn>")]

    earlier = dataclasses.replace(cfg, campaign=dataclasses.replace(cfg.campaign, deadline=on_time(1)))
    assert reprocess_and_poll(earlier, uids=[1]) == [
        "INBOX uid 1: processed -> late (reply already sent: not sent again)"]
    assert rows(cfg, "SELECT outcome FROM messages") == [("late",)]
    assert rows(cfg, "SELECT code FROM findings") == [("LATE",)]
    assert reprocess_and_poll(cfg, uids=[1]) == [
        "INBOX uid 1: late -> processed (reply already sent: not sent again)"]
    poll(cfg)
    assert len(smtp_server.messages) == 1
    assert rows(cfg, "SELECT kind, state FROM outbox") == [("receipt", "sent")]


def test_a_crash_while_reprocessing_leaves_the_store_consistent_and_the_next_run_completes(
        imap_account, smtp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed inside a message's transaction, nothing of it is changed; killed between two messages, the first
    is done and the second not; the next run completes both and each gets exactly one receipt."""
    imap_account.append(district_mail(0, "云龙区", shared_agency=False), on_time())
    imap_account.append(district_mail(1, "泉山区", shared_agency=False), on_time())
    cfg = config_for(imap_account, smtp_server, tmp_path)
    record_as_errors(cfg, monkeypatch)
    before = rows(cfg, "SELECT * FROM messages ORDER BY id")
    assert [r[13] for r in before] == ["error", "error"]

    proc = run_cli(cfg, tmp_path, "--outcome", "error", failpoint="reprocess_replaced")
    assert proc.returncode == 137, proc.stderr.decode()
    assert rows(cfg, "SELECT * FROM messages ORDER BY id") == before
    assert rows(cfg, "SELECT COUNT(*) FROM attachments") == [(0,)] and rows(cfg, "SELECT * FROM reply_due") == []

    proc = run_cli(cfg, tmp_path, "--outcome", "error", failpoint="after_reprocess_one")
    assert proc.returncode == 137, proc.stderr.decode()
    assert rows(cfg, "SELECT uid, outcome FROM messages ORDER BY uid") == [(1, "processed"), (2, "error")]
    assert [r[0] for r in rows(cfg, "SELECT message_id FROM reply_due")] == [1]
    assert smtp_server.messages == []

    proc = run_cli(cfg, tmp_path, "--outcome", "error")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "INBOX uid 2: error -> processed" in proc.stdout.decode()
    assert rows(cfg, "SELECT uid, outcome FROM messages ORDER BY uid") == [(1, "processed"), (2, "processed")]
    poll(cfg)
    assert sorted(sent(smtp_server)) == sorted([(SENDERS["云龙区"], "receipt", "<d0@example.cn>"),
                                                (SENDERS["泉山区"], "receipt", "<d1@example.cn>")])


def test_reprocess_needs_uids_or_an_outcome_and_names_uids_not_recorded(imap_account, smtp_server,
                                                                        tmp_path: Path) -> None:
    """No selection is refused in one line; a UID that was never recorded is named and the exit code is 1."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    proc = run_cli(cfg, tmp_path)
    assert proc.returncode == 1 and "give UIDs or --outcome" in proc.stderr.decode()
    proc = run_cli(cfg, tmp_path, "7")
    assert proc.returncode == 1 and "INBOX uid 7: not recorded" in proc.stdout.decode()
    assert Outcome.ERROR.value == "error"
