"""Outcome precedence and message-level findings (pure functions of one message)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from intake.classify import classify, message_findings
from intake.models import Code, Outcome
from intake.store import NewAttachment
from parsers.types import MailParts

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2024, 11, 8, 23, 59, 59, tzinfo=CST)
ON_TIME, LATE = DEADLINE, DEADLINE + timedelta(seconds=1)


def parts(*, auto: tuple[str, ...] = (), cloud: tuple[str, ...] = ()) -> MailParts:
    return MailParts(message_id="<m@x>", subject="材料", from_addr="a@x.cn", from_name="", date_header=None,
                     auto_reasons=auto, attachments=(), problems=(), cloud_links=cloud)


def attachment(name: str, kind: str, parsed: dict | None = None, error: tuple[str, str] | None = None):
    return NewAttachment(filename=name, content_type="application/octet-stream", sniffed="xlsx", sha256="0" * 64,
                         size=1, path="x", kind=kind, parsed=parsed, error_code=error[0] if error else None,
                         error_reason=error[1] if error else None)


@pytest.mark.parametrize(("auto", "district", "arrival", "seen", "expected"), [
    (("Auto-Submitted: auto-replied",), "云龙区", LATE, True, Outcome.AUTO_REPLY),
    ((), "云龙区", LATE, True, Outcome.DUPLICATE),
    ((), None, LATE, False, Outcome.UNKNOWN_SENDER),
    ((), "云龙区", LATE, False, Outcome.LATE),
    ((), "云龙区", ON_TIME, False, Outcome.PROCESSED),
])
def test_outcome_precedence(auto, district, arrival, seen, expected) -> None:
    assert classify(parts(auto=auto), district, arrival, DEADLINE, seen) is expected


def test_late_mail_has_only_the_late_finding() -> None:
    bad = attachment("x.xlsx", "error", error=("UNREADABLE_FILE", "损坏"))
    found = message_findings(Outcome.LATE, parts(), [bad], "2024-11-09 00:00:01")
    assert [f.code for f in found] == [Code.LATE] and "2024-11-09 00:00:01" in found[0].message


def test_table_without_required_columns_is_a_finding_naming_them() -> None:
    table = attachment("汇总表.xlsx", "summary_table", parsed={"missing_columns": ["统一社会信用代码", "项目类别"]})
    (finding,) = message_findings(Outcome.PROCESSED, parts(), [table])
    assert finding.code == Code.MISSING_FIELD and finding.file == "汇总表.xlsx"
    assert "统一社会信用代码、项目类别" in finding.message


def test_complete_table_unreadable_and_unrecognized_files() -> None:
    files = [attachment("汇总表.xlsx", "summary_table", parsed={"missing_columns": []}),
             attachment("坏.pdf", "error", error=("UNREADABLE_FILE", "PDF 文件已损坏")),
             attachment("照片.jpg", "unrecognized")]
    found = message_findings(Outcome.PROCESSED, parts(), files)
    assert [(f.code, f.file) for f in found] == [(Code.UNREADABLE_FILE, "坏.pdf"),
                                                 (Code.UNRECOGNIZED_FILE, "照片.jpg")]


def test_no_attachments_unless_a_cloud_link_carries_them() -> None:
    assert [f.code for f in message_findings(Outcome.PROCESSED, parts(), [])] == [Code.NO_ATTACHMENTS]
    cloud = message_findings(Outcome.PROCESSED, parts(cloud=("https://mail.163.com/large/x",)), [])
    assert [f.code for f in cloud] == [Code.CLOUD_ATTACHMENT]


def test_a_strangers_mail_without_files_is_no_problem() -> None:
    """Unknown senders' files are read for staff, but a mail without any is no finding (no 问题清单 row)."""
    assert message_findings(Outcome.UNKNOWN_SENDER, parts(), []) == ()
    bad = [attachment("坏.pdf", "error", error=("UNREADABLE_FILE", "PDF 文件已损坏"))]
    assert [f.code for f in message_findings(Outcome.UNKNOWN_SENDER, parts(), bad)] == [Code.UNREADABLE_FILE]


def test_automatic_mail_gets_no_findings() -> None:
    assert message_findings(Outcome.AUTO_REPLY, parts(auto=("X-Autoreply",)), []) == ()
