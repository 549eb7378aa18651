"""Data types produced by the parsers.

``parsers`` imports nothing else of ours: every type a parser returns lives
here and is plain, JSON-able data (``to_dict``/``from_dict``) so the intake
store can keep parse results in SQLite and the merge can read them back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class ParseError(Exception):
    """A file could not be read. ``reason`` is plain Chinese for a district office.

    ``code`` is the finding code the intake records: ``UNREADABLE_FILE`` for
    corrupt, encrypted, truncated, oversized or unsupported files,
    ``SCANNED_FORM`` for a PDF form without a text layer.
    """

    code = "UNREADABLE_FILE"

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


class ScannedFormError(ParseError):
    """A PDF form with no text layer (and no successful OCR)."""

    code = "SCANNED_FORM"


class DocKind(StrEnum):
    """What an attachment was recognized as, from its content."""

    SUMMARY_TABLE = "summary_table"
    APPLICATION_FORM = "application_form"
    UNRECOGNIZED = "unrecognized"
    ARCHIVE = "archive"  # a container whose members were extracted
    # spec 10.1/10.2; parsed dict keys: program, year, applicant, credit_code (see OtherDocument)
    OTHER_PROGRAM = "other_program"  # a table or form of another of the notice's programs
    AGREEMENT = "agreement"  # 合作协议
    PLEDGE = "pledge"  # 信用承诺书
    STAMPED_TABLE = "stamped_table"  # the district's stamped summary table (盖章扫描件), a PDF or image


@dataclass(frozen=True)
class Problem:
    """Something wrong with a mail part, found while taking the mail apart.

    ``code`` is a spec finding code (``UNREADABLE_FILE``, ``CLOUD_ATTACHMENT``).
    """

    code: str
    filename: str
    reason: str


@dataclass(frozen=True)
class Attachment:
    """One file from a message: a MIME part with a file name, or an archive member.

    ``filename`` is the decoded display name; it is never used as a path.
    ``sniffed`` is the type found from the bytes: ``pdf``, ``xlsx``, ``xlsm``,
    ``xls``, ``docx``, ``doc``, ``zip``, ``rar``, ``7z``, ``text``, ``image``
    or ``unknown``. ``container`` is the archive's name for archive members.
    """

    filename: str
    data: bytes = field(repr=False)
    content_type: str
    sniffed: str
    container: str | None = None


@dataclass(frozen=True)
class MailParts:
    """A raw message taken apart: what intake needs to classify and archive it."""

    message_id: str | None
    subject: str
    from_addr: str  # lower-cased bare address, "" when unparseable
    from_name: str
    date_header: str | None
    auto_reasons: tuple[str, ...]  # why this looks like automatic mail; empty: a person
    attachments: tuple[Attachment, ...]
    problems: tuple[Problem, ...]
    cloud_links: tuple[str, ...]  # NetEase/QQ "超大附件" download links in the body


@dataclass
class SummaryRow:
    """One project row of a summary table.

    ``values`` maps the spec's canonical column names (section 3) to
    normalized values: numbers as ``int`` (integral) or ``float``; 项目类别 as
    ``新建``/``升级``; 是/否 columns as ``是``/``否``; other text trimmed;
    ``None`` when empty. ``formula_text`` names columns whose text starts with
    ``= + - @`` and is not a number: data to be written back as text.
    """

    row_number: int
    values: dict[str, Any]
    formula_text: list[str] = field(default_factory=list)


@dataclass
class SummaryTable:
    filename: str
    sheet: str
    header_row: int
    district: str | None  # from the 填报单位 row when present
    columns: dict[str, str]  # canonical name -> header text as found
    missing_columns: list[str]  # required canonical columns not found
    rows: list[SummaryRow]
    kind: str = DocKind.SUMMARY_TABLE
    program: str | None = None  # the notice's program its title (else file name) names
    year: int | None = None  # the year its title names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SummaryTable:
        d = dict(d)
        d["rows"] = [SummaryRow(**r) for r in d["rows"]]
        return cls(**d)


@dataclass
class ApplicationForm:
    """A parsed application form (申报书).

    ``project_type`` is ``新建`` or ``升级`` from the title page, ``None`` when
    the title does not say. ``fields`` maps the spec's field names (section
    4; the applicant's 统一社会信用代码, the agency's as ``机构统一社会信用代码``)
    to normalized values as in ``SummaryRow``. ``program``/``year`` are what
    its title names; ``attachments`` the documents found as pages inside it
    (``合作协议``, ``信用承诺书``).
    """

    filename: str
    project_type: str | None
    fields: dict[str, Any]
    pages_read: int
    kind: str = DocKind.APPLICATION_FORM
    program: str | None = None
    year: int | None = None
    attachments: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApplicationForm:
        return cls(**d)


@dataclass
class OtherDocument:
    """A file that is no summary table or form of this program, but known for what it is.

    ``kind`` is ``other_program``, ``agreement``, ``pledge`` or ``stamped_table``;
    ``recognized_as`` the Chinese name of the document (汇总表, 申报书, 合作协议,
    信用承诺书, 盖章汇总表); ``program`` the notice's program it belongs to when
    named; ``applicant``/``credit_code`` whom it is about when it says so;
    ``scanned`` when it was known by its file name only (no text layer).
    """

    filename: str
    kind: str
    recognized_as: str
    program: str | None = None
    year: int | None = None
    applicant: str | None = None
    credit_code: str | None = None
    scanned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OtherDocument:
        return cls(**d)


ParsedDocument = SummaryTable | ApplicationForm | OtherDocument | None  # None: unrecognized
