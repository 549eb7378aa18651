"""Staff in control, through real polls (Dovecot + aiosmtpd): a decision reaches the district (状态变更通知,
later receipts), the close-out's 结果通知 go out once, and a reply can be sent again marked 补发."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from support import SENDERS, config_toml, make_config, on_time

from intake.closeout import CloseRefused, close
from intake.compose import compose
from intake.config import Config
from intake.models import ReplyKind, ReplyState, Status
from intake.resend import ResendRefused, queue_resend, resend_subject
from intake.review import review_one
from intake.store import Store
from intake.worker import Worker
from samples.forms import form_pdf
from samples.projects import SampleProject, sample_project
from samples.tables import summary_table_xlsx

AFTER_DEADLINE = datetime(2024, 11, 9, 9, 0, tzinfo=UTC)
SHARED = sample_project(0).row["合作服务机构"]


def config_for(account: Any, smtp: Any, tmp_path: Path) -> Config:
    return make_config(tmp_path / "var", imap=account.mailbox_settings(),
                       smtp={"host": smtp.host, "port": smtp.port})


def district_mail(n: int, district: str, projects: list[SampleProject], day: int,
                  forms: bool = True) -> tuple[bytes, datetime]:
    files = [(f"{district}申报汇总表.xlsx", summary_table_xlsx(district, [p.row for p in projects]))]
    if forms:
        files += [(f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"]))
                  for p in projects]
    raw = compose(sender=SENDERS[district], sender_name=f"{district}知识产权局", subject=f"{district}申报材料",
                  attachments=files, message_id=f"<sc{n}@example.cn>", arrival=on_time(day))
    return raw, on_time(day)


def poll(cfg: Config, **kw: Any) -> Any:
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store, **kw).poll()


def sent(smtp: Any) -> list[tuple[str, str, EmailMessage]]:
    return [(c.rcpt_tos[0], c.message["X-Intake-Outcome"], c.message) for c in smtp.messages]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def store_of(cfg: Config) -> Store:
    return Store(cfg.paths.data_dir / "intake.db")


def sheet(cfg: Config, title: str) -> list[dict[str, Any]]:
    rows = list(load_workbook(cfg.paths.data_dir / "ledger.xlsx")[title].iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def sharing_districts(imap_account: Any, cfg: Config) -> None:
    """云龙区 and 泉山区 each send one project with the same agency: both 待审核; one poll sends both receipts and
    a 状态变更通知 to 云龙区 (its receipt said 受理)."""
    imap_account.append_many([
        district_mail(1, "云龙区", [sample_project(0, district="云龙区")], 4),
        district_mail(2, "泉山区", [sample_project(1, district="泉山区").with_values(合作服务机构=SHARED)], 5),
    ])
    poll(cfg)


# -- a decision reaches the district ---------------------------------------------------------------


def test_a_decision_sends_one_update_notice_at_the_next_poll_and_later_receipts_show_it(
        imap_account: Any, smtp_server: Any, tmp_path: Path) -> None:
    """Staff decide 云龙区's 待审核 project 受理: the next poll sends 云龙区 one 状态变更通知 (待审核 → 受理, with the
    复核意见), 泉山区 nothing; a poll after it sends nothing; 云龙区's next receipt says 受理 with the 复核意见, and
    once newer material for the project arrived, the rules' status again."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    sharing_districts(imap_account, cfg)
    assert sorted(kind for _, kind, _ in sent(smtp_server)) == ["receipt", "receipt", "update"]
    with store_of(cfg) as store:
        review_one(store, cfg, "XZ2024-云龙-001", "受理", "该机构仅实际服务本项目", "王审核", datetime.now(UTC))
    summary = poll(cfg)
    assert summary.sent == 1
    to, kind, notice = sent(smtp_server)[3]
    assert (to, kind) == (SENDERS["云龙区"], "update")
    text = text_of(notice)
    assert "XZ2024-云龙-001" in text and "状态：待审核 → 受理" in text and "该机构仅实际服务本项目" in text
    assert poll(cfg).sent == 0

    question = compose(sender=SENDERS["云龙区"], subject="询问进度", body="请问审核进度", message_id="<sc9@example.cn>",
                       arrival=on_time(6))
    imap_account.append(question, on_time(6))
    poll(cfg)
    receipt = sent(smtp_server)[4][2]
    assert receipt["X-Intake-Outcome"] == "receipt"
    assert "状态：受理" in text_of(receipt) and "市局复核意见：该机构仅实际服务本项目" in text_of(receipt)

    imap_account.append(*district_mail(3, "云龙区", [sample_project(0, district="云龙区")], 7, forms=False))
    poll(cfg)
    receipt = sent(smtp_server)[5][2]
    assert receipt["X-Intake-Outcome"] == "receipt"
    # the new table is newer material: the decision is stale, the receipt shows the rules' status again
    assert "状态：待审核" in text_of(receipt)


