"""Chinese wording shared by the ledger and the replies: times, file kinds, statuses.

Kept in one place so a file is described the same way in the 来件登记 sheet and in
the receipt a district reads.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, tzinfo

from intake.models import Outcome, Status, StoredAttachment

# StoredAttachment.kind values (parsers.types.DocKind, which reports may not import)
KIND_LABEL = {
    "summary_table": "汇总表",
    "application_form": "申报书",
    "unrecognized": "无法识别",
    "archive": "压缩包（已解压）",
    "agreement": "合作协议",
    "pledge": "信用承诺书",
    "stamped_table": "盖章汇总表（扫描件）",
}

STATUS_ORDER = (Status.ACCEPTED, Status.NEEDS_FIX, Status.REVIEW, Status.REJECTED)
OUTCOME_TEXT = {  # 处理结果 in 来件登记 (spec 10.7) and in the staff digest
    Outcome.PROCESSED: "已处理", Outcome.LATE: "逾期", Outcome.DUPLICATE: "重复", Outcome.AUTO_REPLY: "自动回复",
    Outcome.UNKNOWN_SENDER: "未知发件人", Outcome.ERROR: "出错",
}


def ledger_time(moment: datetime | None, tz: tzinfo) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in ``tz`` (spec section 6), or ``""`` for no time."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def ledger_datetime(moment: datetime | None, tz: tzinfo) -> datetime | None:
    """``moment`` as a naive date-time in ``tz``: what an Excel date-time cell holds (spec 10.7)."""
    return moment.astimezone(tz).replace(tzinfo=None) if moment else None


def chinese_time(moment: datetime, tz: tzinfo) -> str:
    """``2024年11月8日23时59分`` in ``tz``: how a time reads in a reply (no ``09:12`` mixed in)."""
    local = moment.astimezone(tz)
    return f"{chinese_date(local, tz)}{local.hour}时{local.minute}分"


def chinese_date(moment: datetime, tz: tzinfo) -> str:
    """``2024年11月5日`` in ``tz``: the date a reply is signed with."""
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日"


def attachment_label(att: StoredAttachment, unmatched: Collection[str] = ()) -> str:
    """What a file was recognized as, in words a district office understands."""
    if att.kind == "error":
        reason = att.error_reason or "文件无法解析"
        if att.error_code == "SCANNED_FORM":
            return f"申报书（扫描件，需人工审核：{reason}）"
        return f"无法读取：{reason}"
    if att.kind == "other_program":
        program = (att.parsed or {}).get("program") or "其他项目"
        return f"{program}的材料（已收到并登记，不并入本项目）"
    label = KIND_LABEL.get(att.kind, "无法识别")
    applicant = (att.parsed or {}).get("applicant") if att.kind in ("agreement", "pledge") else None
    if applicant:
        label += f"（{applicant}）"
    if att.kind == "application_form" and att.filename in unmatched:
        label += "，未对应到汇总表中的项目"
    return label


def attachment_line(att: StoredAttachment, unmatched: Collection[str] = ()) -> str:
    """``汇总表.xlsx（汇总表）``, naming the archive a member came from."""
    origin = f"，来自{att.container}" if att.container else ""
    return f"{att.filename}（{attachment_label(att, unmatched)}{origin}）"
