"""The CLI as an operator types it: ``intake check`` and ``intake import`` against real servers and files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import SENDERS, config_toml, make_config, on_time

from intake.compose import compose
from samples.forms import form_pdf
from samples.projects import sample_project
from samples.tables import summary_table_xlsx


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "intake.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def write_config(tmp_path: Path, imap: dict, smtp: dict) -> Path:
    cfg = make_config(tmp_path / "var", imap=imap, smtp=smtp)
    path = tmp_path / "config.toml"
    path.write_text(config_toml(cfg), encoding="utf-8")
    return path


def test_check_reports_each_step_and_sends_nothing(imap_account, smtp_server, tmp_path: Path) -> None:
    path = write_config(tmp_path, imap_account.mailbox_settings(processed_folder="已处理"),
                        {"host": smtp_server.host, "port": smtp_server.port})
    r = run("check", "--config", str(path))
    lines = r.stdout.splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert [line[:4] for line in lines] == ["[ok]"] * 4
    assert "with ID" in lines[1] and "'已处理' will be created" in lines[1]
    assert "nothing sent" in lines[2] and "render a receipt" in lines[3]
    assert smtp_server.messages == []
    assert "已处理" not in imap_account.folders(), "check must not change the mailbox"
    assert imap_account.password not in r.stdout + r.stderr, "secrets are never printed"


def test_check_names_the_failing_step(imap_account, tmp_path: Path) -> None:
    path = write_config(tmp_path, imap_account.mailbox_settings(), {"host": "127.0.0.1", "port": 9})
    r = run("check", "--config", str(path), env={imap_account.password_env: "wrong-password"})
    lines = r.stdout.splitlines()
    assert r.returncode == 1
    assert lines[1].startswith("[FAIL] IMAP") and lines[2].startswith("[FAIL] SMTP")
    assert "wrong-password" not in r.stdout + r.stderr


def test_import_backfills_eml_files_and_says_where_arrival_came_from(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    path = write_config(tmp_path, {"host": "127.0.0.1", "port": 1, "user": "x@163.com",
                                   "password_env": "INTAKE_IMAP_PASSWORD"}, {"host": "127.0.0.1", "port": 9})
    p = sample_project(0)
    raw = compose(sender=SENDERS["云龙区"], subject="申报材料", message_id="<bf1@example.cn>", arrival=on_time(5),
                  attachments=[("汇总表.xlsx", summary_table_xlsx("云龙区", [p.row])),
                               ("申报书.pdf", form_pdf(p.form))])
    eml = tmp_path / "exported.eml"
    eml.write_bytes(raw)
    no_received = tmp_path / "no-received.eml"
    no_received.write_bytes(raw.split(b"\r\n", 1)[1])

    first = run("import", "--config", str(path), str(eml))
    assert first.returncode == 0, first.stderr
    assert "exported.eml: processed (云龙区), arrival 2024-11-05 10:00:00 from Received header" in first.stdout
    assert first.stdout.strip().endswith("ledger.xlsx")

    again = run("import", "--config", str(path), str(eml), str(no_received))
    assert again.returncode == 1, "a file that could not be imported makes the exit code non-zero"
    assert "exported.eml: duplicate" in again.stdout
    assert "no-received.eml: not imported: no Received header with a time; give --arrival" in again.stdout

    late = run("import", "--config", str(path), "--arrival", "2024-11-09T08:00:00+08:00", str(no_received))
    assert "no-received.eml: duplicate" in late.stdout  # same Message-ID: the bytes differ, the mail does not