def test_two_decisions_in_one_poll_make_one_notice_per_district(imap_account: Any, smtp_server: Any,
                                                                 tmp_path: Path) -> None:
    """Decisions on three projects of two districts before one poll: one notice to each district listing its
    changes, never two."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(*district_mail(1, "云龙区", [sample_project(0, district="云龙区"),
                                                    sample_project(2, district="云龙区")], 4))
    imap_account.append(*district_mail(2, "泉山区", [sample_project(1, district="泉山区").with_values(
        合作服务机构=SHARED)], 5))
    poll(cfg)
    before = len(smtp_server.messages)
    with store_of(cfg) as store:
        now = datetime.now(UTC)
        review_one(store, cfg, "XZ2024-云龙-001", "受理", "核实", "王审核", now)
        review_one(store, cfg, "XZ2024-云龙-002", "不予受理", "重复申报", "王审核", now)
        review_one(store, cfg, "XZ2024-泉山-001", "不予受理", "机构超限", "王审核", now)
    poll(cfg)
    notices = [(to, m) for to, kind, m in sent(smtp_server)[before:] if kind == "update"]
    assert sorted(to for to, _ in notices) == sorted([SENDERS["云龙区"], SENDERS["泉山区"]])
    yl = text_of(next(m for to, m in notices if to == SENDERS["云龙区"]))
    assert "XZ2024-云龙-001" in yl and "XZ2024-云龙-002" in yl and "受理 → 不予受理" in yl
    assert poll(cfg).sent == 0


# -- close-out ------------------------------------------------------------------------------------------


def mixed_districts(imap_account: Any, cfg: Config) -> None:
    """云龙区: one project 受理 and one 待补正 (no form); 泉山区: one 受理."""
    imap_account.append_many([
        district_mail(1, "云龙区", [sample_project(0, district="云龙区")], 4),
        district_mail(2, "泉山区", [sample_project(1, district="泉山区")], 5),
    ])
    poll(cfg)
    imap_account.append(*district_mail(3, "云龙区", [sample_project(0, district="云龙区"),
                                                    sample_project(2, district="云龙区")], 6, forms=False))
    poll(cfg)


def test_close_is_refused_before_the_deadline(imap_account: Any, smtp_server: Any, tmp_path: Path) -> None:
    """Before the deadline nothing is closed."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    with store_of(cfg) as store, pytest.raises(CloseRefused, match="has not passed"):
        close(store, cfg, on_time(8))
    with store_of(cfg) as store:
        assert store.closeout() is None


