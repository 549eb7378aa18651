"""The shared data types of the pipeline: outcomes, findings, stored messages, projects.

``reports`` may import this module (and nothing else of ``intake``); rules,
merge and the worker pass these plain values between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What happened to a message (spec section 5, message-level outcomes)."""

    PROCESSED = "processed"
    LATE = "late"
    DUPLICATE = "duplicate"
    AUTO_REPLY = "auto_reply"
    UNKNOWN_SENDER = "unknown_sender"
    ERROR = "error"


class Severity(StrEnum):
    REJECT = "reject"
    FIX = "fix"
    REVIEW = "review"
    INFO = "info"  # message-level notes that ask nothing of anyone (OTHER_PROGRAM)


class Status(StrEnum):
    """A project's status, in the spec's precedence order (worst first)."""

    REJECTED = "不予受理"
    NEEDS_FIX = "待补正"
    REVIEW = "待审核"
    ACCEPTED = "受理"


class Code(StrEnum):
    MISSING_FORM = "MISSING_FORM"
    UNREADABLE_FILE = "UNREADABLE_FILE"
    MISSING_FIELD = "MISSING_FIELD"
    BAD_CREDIT_CODE = "BAD_CREDIT_CODE"
    MISMATCH = "MISMATCH"
    FUNDING_OVER_CAP = "FUNDING_OVER_CAP"
    PATENTS_BELOW_THRESHOLD = "PATENTS_BELOW_THRESHOLD"
    NO_IP_ENGINEER = "NO_IP_ENGINEER"
    AGENCY_UNQUALIFIED = "AGENCY_UNQUALIFIED"
    DECLARATION_FAILED = "DECLARATION_FAILED"
    UPGRADE_NOT_ELIGIBLE = "UPGRADE_NOT_ELIGIBLE"
    AGENCY_OVERLIMIT = "AGENCY_OVERLIMIT"
    OVER_QUOTA = "OVER_QUOTA"
    SCANNED_FORM = "SCANNED_FORM"
    BAD_VALUE = "BAD_VALUE"
    DISTRICT_MISMATCH = "DISTRICT_MISMATCH"
    NOT_LOCAL = "NOT_LOCAL"
    REGISTRY_EXCLUDED = "REGISTRY_EXCLUDED"
    REGISTRY_CONFLICT = "REGISTRY_CONFLICT"
    MISSING_ATTACHMENT = "MISSING_ATTACHMENT"
    NOT_CORRECTED = "NOT_CORRECTED"  # set at close-out on a project still 待补正 (spec 10.5)
    # message-level only
    OTHER_PROGRAM = "OTHER_PROGRAM"
    WRONG_CAMPAIGN = "WRONG_CAMPAIGN"
    NO_ATTACHMENTS = "NO_ATTACHMENTS"
    UNRECOGNIZED_FILE = "UNRECOGNIZED_FILE"
    CLOUD_ATTACHMENT = "CLOUD_ATTACHMENT"
    LATE = "LATE"
    UNAUTHENTICATED_SENDER = "UNAUTHENTICATED_SENDER"  # a district's From that its mail server did not vouch for


SEVERITY: dict[Code, Severity] = {
    Code.MISSING_FORM: Severity.FIX,
    Code.UNREADABLE_FILE: Severity.FIX,
    Code.MISSING_FIELD: Severity.FIX,
    Code.BAD_CREDIT_CODE: Severity.FIX,
    Code.MISMATCH: Severity.FIX,
    Code.FUNDING_OVER_CAP: Severity.FIX,
    Code.PATENTS_BELOW_THRESHOLD: Severity.REJECT,
    Code.NO_IP_ENGINEER: Severity.REJECT,
    Code.AGENCY_UNQUALIFIED: Severity.REJECT,
    Code.DECLARATION_FAILED: Severity.REJECT,
    Code.UPGRADE_NOT_ELIGIBLE: Severity.REJECT,
    Code.AGENCY_OVERLIMIT: Severity.REVIEW,
    Code.OVER_QUOTA: Severity.REVIEW,
    Code.SCANNED_FORM: Severity.REVIEW,
    Code.BAD_VALUE: Severity.FIX,
    Code.DISTRICT_MISMATCH: Severity.REVIEW,
    Code.NOT_LOCAL: Severity.REVIEW,
    Code.REGISTRY_EXCLUDED: Severity.REJECT,
    Code.REGISTRY_CONFLICT: Severity.REVIEW,
    Code.MISSING_ATTACHMENT: Severity.REVIEW,
    Code.NOT_CORRECTED: Severity.REJECT,
    Code.OTHER_PROGRAM: Severity.INFO,
    Code.WRONG_CAMPAIGN: Severity.FIX,
    # message-level findings: the severity says who must act
    Code.NO_ATTACHMENTS: Severity.FIX,
    Code.UNRECOGNIZED_FILE: Severity.FIX,
    Code.CLOUD_ATTACHMENT: Severity.REVIEW,
    Code.LATE: Severity.REJECT,
    Code.UNAUTHENTICATED_SENDER: Severity.REVIEW,
}

