"""Receipts, late notices and 状态变更通知 (spec sections 7 and 10.6), rendered from the templates."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError
from report_factories import DEADLINE, SHANGHAI, attachment, finding, message, project

from intake.models import Code, Outcome, ReplyKind, Status, StatusChange
from reports.replies import RenderedReply, render_reply, render_update, split_contact

CAMPAIGN = "2024年徐州市高价值专利培育计划"
SIGNED = datetime(2024, 11, 5, 17, 30, tzinfo=UTC)  # 6 Nov in Beijing
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
           unmatched: tuple[str, ...] = ("多余.pdf",), templates_dir: Path | None = None,
           **letter: Any) -> RenderedReply:
    return render_reply(
        kind, msg or receipt_message(), district_projects() if projects is None else projects, unmatched,
        campaign=CAMPAIGN, deadline=DEADLINE, tz=SHANGHAI, templates_dir=templates_dir,
        **{"now": SIGNED, **letter},
    )


def changes() -> list[StatusChange]:
    return [
        StatusChange("XZ2024-云龙-003", "云龙区", "大吨位起重机关键技术专利", "徐州重型机械有限公司",
                     Status.ACCEPTED, Status.REVIEW, (finding(Code.AGENCY_OVERLIMIT).message,)),
        StatusChange("XZ2024-云龙-001", "云龙区", "工程机械智能控制专利培育", "徐工集团",
                     Status.REVIEW, Status.ACCEPTED, ("此前的问题已不再存在：合作服务机构超项。",)),
    ]


def update(templates_dir: Path | None = None, **letter: Any) -> RenderedReply:
    return render_update("云龙区", changes(), campaign=CAMPAIGN, deadline=DEADLINE, tz=SHANGHAI,
                         templates_dir=templates_dir, **{"now": SIGNED, **letter})


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
    """The receipt greets the district office and shows arrival and deadline in Asia/Shanghai, in Chinese."""
    text = render().text
    assert text.startswith("云龙区知识产权局：\n")
    assert "你局于2024年11月5日9时2分发送的邮件" in text
    assert "【申报截止时间】\n2024年11月8日23时59分。" in text
    assert "逾期不再受理" in text


@pytest.mark.parametrize("kind", [ReplyKind.RECEIPT, ReplyKind.LATE, ReplyKind.UPDATE])
def test_every_letter_says_ni_ju_and_is_signed_with_the_bureau_and_the_chinese_date(kind: ReplyKind) -> None:
    """A superior writes 你局 (never 贵局), and each letter ends with 徐州市知识产权局 and the date in Beijing."""
    reply = update() if kind is ReplyKind.UPDATE else render(kind)
    for body in (reply.text, reply.html):
        assert "你局" in body and "贵局" not in body
    assert reply.text.rstrip().splitlines()[-2:] == ["徐州市知识产权局", "2024年11月6日"]
    assert "徐州市知识产权局<br>2024年11月6日</p>" in reply.html


@pytest.mark.parametrize("kind", [ReplyKind.RECEIPT, ReplyKind.LATE, ReplyKind.UPDATE])
def test_no_clock_time_is_mixed_into_a_letter(kind: ReplyKind) -> None:
    """Every time reads like 2024年11月5日9时2分: no 09:02 or 23:59 in any part of any letter."""
    reply = update() if kind is ReplyKind.UPDATE else render(kind)
    for body in (reply.text, reply.html.replace("line-height:1.6", "")):
        assert not re.search(r"\d:\d\d", body), re.search(r".{20}\d:\d\d.{20}", body)


@pytest.mark.parametrize("kind", [ReplyKind.RECEIPT, ReplyKind.LATE, ReplyKind.UPDATE])
def test_letters_carry_the_contact_of_the_config(kind: ReplyKind) -> None:
    """campaign.contact gives 联系人 and 电话; without it the notice's 李钦华 0516-69859237 is printed."""
    default = update() if kind is ReplyKind.UPDATE else render(kind)
    assert "李钦华，电话：0516-69859237" in default.text and "李钦华，电话：0516-69859237" in default.html
    contact = "王敏 0516-83800000"
    own = update(contact=contact) if kind is ReplyKind.UPDATE else render(kind, contact=contact)
    assert "王敏，电话：0516-83800000" in own.text and "李钦华" not in own.text + own.html


def test_contact_is_split_into_person_and_phone() -> None:
    """The contact's first word is the person, the rest the phone; Chinese commas separate too."""
    assert split_contact("李钦华 0516-69859237") == ("李钦华", "0516-69859237")
    assert split_contact(" 李钦华，0516-69859237 ") == ("李钦华", "0516-69859237")
    assert split_contact("综合处") == ("综合处", "")


def test_receipt_reminds_of_the_paper_copy_and_where_it_goes() -> None:
    """The receipt repeats the notice: A4, 领导签发, 加盖公章, 装订成册, delivered to paper_address by the deadline."""
    reply = render(paper_address="徐州市泉山区某路1号101室")
    for body in (reply.text, reply.html):
        for words in ("A4纸", "领导签发", "加盖单位公章", "装订成册", "2024年11月8日前", "徐州市泉山区某路1号101室"):
            assert words in body, words
    assert "新安路11号市市场监督管理局218室" in render().text, "the notice's address is the default"


