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


def test_scan_not_named_is_unrecognized() -> None:
    """A scan whose name says neither 申报书 nor an attachment asks the district to name it (not a form)."""
    named = attachment("恒达申报书.pdf", "error", error=("SCANNED_FORM", "扫描件"))
    unnamed = attachment("恒达.pdf", "error", error=("SCANNED_FORM", "扫描件"))
    assert message_findings(Outcome.PROCESSED, parts(), [named]) == ()
    [finding] = message_findings(Outcome.PROCESSED, parts(), [unnamed])
    assert finding.code is Code.UNRECOGNIZED_FILE and "文件名中注明" in finding.message


def test_agreement_pledge_and_stamped_table_need_no_finding() -> None:
    """合作协议, 信用承诺书 and a stamped 汇总表 are expected files: no message-level finding."""
    files = [attachment(f"{n}.pdf", kind, {"recognized_as": n}) for n, kind in
             (("合作协议", "agreement"), ("信用承诺书", "pledge"), ("汇总表", "stamped_table"))]
    assert message_findings(Outcome.PROCESSED, parts(), files) == ()


def test_other_program_missing_columns_is_not_reported() -> None:
    """Another program's table gets OTHER_PROGRAM only, never MISSING_FIELD for columns it lacks."""
    other = attachment("质押融资汇总表.xlsx", "other_program",
                       {"recognized_as": "汇总表", "program": "质押融资", "missing_columns": ["项目类别"]})
    assert [f.code for f in message_findings(Outcome.PROCESSED, parts(), [other])] == [Code.OTHER_PROGRAM]


def test_late_mail_gets_only_late_whatever_it_holds() -> None:
    """A late message's only finding is LATE, even with another program's file."""
    other = attachment("质押融资汇总表.xlsx", "other_program", {"recognized_as": "汇总表", "program": "质押融资"})
    assert [f.code for f in message_findings(Outcome.LATE, parts(), [other])] == [Code.LATE]