SEVERITY_LABEL = {Severity.REJECT: "不予受理", Severity.FIX: "需补正", Severity.REVIEW: "待审核",
                  Severity.INFO: "告知"}


@dataclass(frozen=True)
class Finding:
    """One problem, with a sentence in plain Chinese telling the district what to do."""

    code: Code
    message: str
    file: str | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.code]

    @classmethod
    def of(cls, code: Code | str, message: str, file: str | None = None) -> Finding:
        return cls(Code(code), message, file)


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment as recorded: its archive address and what the parsers made of it.

    ``kind`` is a ``parsers.types.DocKind`` value or ``"error"``; ``parsed`` is
    ``SummaryTable.to_dict()`` / ``ApplicationForm.to_dict()`` or ``None``;
    ``error_code``/``error_reason`` come from a ``ParseError`` or a mail-part
    problem. ``path`` is the archived file, relative to the data directory.
    """

    id: int
    filename: str
    sha256: str
    size: int
    sniffed: str
    kind: str
    path: str
    parsed: dict[str, Any] | None = None
    error_code: str | None = None
    error_reason: str | None = None
    container: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """A message as recorded in the store, in UID order for one mailbox."""

    id: int
    uid: int
    message_id: str | None
    sender: str
    district: str | None
    subject: str
    arrival: datetime  # INTERNALDATE, timezone-aware
    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    attachments: tuple[StoredAttachment, ...] = ()
    error: str | None = None


@dataclass
class Project:
    """One project of the master ledger, derived from the stored messages."""

    number: str  # 受理编号, e.g. XZ2024-云龙-001
    district: str
    key: str  # credit code, else normalized applicant name
    values: dict[str, Any]  # canonical fields (spec section 3), the form filling gaps
    project_type: str | None  # 新建 / 升级
    findings: list[Finding] = field(default_factory=list)
    status: Status = Status.ACCEPTED
    converted_invention: float | None = None  # 折算有效发明专利数
    city_share: float = 0.5
    city_amount: float | None = None
    district_amount: float | None = None
    arrival: datetime | None = None  # latest material for this project
    source_uids: list[int] = field(default_factory=list)  # messages its material came from
    form: StoredAttachment | None = None
    formula_text: list[str] = field(default_factory=list)  # columns to write as text
    attachments: tuple[str, ...] = ()  # documents received for it besides the form (合作协议, 信用承诺书)
    # staff decisions (spec 10.4), set by ``intake.decisions.apply_decisions`` on a decided project: the
    # status the rules give (None on an undecided project, whose ``status`` is the rules'), the latest
    # decision on this 受理编号, and whether newer material arrived after it (then ``status`` is the rules')
    auto_status: Status | None = None
    decision: Decision | None = None
    decision_stale: bool = False


REVIEW_STALE_NOTE = "材料已更新，请重新复核"  # 问题说明 of a project whose decision predates its material


@dataclass(frozen=True)
class Decision:
    """A staff decision on a project (spec 10.4), kept for good under its 受理编号.

    ``auto_status`` and ``material_at`` are the project as staff saw it: its 自动判定 and its 来件时间
    (the arrival of its latest material). Material newer than ``material_at`` makes the decision stale.
    """

    id: int
    number: str  # 受理编号
    status: Status
    reason: str
    by: str
    at: datetime
    auto_status: Status | None
    material_at: datetime | None
    source: str = ""  # how it was made: "" (command line) or the workbook's file name


@dataclass(frozen=True)
class FinalResult:
    """One row of 终审结果 (spec 10.5): a project's status as fixed by the close-out."""

    number: str
    district: str
    name: str
    applicant: str
    status: Status
    reason: str
    code: str = ""  # NOT_CORRECTED when the close-out turned 待补正 into 不予受理