def test_close_turns_needs_fix_into_not_corrected_and_sends_one_result_per_district_once(
        imap_account: Any, smtp_server: Any, tmp_path: Path) -> None:
    """待补正 becomes 不予受理 (NOT_CORRECTED, 逾期未补正), 受理 stays; 终审结果 lists every project; the next poll
    sends one 结果通知 to each district (subject, X-Intake-Outcome: final; one without projects is told so);
    closing again changes and sends nothing."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    mixed_districts(imap_account, cfg)
    before = len(smtp_server.messages)
    with store_of(cfg) as store:
        result = close(store, cfg, AFTER_DEADLINE)
        Worker(cfg, store).write_ledger()
    assert result.closed and "queued 4 结果通知" in result.lines[-1]
    final = {r["受理编号"]: r for r in sheet(cfg, "终审结果")}
    assert list(next(iter(final.values()))) == ["受理编号", "区县", "项目名称", "牵头申报单位", "最终状态", "原因"]
    assert final["XZ2024-云龙-001"]["最终状态"] == "受理" and final["XZ2024-泉山-001"]["最终状态"] == "受理"
    assert final["XZ2024-云龙-002"]["最终状态"] == "不予受理"
    assert final["XZ2024-云龙-002"]["原因"].startswith("逾期未补正")
    ledger_row = next(r for r in sheet(cfg, "项目台账") if r["受理编号"] == "XZ2024-云龙-002")
    assert ledger_row["状态"] == "不予受理" and "NOT_CORRECTED" in ledger_row["问题代码"]

    assert poll(cfg).sent == 4
    results = [(to, m) for to, kind, m in sent(smtp_server)[before:] if kind == "final"]
    assert sorted(to for to, _ in results) == sorted(SENDERS.values()), "every district, once"
    yl = next(m for to, m in results if to == SENDERS["云龙区"])
    assert yl["Subject"] == f"结果通知：{cfg.campaign.name}"
    assert "XZ2024-云龙-002" in text_of(yl) and "最终状态：不予受理" in text_of(yl)
    gl = next(m for to, m in results if to == SENDERS["鼓楼区"])
    assert "未收到你局按时报送的申报项目" in text_of(gl)

    with store_of(cfg) as store:
        again = close(store, cfg, AFTER_DEADLINE)
    assert not again.closed and "nothing changed, nothing sent" in again.lines[0]
    assert poll(cfg).sent == 0 and len(smtp_server.messages) == before + 4


def test_undecided_review_projects_stop_the_close_out_and_force_leaves_them(
        imap_account: Any, smtp_server: Any, tmp_path: Path) -> None:
    """Two 待审核 projects without a decision: the close-out stops listing both; with a decision on one and
    --force, the other stays 待审核 and the output says so."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    sharing_districts(imap_account, cfg)
    with store_of(cfg) as store:
        with pytest.raises(CloseRefused, match="2 待审核 project") as refused:
            close(store, cfg, AFTER_DEADLINE)
        assert "XZ2024-云龙-001" in str(refused.value) and "XZ2024-泉山-001" in str(refused.value)
        assert store.closeout() is None
        review_one(store, cfg, "XZ2024-云龙-001", "受理", "核实", "王审核", datetime.now(UTC))
        with pytest.raises(CloseRefused, match="1 待审核 project"):
            close(store, cfg, AFTER_DEADLINE)
        forced = close(store, cfg, AFTER_DEADLINE, force=True)
        final = {r.number: r for r in store.final_results() or []}
    assert any("left 待审核: XZ2024-泉山-001" in line for line in forced.lines)
    assert final["XZ2024-云龙-001"].status is Status.ACCEPTED and final["XZ2024-云龙-001"].reason == "市局复核：核实"
    assert final["XZ2024-泉山-001"].status is Status.REVIEW


def test_a_decision_keeps_a_needs_fix_project_from_not_corrected(imap_account: Any, smtp_server: Any,
                                                                  tmp_path: Path) -> None:
    """A decision saying 受理 on a 待补正 project: the close-out keeps it 受理."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    mixed_districts(imap_account, cfg)
    with store_of(cfg) as store:
        review_one(store, cfg, "XZ2024-云龙-002", "受理", "申报书纸质件已收到", "王审核", datetime.now(UTC))
        close(store, cfg, AFTER_DEADLINE)
        final = {r.number: r for r in store.final_results() or []}
    assert final["XZ2024-云龙-002"].status is Status.ACCEPTED and final["XZ2024-云龙-002"].code == ""


@pytest.mark.parametrize("crash_at", ["after_close_queued", "after_sent_copy"])
def test_a_crash_between_queueing_and_sending_sends_each_result_once(
        imap_account: Any, smtp_server: Any, tmp_path: Path, crash_at: str) -> None:
    """`intake close` killed right after queueing, or the poll killed after the first 结果通知 left (its copy
    in the Sent folder, not yet stamped): the next polls send each district's 结果通知 exactly once."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    mixed_districts(imap_account, cfg)
    before = len(smtp_server.messages)
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    env = {**os.environ, "INTAKE_FAILPOINT": crash_at}
    if crash_at == "after_close_queued":
        proc = subprocess.run([sys.executable, "-m", "intake.cli", "close", "--config", str(config_path)],
                              env=env, capture_output=True, timeout=120)
    else:
        with store_of(cfg) as store:
            close(store, cfg, AFTER_DEADLINE)
        proc = subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--config", str(config_path)],
                              env=env, capture_output=True, timeout=120)
    assert proc.returncode == 137, proc.stderr.decode()
    poll(cfg)
    poll(cfg)
    finals = [to for to, kind, _ in sent(smtp_server)[before:] if kind == "final"]
    assert sorted(finals) == sorted(SENDERS.values())
    with store_of(cfg) as store:
        assert {n.state for n in store.notices(list(ReplyState)) if n.kind is ReplyKind.FINAL} == {ReplyState.SENT}


