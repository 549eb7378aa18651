"""Pure decisions about one message: its outcome and its message-level findings (spec sections 2, 5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from intake.config import CampaignConfig
from intake.models import Code, Finding, Outcome
from intake.store import NewAttachment
from parsers.programs import OUR_PROGRAM, campaign_year, says_form
from parsers.types import DocKind, MailParts, Problem

REPLIES = {Outcome.PROCESSED, Outcome.LATE}  # outcomes from a district that are answered
PARSED = {Outcome.PROCESSED, Outcome.LATE, Outcome.UNKNOWN_SENDER}  # outcomes whose files are read
_OURS: dict[str, str] = {DocKind.SUMMARY_TABLE: "汇总表", DocKind.APPLICATION_FORM: "申报书"}


def classify(
    parts: MailParts, district: str | None, arrival: datetime, deadline: datetime, seen_before: bool
) -> Outcome:
    """The message's outcome. Automatic mail first: a bounce is ``auto_reply`` whoever sent it."""
    if parts.auto_reasons:
        return Outcome.AUTO_REPLY
    if seen_before:
        return Outcome.DUPLICATE
    if district is None:
        return Outcome.UNKNOWN_SENDER
    if arrival > deadline:
        return Outcome.LATE
    return Outcome.PROCESSED


def message_findings(
    outcome: Outcome, parts: MailParts, attachments: Sequence[NewAttachment], arrival_text: str = "",
    campaign: CampaignConfig | None = None,
) -> tuple[Finding, ...]:
    """Message-level findings: ``LATE`` alone for late mail, else problems with the files sent.

    ``campaign`` names the program and year this intake merges (spec 10.1); without it, the
    notice's 高价值专利培育计划 of any year.
    """
    if outcome is Outcome.LATE:
        return (Finding.of(Code.LATE, f"本邮件于{arrival_text}收到，已超过申报截止时间，逾期材料不予受理。"),)
    if outcome not in PARSED:
        return ()
    found: list[Finding] = []
    # A stranger's note without files is no problem; nor is a message whose body could not be read (said below).
    unread = any(p.code == Code.UNREADABLE_FILE and not p.filename for p in parts.problems)
    if not attachments and not parts.cloud_links and not unread and outcome is Outcome.PROCESSED:
        found.append(Finding.of(Code.NO_ATTACHMENTS, "邮件中没有附件，请将申报汇总表和申报书作为附件发送。"))
    if parts.cloud_links:
        found.append(Finding.of(
            Code.CLOUD_ATTACHMENT,
            "邮件使用了“超大附件”下载链接，工作人员将手动下载核对；建议将文件压缩后直接作为附件发送。",
        ))
    program = campaign.program if campaign else OUR_PROGRAM
    year = campaign_year(campaign.name, campaign.number_prefix) if campaign else None
    for a in attachments:
        foreign = _not_ours(a, program, year)
        if foreign is not None:
            found.append(foreign)
        elif a.error_code == Code.UNREADABLE_FILE:
            found.append(Finding.of(Code.UNREADABLE_FILE, f"文件“{a.filename}”无法读取：{a.error_reason}", a.filename))
        elif a.error_code == Code.SCANNED_FORM and not says_form(a.filename):
            found.append(Finding.of(
                Code.UNRECOGNIZED_FILE,
                f"文件“{a.filename}”是扫描件，文件名未注明是申报书、合作协议、信用承诺书还是汇总表，未能确定用途；"
                "请在文件名中注明材料名称和申报单位（如“某某公司申报书.pdf”）后重新发送。",
                a.filename,
            ))
        elif a.kind == DocKind.SUMMARY_TABLE and a.parsed and a.parsed.get("missing_columns"):
            missing = "、".join(a.parsed["missing_columns"])
            found.append(Finding.of(
                Code.MISSING_FIELD,
                f"汇总表“{a.filename}”缺少以下列：{missing}。请按通知所附汇总表模板补齐后重新发送汇总表。",
                a.filename,
            ))
        elif a.kind == DocKind.UNRECOGNIZED:
            found.append(Finding.of(
                Code.UNRECOGNIZED_FILE,
                f"文件“{a.filename}”既不是申报汇总表也不是申报书，未予处理；如为申报材料，请检查文件内容后重新发送。",
                a.filename,
            ))
    found.extend(_orphan_problems(parts.problems, attachments))
    return tuple(found)


def _not_ours(a: NewAttachment, program: str, year: int | None) -> Finding | None:
    """OTHER_PROGRAM for another program's file, WRONG_CAMPAIGN for ours of another year (spec 10.1)."""
    parsed = a.parsed or {}
    named, named_year = parsed.get("program"), parsed.get("year")
    what = _OURS.get(a.kind)
    if a.kind == DocKind.OTHER_PROGRAM or (what and named and named != program):
        label = parsed.get("recognized_as") or what or "材料"
        if not named:
            return Finding.of(
                Code.OTHER_PROGRAM,
                f"文件“{a.filename}”未注明所属项目，且不含专利数列，未作为{program}汇总表处理；"
                f"如确为{program}汇总表，请使用通知所附模板（含有效专利数等列）重新发送。",
                a.filename,
            )
        return Finding.of(
            Code.OTHER_PROGRAM,
            f"文件“{a.filename}”是{named}的{label}，已登记为其他项目来件，不纳入{program}受理；该项目由市局另行办理。",
            a.filename,
        )
    if what and named_year and year and named_year != year:
        return Finding.of(
            Code.WRONG_CAMPAIGN,
            f"文件“{a.filename}”是{named_year}年的{program}{what}，与本次{year}年申报不符，未予受理；"
            f"请发送{year}年的{what}。",
            a.filename,
        )
    return None


def _orphan_problems(problems: Sequence[Problem], attachments: Sequence[NewAttachment]) -> list[Finding]:
    """Problems of the mail itself (not tied to a recorded file), e.g. an oversized message."""
    named = {a.filename for a in attachments}
    return [
        Finding.of(Code.UNREADABLE_FILE, p.reason, p.filename or None)
        for p in problems
        if p.code == Code.UNREADABLE_FILE and p.filename not in named
    ]
