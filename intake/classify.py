"""Pure decisions about one message: its outcome and its message-level findings (spec sections 2, 5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from intake.models import Code, Finding, Outcome
from intake.store import NewAttachment
from parsers.types import DocKind, MailParts, Problem

REPLIES = {Outcome.PROCESSED, Outcome.LATE}  # outcomes from a district that are answered
PARSED = {Outcome.PROCESSED, Outcome.LATE, Outcome.UNKNOWN_SENDER}  # outcomes whose files are read


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
    outcome: Outcome, parts: MailParts, attachments: Sequence[NewAttachment], arrival_text: str = ""
) -> tuple[Finding, ...]:
    """Message-level findings: ``LATE`` alone for late mail, else problems with the files sent."""
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
    for a in attachments:
        if a.error_code == Code.UNREADABLE_FILE:
            found.append(Finding.of(Code.UNREADABLE_FILE, f"文件“{a.filename}”无法读取：{a.error_reason}", a.filename))
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


def _orphan_problems(problems: Sequence[Problem], attachments: Sequence[NewAttachment]) -> list[Finding]:
    """Problems of the mail itself (not tied to a recorded file), e.g. an oversized message."""
    named = {a.filename for a in attachments}
    return [
        Finding.of(Code.UNREADABLE_FILE, p.reason, p.filename or None)
        for p in problems
        if p.code == Code.UNREADABLE_FILE and p.filename not in named
    ]