@dataclass(frozen=True)
class UnmatchedForm:
    district: str
    filename: str
    uid: int


@dataclass(frozen=True)
class OtherFile:
    """A file received from a district that is not merged: another program's, or another year's (其他来件)."""

    district: str
    uid: int
    filename: str
    recognized_as: str  # Chinese label: 汇总表, 申报书, 盖章汇总表, 扫描件 …
    program: str  # the notice's program it belongs to, "" when it names none
    note: str  # why it is not merged, in Chinese


@dataclass
class Ledger:
    """Everything the workbook and the replies show, derived from the store."""

    projects: list[Project]
    unmatched_forms: list[UnmatchedForm]
    quotas: dict[str, int]  # district -> quota, in config order
    other_files: list[OtherFile] = field(default_factory=list)
    stamped_tables: set[str] = field(default_factory=set)  # districts whose stamped summary table arrived
    decisions: list[Decision] = field(default_factory=list)  # every staff decision ever, oldest first (复核记录)
    final: list[FinalResult] | None = None  # 终审结果 once the close-out ran, else None
    resends: dict[int, list[ReplyInfo]] = field(default_factory=dict)  # staff re-sends per message (store id)


class ReplyKind(StrEnum):
    RECEIPT = "receipt"  # 回执
    LATE = "late"  # 逾期通知
    UPDATE = "update"  # 状态变更通知 (spec 10.6): a district's project changed through something else
    FINAL = "final"  # 结果通知 (spec 10.5): the district's final list after the close-out
    RESEND = "resend"  # a message's reply sent again on a staff's request (spec 10.9), marked 补发


REPLY_LABEL = {ReplyKind.RECEIPT: "回执", ReplyKind.LATE: "逾期通知", ReplyKind.UPDATE: "状态变更通知",
               ReplyKind.FINAL: "结果通知", ReplyKind.RESEND: "补发"}


@dataclass(frozen=True)
class StatusChange:
    """A project's status changed by something other than its own district's message (spec 10.6).

    ``reasons`` are plain Chinese sentences: the findings the project gained, or, when it only
    lost some, what no longer applies.
    """

    number: str  # 受理编号
    district: str
    name: str
    applicant: str
    old: Status
    new: Status
    reasons: tuple[str, ...] = ()


class ReplyState(StrEnum):
    QUEUED = "queued"  # written in the message's transaction, not sent yet
    SENDING = "sending"  # a send was started; on restart, check the Sent folder first
    SENT = "sent"
    FAILED = "failed"  # permanent SMTP refusal, recorded for staff
    DRY_RUN = "dry_run"  # written by --dry-run before version 0.2 (now in a throw-away copy); never sent
    RENDER_FAILED = "render_failed"  # the message is recorded, its reply did not render; tried again each poll
    UNKNOWN = "unknown"  # SMTP lost after DATA: maybe delivered; settled by the Sent folder at the next poll


@dataclass(frozen=True)
class ReplyInfo:
    """The reply owed to one message, as the 来件登记 sheet and `intake status` show it."""

    message_db_id: int
    kind: ReplyKind
    state: ReplyState
    sent_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class NewAttachment:
    """An attachment ready to be recorded (archived already)."""

    filename: str
    content_type: str
    sniffed: str
    sha256: str
    size: int
    path: str
    kind: str
    parsed: dict[str, Any] | None = None
    error_code: str | None = None
    error_reason: str | None = None
    container: str | None = None


@dataclass(frozen=True)
class NewMessage:
    """A message ready to be recorded: everything decided, nothing written yet."""

    folder: str
    uidvalidity: int
    uid: int
    message_id: str | None
    raw_sha256: str
    raw_path: str
    size: int
    sender: str
    sender_name: str
    district: str | None
    subject: str
    arrival: datetime
    outcome: Outcome
    findings: tuple[Finding, ...] = ()
    attachments: tuple[NewAttachment, ...] = ()
    error: str | None = None
    auto_reasons: tuple[str, ...] = ()
    source: str = "imap"