# -- re-sends --------------------------------------------------------------------------------------------


def test_the_resend_subject_marks_the_reply_label() -> None:
    """回执/逾期通知 get （补发） after their label; an already marked subject is not marked twice."""
    assert resend_subject("回执：云龙区申报材料：第二批") == "回执（补发）：云龙区申报材料：第二批"
    assert resend_subject("逾期通知：补充材料") == "逾期通知（补发）：补充材料"
    assert resend_subject("回执（补发）：x") == "回执（补发）：x"


def test_resend_sends_a_marked_copy_with_the_same_threading_recorded_apart(imap_account: Any, smtp_server: Any,
                                                                           tmp_path: Path) -> None:
    """`intake resend <UID>` queues the receipt again; the next poll sends it once: subject 回执（补发）：…, the same
    In-Reply-To/References, X-Intake-Outcome: resend, a Message-ID of its own. The receipt's own record is
    untouched, 来件登记 shows the re-send, and a second resend is a second copy."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    imap_account.append(*district_mail(1, "云龙区", [sample_project(0, district="云龙区")], 4))
    poll(cfg)
    [(_, _, receipt)] = sent(smtp_server)
    with store_of(cfg) as store:
        uid = store.messages()[0].uid
        reply_before = store.replies()
        done = queue_resend(store, cfg.mailbox.folder, uid, datetime.now(UTC))
    assert done.count == 1 and done.to_addr == SENDERS["云龙区"]
    assert poll(cfg).sent == 1
    to, kind, copy = sent(smtp_server)[1]
    assert (to, kind) == (SENDERS["云龙区"], "resend")
    assert copy["Subject"] == receipt["Subject"].replace("回执：", "回执（补发）：", 1)
    assert copy["In-Reply-To"] == receipt["In-Reply-To"] == "<sc1@example.cn>"
    assert copy["References"] == receipt["References"]
    assert copy["Message-ID"] != receipt["Message-ID"]
    assert text_of(copy) == text_of(receipt)
    assert poll(cfg).sent == 0
    with store_of(cfg) as store:
        assert store.replies() == reply_before, "the automatic reply's record is not touched"
        Worker(cfg, store).write_ledger()
    [row] = sheet(cfg, "来件登记")
    assert row["回复类型"] == "回执" and row["补发"].endswith("已发送")

    with store_of(cfg) as store:
        assert queue_resend(store, cfg.mailbox.folder, uid, datetime.now(UTC)).count == 2
    poll(cfg)
    assert [kind for _, kind, _ in sent(smtp_server)] == ["receipt", "resend", "resend"]


def test_resend_without_a_reply_to_send_is_refused(imap_account: Any, smtp_server: Any, tmp_path: Path) -> None:
    """An unknown UID, or mail that got no reply (unknown sender): one line saying why, nothing queued."""
    cfg = config_for(imap_account, smtp_server, tmp_path)
    raw = compose(sender="stranger@elsewhere.cn", subject="广告", message_id="<ad@x.cn>", arrival=on_time(4))
    imap_account.append(raw, on_time(4))
    poll(cfg)
    with store_of(cfg) as store:
        uid = store.messages()[0].uid
        with pytest.raises(ResendRefused, match="has no reply"):
            queue_resend(store, cfg.mailbox.folder, uid, datetime.now(UTC))
        with pytest.raises(ResendRefused, match="no message with UID 999"):
            queue_resend(store, cfg.mailbox.folder, 999, datetime.now(UTC))
        assert store.notices(list(ReplyState)) == []


# -- the commands as staff run them -------------------------------------------------------------------------


def test_the_commands_review_close_resend_and_status(imap_account: Any, smtp_server: Any, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`intake review`, `intake resend`, `intake close --force`, then `intake status` naming all three; the
    poll after them sends the 补发 copy and the 结果通知 (and no 状态变更通知 for a decision the 结果通知 covers)."""
    from intake.cli import main

    cfg = config_for(imap_account, smtp_server, tmp_path)
    sharing_districts(imap_account, cfg)
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_toml(cfg), encoding="utf-8")
    argv = ["--config", str(config_path)]
    assert main(["review", "XZ2024-云龙-001", "--status", "受理", "--reason", "核实", "--by", "王审核", *argv]) == 0
    assert "XZ2024-云龙-001: 待审核 -> 受理 (decided by 王审核)" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: not one of the four statuses
        main(["review", "XZ2024-云龙-001", "--status", "同意", "--reason", "x", *argv])
    capsys.readouterr()
    with store_of(cfg) as store:
        uid = next(m.uid for m in store.messages() if m.district == "泉山区")
    assert main(["resend", str(uid), *argv]) == 0
    assert f"UID {uid}: re-send #1 to {SENDERS['泉山区']} queued" in capsys.readouterr().out
    assert main(["close", *argv]) == 1
    assert "1 待审核 project(s) without a decision" in capsys.readouterr().err
    assert main(["close", "--force", *argv]) == 0
    assert "left 待审核: XZ2024-泉山-001" in capsys.readouterr().out
    assert main(["review", "XZ2024-泉山-001", "--status", "受理", "--reason", "x", *argv]) == 1
    assert "no more decisions are taken" in capsys.readouterr().err
    before = len(smtp_server.messages)
    poll(cfg)
    # the decision's 状态变更通知 is not sent: the 结果通知 already gives the final status
    assert sorted(kind for _, kind, _ in sent(smtp_server)[before:]) == ["final"] * 4 + ["resend"]
    main(["status", *argv])
    out = capsys.readouterr().out
    assert "re-sends (补发): 1 (sent 1)" in out and "staff decisions: 1 on 1 project(s)" in out
    assert "close-out: ran" in out and "(--force), 2 project(s) in 终审结果" in out
    assert "结果通知 (final): sent 4" in out


