"""``intake demo`` end to end, and ``intake import`` of the demo's own mail giving the same ledger."""

from __future__ import annotations

import email
import email.policy
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from intake.backfill import import_message
from intake.errors import IntakeError
from intake.store import Store
from intake.worker import Worker
from samples.demo import DEMO_SECRET_ENV, MARKER, demo_config, run_demo

SHEETS = ["项目台账", "来件登记", "问题清单", "区县汇总", "其他来件", "复核记录", "统计"]
# The demo's other-program table, 合作协议 scan and registry exclusion are recognized by the whole-mailbox
# branch (other programs, attachments, registry rules); until it is merged they read as before.
NEEDS_WHOLE_MAILBOX = pytest.mark.xfail(
    importlib.util.find_spec("intake.registry") is None, strict=True,
    reason="needs the recognition of other programs, attachments and the registry rules")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _processes_in(directory: Path) -> list[int]:
    """PIDs whose working directory is inside ``directory`` (the embedded IMAP server runs there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd == directory or directory in cwd.parents:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """One run of the real command, as a user would type it."""
    workdir = tmp_path_factory.mktemp("demo") / "intake-demo"
    proc = subprocess.run([sys.executable, "-m", "intake.cli", "demo", "--dir", str(workdir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, proc.stdout


def test_demo_writes_the_ledger_and_the_receipts(demo_run) -> None:
    workdir, out = demo_run
    ledger = workdir / "var" / "ledger.xlsx"
    assert f"Ledger workbook: {ledger}" in out
    wb = openpyxl.load_workbook(ledger, read_only=True)
    assert wb.sheetnames == SHEETS
    projects = list(wb["项目台账"].iter_rows(values_only=True))[1:]
    statuses = {row[16] for row in projects}
    assert statuses == {"受理", "待补正", "待审核", "不予受理"}, "the demo shows every status"

    kinds = [m["X-Intake-Outcome"] for m in _replies(workdir)]
    assert kinds.count("receipt") == 6 and kinds.count("late") == 1 and kinds.count("update") == 1
    assert len(kinds) == 8
    assert f"saved as .eml in: {workdir / 'receipts'}" in out
    assert "6 receipts (回执), 1 late notices (逾期通知), 1 status-change notices (状态变更通知)" in out
    for district in ("云龙区", "鼓楼区", "泉山区", "徐州经济技术开发区"):
        assert re.search(rf"^\s+{district}\s+\d", out, re.MULTILINE), f"no summary line for {district}"


def _replies(workdir: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted((workdir / "receipts").glob("*.eml"))]


def _text(msg: email.message.EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def test_demo_sends_yunlong_a_status_change_notice_after_quanshan_shares_its_agency(demo_run) -> None:
    """泉山区's mail turns 云龙区's 受理 project 待审核 (shared agency): 云龙区 gets one 状态变更通知
    after its receipt, dated on the demo's day, and 泉山区 gets none."""
    workdir, _ = demo_run
    replies = _replies(workdir)
    [notice] = [m for m in replies if m["X-Intake-Outcome"] == "update"]
    assert notice["To"] == "yunlong-ip@example.cn"
    assert notice["Subject"] == "状态变更通知：2024年徐州市高价值专利培育计划"
    text = _text(notice)
    assert re.search(r"XZ2024-云龙-\d{3}  创新药物制剂专利布局\n.*\n      状态：受理 → 待审核", text)
    assert "共参与2个项目（云龙区1个、泉山区1个）" in text
    assert text.rstrip().endswith("徐州市知识产权局\n2024年11月6日"), "signed when the demo's first poll runs"
    first_receipt = replies[0]
    assert first_receipt["To"] == "yunlong-ip@example.cn" and "你局于2024年11月5日9时12分" in _text(first_receipt)
    assert first_receipt["Date"].endswith("+0800")


