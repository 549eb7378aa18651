"""The master ledger as a pure function of the stored messages and the config (spec sections 4, 5).

``build_ledger`` reads only what the store recorded: a district's projects are
the rows of its latest on-time summary table, each with the latest on-time
form that matches it; then the per-project rules, the cross-project rules,
statuses and the funding split. Rebuilding from the same messages always gives
the same ledger, so ``intake export`` and every receipt see one truth.

Where the spec is silent:

- Only ``processed`` messages from a configured district that arrived by the
  configured deadline contribute (the deadline is re-checked, so a changed
  config never lets stored late material in).
- 受理编号 follow a project's identity, its credit code or else its folded
  applicant name: a correction that fixes a wrong credit code keeps the number.
  Numbers are given in order of first appearance over the district's tables in
  processing order and never reused. A row with neither code nor name is known by its
  folded project name, else by its row number.
- A form is assigned to the row with its credit code, else its applicant name;
  a form whose text gave neither (a scan, a corrupt file, or a read form
  without those fields) is matched by file name: the row whose credit code or
  folded applicant name the file name contains (the longest name wins), else
  the one row whose name contains the file name (at least 4 characters, so
  ``公司.pdf`` matches nothing).
- The latest matching form wins, readable or not: a scan sent after a readable
  form makes the project ``SCANNED_FORM`` again, as the district's latest word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from intake.config import Config, DistrictConfig
from intake.models import Code, Ledger, Outcome, Project, StoredAttachment, StoredMessage, UnmatchedForm
from intake.rules import (
    AMOUNT_FIELD,
    APPLICANT_FIELD,
    CODE_FIELD,
    FormState,
    ProjectFacts,
    agency_overlimit,
    city_share_for,
    converted_invention,
    funding_split,
    judge,
    normalize_code,
    number,
    over_quota,
    status_of,
)
from parsers.normalize import fold_name
from parsers.types import ApplicationForm, DocKind, SummaryRow, SummaryTable

FORM_TYPES = frozenset({"pdf", "docx"})  # sniffed types a failed file must have to be a would-be form
_FAILED_STATE = {Code.SCANNED_FORM.value: FormState.SCANNED, Code.UNREADABLE_FILE.value: FormState.UNREADABLE}
_MIN_STEM = 4  # shortest file-name stem matched inside an applicant's name


@dataclass(frozen=True)
class _Table:
    uid: int
    arrival: datetime
    attachment: StoredAttachment
    table: SummaryTable


@dataclass(frozen=True)
class _Form:
    """A form as sent: read (``form`` set) or a would-be form that failed (``state`` says how)."""

    uid: int
    arrival: datetime
    attachment: StoredAttachment
    form: ApplicationForm | None
    state: FormState


@dataclass
class _Material:
    tables: list[_Table]
    forms: list[_Form]


# -- public ---------------------------------------------------------------------------


def build_ledger(messages: Sequence[StoredMessage], config: Config) -> Ledger:
    """The ledger from the stored messages (any order; UID order is restored) and the config."""
    material = _collect(messages, config)
    projects: list[Project] = []
    unmatched: list[UnmatchedForm] = []
    for district in config.districts:
        found = material.get(district.name, _Material([], []))
        district_projects, district_unmatched = _district_projects(district, found, config)
        projects += district_projects
        unmatched += district_unmatched
    quotas = {d.name: d.quota for d in config.districts}
    _add_cross_findings(projects, config, quotas)
    for p in projects:
        p.status = status_of(p.findings)
    return Ledger(projects=projects, unmatched_forms=unmatched, quotas=quotas)


def district_view(ledger: Ledger, district: str) -> list[Project]:
    """The district's current projects, in 受理编号 order."""
    return [p for p in ledger.projects if p.district == district]


def unmatched_for(ledger: Ledger, district: str, uid: int | None = None) -> list[UnmatchedForm]:
    """The district's forms that match no row of its current table; only those of message ``uid`` if given."""
    return [u for u in ledger.unmatched_forms if u.district == district and (uid is None or u.uid == uid)]


def project_numbers(tables: Sequence[Sequence[tuple[str, ...]]]) -> list[int]:
    """The numbers of the last table's rows, given every table's row identities in UID order.

    A row keeps the number of the first earlier row that shared an identity
    with it (credit code first, then name); a number appears once per table;
    new rows get the next number, and numbers are never reused.
    """
    by_alias: dict[str, int] = {}
    next_number = 1
    numbers: list[int] = []
    for rows in tables:
        numbers, taken = [], set()
        for aliases in rows:
            known = (by_alias[a] for a in aliases if a in by_alias and by_alias[a] not in taken)
            n = next(known, None)
            if n is None:
                n, next_number = next_number, next_number + 1
            numbers.append(n)
            taken.add(n)
            by_alias.update(dict.fromkeys(aliases, n))
    return numbers