# -- decisions and reprocessing ------------------------------------------------------------------------------


def test_a_decision_survives_reprocess_and_keeps_its_district_from_a_needless_notice(
        imap_account: Any, smtp_server: Any, tmp_path: Path) -> None:
    """泉山区's project decided 不予受理; 云龙区's mail from a new address (unknown sender) is reprocessed once the
    address is configured and now shares 泉山区's agency. The rules alone would move 泉山区's project 受理 → 待审核,
    but the decision holds (keyed by 受理编号, the messages' rows rewritten under it): 泉山区 gets no 状态变更通知
    and the ledger still shows 不予受理."""
    import dataclasses

    from intake.reprocess import reprocess, select

    cfg = config_for(imap_account, smtp_server, tmp_path)
    new_address = "ylq-new@example.cn"
    shared = [sample_project(1, district="泉山区").with_values(合作服务机构=SHARED)]
    imap_account.append(*district_mail(1, "泉山区", shared, 4))
    raw, _ = district_mail(2, "云龙区", [sample_project(0, district="云龙区")], 5)
    imap_account.append(raw.replace(SENDERS["云龙区"].encode(), new_address.encode()), on_time(5))
    poll(cfg)
    with store_of(cfg) as store:
        review_one(store, cfg, "XZ2024-泉山-001", "不予受理", "重复申报", "王审核", datetime.now(UTC))
    poll(cfg)
    assert [kind for _, kind, _ in sent(smtp_server)] == ["receipt", "update"]  # 受理 → 不予受理, told once

    updated = dataclasses.replace(cfg, districts=[
        dataclasses.replace(d, senders=[*d.senders, new_address]) if d.name == "云龙区" else d
        for d in cfg.districts])
    with store_of(updated) as store:
        worker = Worker(updated, store)
        rows, _ = select(worker.ctx, outcome="unknown_sender")
        [done] = reprocess(worker.ctx, rows)
        assert done.line().endswith("(reply owed: sent by the next poll)"), done.line()
        worker.poll()
        projects = {p.number: p for p in worker.ledger().projects}
    assert [kind for _, kind, _ in sent(smtp_server)[2:]] == ["receipt"], "no 状态变更通知 to 泉山区"
    qs = projects["XZ2024-泉山-001"]
    assert (qs.status, qs.auto_status) == (Status.REJECTED, Status.REVIEW)