@NEEDS_WHOLE_MAILBOX
def test_demo_lists_another_programs_table_the_agreement_scan_and_a_registry_exclusion(demo_run) -> None:
    """云龙区's 高价值商标品牌培育计划 table is listed (其他来件, receipt) and never merged; its scanned
    合作协议 is named as such; 鼓楼区's applicant with an ongoing city project is REGISTRY_EXCLUDED."""
    workdir, _ = demo_run
    wb = openpyxl.load_workbook(workdir / "var" / "ledger.xlsx", read_only=True)
    projects = list(wb["项目台账"].iter_rows(values_only=True))[1:]
    assert len(projects) == 10 and not any("彭城食品" in str(r[3]) for r in projects)
    others = list(wb["其他来件"].iter_rows(values_only=True))[1:]
    assert any(r[0] == "云龙区" and "商标品牌" in r[2] and r[4] == "高价值商标品牌培育计划" for r in others)
    texts = [_text(m) for m in _replies(workdir) if m["To"] == "yunlong-ip@example.cn"]
    assert "项目申报汇总表.xlsx —— 高价值商标品牌培育计划的材料（已收到并登记，不并入本项目）" in texts[0]
    assert "徐州云翔新材料科技有限公司合作协议.pdf —— 合作协议" in "\n".join(texts)
    findings = list(wb["问题清单"].iter_rows(values_only=True))[1:]
    assert any(r[0] == "鼓楼区" and r[2] == "REGISTRY_EXCLUDED" for r in findings)


def test_demo_leaves_no_process_or_port_behind(demo_run) -> None:
    workdir, out = demo_run
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)]
    assert len(ports) == 2
    assert not any(_listening(p) for p in ports)
    assert _processes_in(workdir) == []


def test_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(IntakeError, match="not a demo directory"):
        run_demo(tmp_path, say=lambda _line: None)
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"


def _sheet(path: Path, name: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    """A sheet's rows without the ``drop`` columns; "UID 101：主题" source cells reduced to the subject."""
    rows = list(openpyxl.load_workbook(path, read_only=True)[name].iter_rows(values_only=True))
    keep = [i for i, h in enumerate(rows[0]) if h not in drop]
    uid = re.compile(r"UID \d+：?")
    return [tuple(uid.sub("", v) if isinstance(v, str) else v for v in (r[i] if i < len(r) else None for i in keep))
            for r in rows]


def test_import_of_the_demo_mail_gives_the_same_ledger(demo_run, tmp_path: Path, monkeypatch) -> None:
    """Backfilling the demo's .eml files into a fresh data directory rebuilds the IMAP run's ledger."""
    workdir, _ = demo_run
    assert (workdir / MARKER).exists()
    monkeypatch.setenv(DEMO_SECRET_ENV, "unused")
    cfg = demo_config(tmp_path, 1, 1)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        worker = Worker(cfg, store)
        worker.load()
        for path in sorted((workdir / "sample-mail").glob("*.eml")):
            result = import_message(worker, path.name, path.read_bytes(), None, queue_replies=False)
            assert result.error is None and result.arrival_source == "Received header"
        worker.write_ledger()
    imap_ledger, import_ledger = workdir / "var" / "ledger.xlsx", cfg.paths.data_dir / "ledger.xlsx"
    # 申报书文件 links to the archive of each data directory; the rest must be identical.
    assert _sheet(import_ledger, "项目台账", ("申报书文件",)) == _sheet(imap_ledger, "项目台账", ("申报书文件",))
    assert _sheet(import_ledger, "问题清单") == _sheet(imap_ledger, "问题清单")
    assert _sheet(import_ledger, "区县汇总") == _sheet(imap_ledger, "区县汇总")
    # Messages: same senders, arrivals and outcomes; imports send nothing, and have import numbers as UIDs.
    drop = ("UID", "回复类型", "回复时间")
    assert _sheet(import_ledger, "来件登记", drop) == _sheet(imap_ledger, "来件登记", drop)