def test_receipt_without_projects_asks_for_the_summary_table() -> None:
    """A district with no projects yet is told to send its summary table."""
    text = render(projects=[]).text
    assert "目前尚未登记你局的申报项目" in text and "共0个项目" not in text


# -- the late notice ----------------------------------------------------------------------


def test_late_notice_gives_the_arrival_and_refuses_the_material() -> None:
    """The late notice says when the mail arrived, that it was after the deadline, and lists its files."""
    late = receipt_message(outcome=Outcome.LATE, findings=(finding(Code.LATE),),
                           arrival=datetime(2024, 11, 8, 16, 0, 1, tzinfo=UTC))
    text = render(ReplyKind.LATE, msg=late, unmatched=()).text
    assert "于2024年11月9日0时0分收到，已超过" in text and "（2024年11月8日23时59分）" in text
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
    assert reply.text == "云龙区知识产权局：截止2024年11月8日23时59分，2个项目\n"
    assert "XZ2024-云龙-001" in reply.html


def test_edited_template_with_an_unknown_name_fails_loudly(tmp_path: Path) -> None:
    """A misspelt variable in an edited template raises instead of sending a blank."""
    (tmp_path / "receipt.txt.j2").write_text("{{ ofice }}", encoding="utf-8")
    with pytest.raises(UndefinedError):
        render(templates_dir=tmp_path)


# -- files of other kinds (spec 10.1, 10.2) ------------------------------------------------


def test_receipt_names_other_programs_files_and_the_attachments_by_kind() -> None:
    """Another program's table is named as received for that program; 合作协议, 信用承诺书 and the
    stamped summary table are named as such (with the applicant when known)."""
    others = (
        attachment("云龙区商标品牌汇总表.xlsx", "other_program", id=11,
                   parsed={"program": "高价值商标品牌培育计划", "year": 2024}),
        attachment("恒达合作协议.pdf", "agreement", id=12, parsed={"applicant": "徐州恒达智能装备有限公司"}),
        attachment("信用承诺书.pdf", "pledge", id=13, parsed={}),
        attachment("汇总表盖章.pdf", "stamped_table", id=14),
    )
    text = render(msg=receipt_message(attachments=others), unmatched=()).text
    assert "云龙区商标品牌汇总表.xlsx —— 高价值商标品牌培育计划的材料（已收到并登记，不并入本项目）" in text
    assert "恒达合作协议.pdf —— 合作协议（徐州恒达智能装备有限公司）" in text
    assert "信用承诺书.pdf —— 信用承诺书" in text
    assert "汇总表盖章.pdf —— 盖章汇总表（扫描件）" in text


# -- 状态变更通知 (spec 10.6) ---------------------------------------------------------------------


def test_update_notice_lists_each_change_with_old_and_new_status_and_reason() -> None:
    """Subject 状态变更通知：<campaign>; every change shows 受理编号, old → new and its reasons, in number order."""
    reply = update()
    assert reply.subject == f"状态变更通知：{CAMPAIGN}"
    text = reply.text
    assert "有2个项目的状态发生了变化" in text
    assert "XZ2024-云龙-003  大吨位起重机关键技术专利\n      牵头申报单位：徐州重型机械有限公司\n" \
           "      状态：受理 → 待审核\n      原因：同一合作服务机构参与了多个项目，由市局审核。" in text
    assert text.index("XZ2024-云龙-001") < text.index("XZ2024-云龙-003")
    assert "状态：待审核 → 受理" in text and "申报截止时间：2024年11月8日23时59分" in text
    assert reply.html.count("<tr>") == 1 + 2 and "background:#FFEB9C\">待审核</td>" in reply.html


def test_update_notice_html_escapes_project_text() -> None:
    """A project name with markup is text in the update notice's HTML."""
    hostile = StatusChange("XZ2024-云龙-009", "云龙区", "<b>x</b>", "<i>y</i>", Status.ACCEPTED, Status.REVIEW,
                           ("<script>z</script>",))
    reply = render_update("云龙区", [hostile], campaign=CAMPAIGN, deadline=DEADLINE, tz=SHANGHAI, now=SIGNED)
    assert "<b>x</b>" not in reply.html and "&lt;b&gt;x&lt;/b&gt;" in reply.html
    assert "<script>" not in reply.html and "<b>x</b>" in reply.text


def test_update_template_can_be_overridden(tmp_path: Path) -> None:
    """update.txt.j2 in templates_dir replaces the built-in notice text."""
    (tmp_path / "update.txt.j2").write_text("{{ office }}{% for c in changes %} {{ c.number }}:{{ c.new }}"
                                           "{% endfor %}", encoding="utf-8")
    assert update(templates_dir=tmp_path).text == "云龙区知识产权局 XZ2024-云龙-001:受理 XZ2024-云龙-003:待审核"