# -- collecting material ---------------------------------------------------------------


def _collect(messages: Sequence[StoredMessage], config: Config) -> dict[str, _Material]:
    """On-time tables and forms per district, in processing order (the store's id: UID order for one
    mailbox, and still the order mail arrived after a UIDVALIDITY change or a backfill), then attachment order."""
    out: dict[str, _Material] = {}
    for m in sorted(messages, key=lambda m: m.id):
        if not _contributes(m, config):
            continue
        found = out.setdefault(m.district or "", _Material([], []))
        for a in m.attachments:
            if a.kind == DocKind.SUMMARY_TABLE and a.parsed is not None:
                found.tables.append(_Table(m.uid, m.arrival, a, SummaryTable.from_dict(a.parsed)))
            elif a.kind == DocKind.APPLICATION_FORM and a.parsed is not None:
                form = ApplicationForm.from_dict(a.parsed)
                found.forms.append(_Form(m.uid, m.arrival, a, form, FormState.READ))
            elif a.kind == "error" and a.error_code in _FAILED_STATE and a.sniffed in FORM_TYPES:
                found.forms.append(_Form(m.uid, m.arrival, a, None, _FAILED_STATE[a.error_code]))
    return out


def _contributes(m: StoredMessage, config: Config) -> bool:
    return (
        m.outcome == Outcome.PROCESSED
        and m.district is not None
        and config.district(m.district) is not None
        and m.arrival <= config.campaign.deadline
    )


# -- identities and matching --------------------------------------------------------------


def _aliases(row: SummaryRow) -> tuple[str, ...]:
    """A row's identities, strongest first: ``code:…``, ``name:…``; fallbacks when both are blank."""
    code = normalize_code(row.values.get(CODE_FIELD))
    name = fold_name(row.values.get(APPLICANT_FIELD))
    aliases = ((f"code:{code}",) if code else ()) + ((f"name:{name}",) if name else ())
    if aliases:
        return aliases
    title = fold_name(row.values.get("项目名称"))
    return (f"project:{title}",) if title else (f"row:{row.row_number}",)


def project_key(values: dict[str, Any], row_number: int = 0) -> str:
    """The spec's project key within a district: the credit code, else the folded applicant name."""
    return (
        normalize_code(values.get(CODE_FIELD))
        or fold_name(values.get(APPLICANT_FIELD))
        or fold_name(values.get("项目名称"))
        or f"row{row_number}"
    )


@dataclass(frozen=True)
class _RowIndex:
    """The current table's rows, indexed once for matching forms."""

    codes: list[str]
    names: list[str]
    by_code: dict[str, int]
    by_name: dict[str, int]

    @classmethod
    def of(cls, rows: Sequence[SummaryRow]) -> _RowIndex:
        codes = [normalize_code(r.values.get(CODE_FIELD)) for r in rows]
        names = [fold_name(r.values.get(APPLICANT_FIELD)) for r in rows]
        by_code: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for i, (code, name) in enumerate(zip(codes, names, strict=True)):
            if code:
                by_code.setdefault(code, i)
            if name:
                by_name.setdefault(name, i)
        return cls(codes, names, by_code, by_name)


def _match(form: _Form, rows: _RowIndex) -> int | None:
    """The index of the row a form belongs to, or None."""
    if form.form is not None:
        code = normalize_code(form.form.fields.get(CODE_FIELD))
        name = fold_name(form.form.fields.get(APPLICANT_FIELD))
        index = rows.by_code.get(code) if code else None
        if index is None and name:
            index = rows.by_name.get(name)
        if index is not None or code or name:
            return index
    return _match_file_name(form.attachment.filename, rows)


