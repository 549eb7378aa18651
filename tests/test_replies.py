"""Receipts and late notices (spec section 7), rendered from the templates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError
from report_factories import DEADLINE, SHANGHAI, attachment, finding, message, project

from intake.models import Code, Outcome, ReplyKind
from reports.replies import RenderedReply, render_reply

CAMPAIGN = "2024年徐州市高价值专利培育计划"
UNRECOGNIZED = "文件“说明.docx”既不是申报汇总表也不是申报书，未予处理。"


def files() -> tuple[Any, ...]:
    return (
        attachment("云龙区汇总表.xlsx", "summary_table", id=1),
        attachment("徐工集团申报书.pdf", id=2),
        attachment("说明.docx", "unrecognized", id=3),
        attachment("加密.pdf", "error", id=4, error_code="UNREADABLE_FILE",
                   error_reason="文件已加密，无法打开"),
        attachment("扫描.pdf", "error", id=5, error_code="SCANNED_FORM", error_reason="PDF没有文字层"),
        attachment("多余.pdf", id=6, container="材料.zip"),
    )


def receipt_message(**kw: Any) -> Any:
    found = (finding(Code.UNRECOGNIZED_FILE, UNRECOGNIZED, "说明.docx"),)
    base = dict(subject="云龙区高价值专利申报材料", attachments=files(), findings=found,
                arrival=datetime(2024, 11, 5, 1, 2, tzinfo=UTC))
    return message(7, "云龙区", **{**base, **kw})


def district_projects() -> list[Any]:
    return [
        project("XZ2024-云龙-001", name="工程机械智能控制专利培育"),
        project("XZ2024-云龙-002", name="矿山安全监测专利培育", values={"牵头申报单位": "中国矿业大学"},
                findings=[finding(Code.MISMATCH), finding(Code.FUNDING_OVER_CAP)]),
    ]


def render(kind: ReplyKind = ReplyKind.RECEIPT, msg: Any = None, projects: Any = None,
           unmatched: tuple[str, ...] = ("多余.pdf",), templates_dir: Path | None = None) -> RenderedReply:
    return render_reply(
        kind, msg or receipt_message(), district_projects() if projects is None else projects, unmatched,
        campaign=CAMPAIGN, deadline=DEADLINE, tz=SHANGHAI, templates_dir=templates_dir,
    )


# -- subjects ---------------------------------------------------------------------------


def test_subjects_carry_the_reply_kind_and_original_subject() -> None:
    """The subject is 回执：<original> for a receipt and 逾期通知：<original> for a late notice."""
    assert render().subject == "回执：云龙区高价值专利申报材料"
    assert render(ReplyKind.LATE).subject == "逾期通知：云龙区高价值专利申报材料"


def test_empty_or_folded_subject_gives_a_one_line_subject() -> None:
    """An empty subject reads （无主题）, and a folded one is put on one line."""
    assert render(msg=receipt_message(subject="  ")).subject == "回执：（无主题）"
    assert render(msg=receipt_message(subject="材料\r\n 补正")).subject == "回执：材料 补正"


# -- the receipt ------------------------------------------------------------------------


def test_receipt_lists_each_file_with_what_it_was_recognized_as() -> None:
    """Every file of the message is listed with 汇总表, 申报书, 无法识别 or 无法读取 and the reason."""
    text = render().text
    for line in ("云龙区汇总表.xlsx —— 汇总表", "徐工集团申报书.pdf —— 申报书", "说明.docx —— 无法识别",
                 "加密.pdf —— 无法读取：文件已加密，无法打开",
                 "扫描.pdf —— 申报书（扫描件，需人工审核：PDF没有文字层）",
                 "多余.pdf —— 申报书，未对应到汇总表中的项目（来自压缩包 材料.zip）"):
        assert line in text, line


def test_receipt_shows_message_problems_and_unmatched_forms() -> None:
    """The message's own findings and the forms that matched no row are spelled out."""
    text = render().text
    assert UNRECOGNIZED in text
    assert "申报书“多余.pdf”未能对应到汇总表中的任何项目" in text


def test_receipt_lists_the_district_projects_with_status_and_reasons() -> None:
    """Each current project shows its 受理编号, name, applicant, status and every finding's sentence."""
    text = render().text
    assert "共2个项目：受理1个，待补正1个，待审核0个，不予受理0个。" in text
    assert "XZ2024-云龙-001  工程机械智能控制专利培育" in text
    block = "XZ2024-云龙-002  矿山安全监测专利培育\n      牵头申报单位：中国矿业大学\n      状态：待补正"
    assert block in text
    assert f"问题：{finding(Code.MISMATCH).message}" in text
    assert f"问题：{finding(Code.FUNDING_OVER_CAP).message}" in text


def test_receipt_addresses_the_district_and_gives_times_in_shanghai() -> None:
    """The receipt greets the district office and shows arrival and deadline in Asia/Shanghai."""
    text = render().text
    assert text.startswith("云龙区知识产权局：\n")
    assert "已于2024年11月5日 09:02收到" in text
    assert "【申报截止时间】\n2024年11月8日 23:59。" in text
    assert "逾期不再受理" in text and "徐州市知识产权局" in text.rstrip().splitlines()[-1]


def test_receipt_without_projects_asks_for_the_summary_table() -> None:
    """A district with no projects yet is told to send its summary table."""
    text = render(projects=[]).text
    assert "目前尚未登记贵局的申报项目" in text and "共0个项目" not in text


# -- the late notice ----------------------------------------------------------------------


def test_late_notice_gives_the_arrival_and_refuses_the_material() -> None:
    """The late notice says when the mail arrived, that it was after the deadline, and lists its files."""
    late = receipt_message(outcome=Outcome.LATE, findings=(finding(Code.LATE),),
                           arrival=datetime(2024, 11, 8, 16, 0, 1, tzinfo=UTC))
    text = render(ReplyKind.LATE, msg=late, unmatched=()).text
    assert "于2024年11月9日 00:00收到，已超过" in text and "（2024年11月8日 23:59）" in text
    assert "逾期不再受理，本邮件所附材料不予受理" in text
    assert "云龙区汇总表.xlsx —— 汇总表" in text
    assert "目前登记的2个项目" in text
    assert "【本邮件的问题】" not in text and "XZ2024-云龙-001" not in text


# -- HTML -------------------------------------------------------------------------------------


def test_html_escapes_sender_text() -> None:
    """A project name, file name or subject with markup is shown as text in the HTML part."""
    hostile = "<script>alert(1)</script>"
    msg = receipt_message(subject=hostile, attachments=(attachment(f"{hostile}.pdf", id=9),))
    reply = render(msg=msg, projects=[project("XZ2024-云龙-001", name=hostile)], unmatched=())
    assert "<script>" not in reply.html
    assert reply.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert hostile in reply.text


def test_html_has_a_table_row_per_project_with_status_colour() -> None:
    """The HTML receipt is a table of the projects, status cells coloured like the ledger."""
    html = render().html
    assert html.count("<tr>") == 1 + len(files()) + 1 + 2
    assert "background:#FCD5B4\">待补正</td>" in html and "XZ2024-云龙-002" in html


# -- templates the bureau edits -------------------------------------------------------------


def test_templates_dir_overrides_the_builtin_template(tmp_path: Path) -> None:
    """A receipt.txt.j2 in templates_dir replaces the built-in one; others fall back to the package."""
    template = "{{ office }}：截止{{ deadline }}，{{ projects | length }}个项目\n"
    (tmp_path / "receipt.txt.j2").write_text(template, encoding="utf-8")
    reply = render(templates_dir=tmp_path)
    assert reply.text == "云龙区知识产权局：截止2024年11月8日 23:59，2个项目\n"
    assert "XZ2024-云龙-001" in reply.html


def test_edited_template_with_an_unknown_name_fails_loudly(tmp_path: Path) -> None:
    """A misspelt variable in an edited template raises instead of sending a blank."""
    (tmp_path / "receipt.txt.j2").write_text("{{ ofice }}", encoding="utf-8")
    with pytest.raises(UndefinedError):
        render(templates_dir=tmp_path)