def _stem(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _suffix = base.rpartition(".")
    return stem if dot else base


def _match_file_name(filename: str, rows: _RowIndex) -> int | None:
    """The row whose credit code or applicant name the file name carries (see the module notes)."""
    stem = fold_name(_stem(filename))
    if not stem:
        return None
    for i, code in enumerate(rows.codes):
        if code and code.lower() in stem:
            return i
    inside = [i for i, n in enumerate(rows.names) if n and n in stem]
    if inside:
        return max(inside, key=lambda i: len(rows.names[i]))
    around = [i for i, n in enumerate(rows.names) if len(stem) >= _MIN_STEM and stem in n]
    return around[0] if len(around) == 1 else None


# -- projects of one district ----------------------------------------------------------------


def _district_projects(
    district: DistrictConfig, found: _Material, config: Config
) -> tuple[list[Project], list[UnmatchedForm]]:
    if not found.tables:
        return [], [UnmatchedForm(district.name, f.attachment.filename, f.uid) for f in found.forms]
    current = found.tables[-1]
    rows = current.table.rows
    numbers = project_numbers([[_aliases(r) for r in t.table.rows] for t in found.tables])
    index_of = _RowIndex.of(rows)
    chosen: dict[int, _Form] = {}
    unmatched = []
    for form in found.forms:
        index = _match(form, index_of)
        if index is None:
            unmatched.append(UnmatchedForm(district.name, form.attachment.filename, form.uid))
        else:
            chosen[index] = form  # later forms supersede earlier ones
    prefix = f"{config.campaign.number_prefix}-{district.label}-"
    order = sorted(range(len(rows)), key=numbers.__getitem__)
    projects = [
        _project(f"{prefix}{numbers[i]:03d}", district, current, rows[i], chosen.get(i), config)
        for i in order
    ]
    return projects, unmatched


def _facts(row: SummaryRow, table: _Table, form: _Form | None) -> ProjectFacts:
    if form is None:
        return ProjectFacts.build(row.values, table_file=table.attachment.filename)
    reason = form.attachment.error_reason
    if form.form is None:
        return ProjectFacts.build(row.values, form_state=form.state, form_file=form.attachment.filename,
                                  form_reason=reason, table_file=table.attachment.filename)
    return ProjectFacts.build(row.values, form.form.fields, form.form.project_type,
                              form_file=form.attachment.filename, table_file=table.attachment.filename)


def _project(
    number_text: str,
    district: DistrictConfig,
    table: _Table,
    row: SummaryRow,
    form: _Form | None,
    config: Config,
) -> Project:
    facts = _facts(row, table, form)
    values = dict(facts.values)
    share = city_share_for(values, district.city_share)
    city, rest = funding_split(number(values.get(AMOUNT_FIELD)), share)
    used = [table] + ([form] if form else [])
    return Project(
        number=number_text,
        district=district.name,
        key=project_key(values, row.row_number),
        values=values,
        project_type=facts.project_type,
        findings=judge(facts, config.rules),
        converted_invention=converted_invention(values, config.rules),
        city_share=share,
        city_amount=city,
        district_amount=rest,
        arrival=max(u.arrival for u in used),
        source_uids=sorted({u.uid for u in used}),
        form=form.attachment if form else None,
        formula_text=list(row.formula_text),
    )


def _add_cross_findings(projects: list[Project], config: Config, quotas: dict[str, int]) -> None:
    """AGENCY_OVERLIMIT and OVER_QUOTA, judged over every project of the ledger."""
    for extra in (agency_overlimit(projects, config.rules), over_quota(projects, quotas)):
        for p, findings in zip(projects, extra, strict=True):
            p.findings.extend(findings)


class LedgerBuilder:
    """``build_ledger`` kept current message by message, for a poll that renders many replies.

    Each message's documents are read into the district's material once; ``ledger()`` re-derives only the
    districts that changed since the last call, then the cross-district rules. A backlog of n messages
    costs n district rebuilds and n passes over the projects, not n rebuilds of everything.
    """

    def __init__(self, messages: Sequence[StoredMessage], config: Config) -> None:
        self.config = config
        self._material = _collect(messages, config)
        self._districts: dict[str, tuple[list[Project], list[UnmatchedForm]]] = {}

    def add(self, message: StoredMessage) -> None:
        """Take in one more message (recorded after every message already in)."""
        for name, found in _collect([message], self.config).items():
            material = self._material.setdefault(name, _Material([], []))
            material.tables += found.tables
            material.forms += found.forms
            self._districts.pop(name, None)

    def ledger(self) -> Ledger:
        """The same ledger ``build_ledger`` gives for every message added so far."""
        projects: list[Project] = []
        unmatched: list[UnmatchedForm] = []
        for district in self.config.districts:
            if district.name not in self._districts:
                found = self._material.get(district.name, _Material([], []))
                self._districts[district.name] = _district_projects(district, found, self.config)
            district_projects, district_unmatched = self._districts[district.name]
            projects += [replace(p, findings=list(p.findings)) for p in district_projects]
            unmatched += district_unmatched
        quotas = {d.name: d.quota for d in self.config.districts}
        _add_cross_findings(projects, self.config, quotas)
        for p in projects:
            p.status = status_of(p.findings)
        return Ledger(projects=projects, unmatched_forms=unmatched, quotas=quotas)
