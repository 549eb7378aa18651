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
- A file that failed to parse is a would-be form only when it could be one: a
  scan whose file name says 申报书 (or 申请书), an encrypted or corrupt PDF/Word
  file whose name does not say 合作协议, 承诺书 or 汇总表 (spec 10.2).
- Tables and forms of another program, or of our program but another year than
  the campaign's (the year in ``campaign.name``, else ``number_prefix``), are
  never merged; they are listed in ``Ledger.other_files``. A stamped summary
  table marks its district in ``Ledger.stamped_tables``.
- 合作协议 / 信用承诺书 files are matched to rows like forms and count for the
  project whenever they arrived on time (they are never superseded); pages inside
  the project's current form count too.
- A scan read by OCR (``source == "ocr"``) is matched by its content first, then
  by file name; the rules see it as a scan (``SCANNED_FORM``, nothing judged on
  its values, the registry joined on the row only); its fields fill the row's
  blanks for staff afterwards and its differences from the row are appended to
  the SCANNED_FORM text.
- With ``rules.registry``, the registry is joined once per rebuild over every
  project of the ledger (``Registry.join``) before the rules run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from intake.config import Config, DistrictConfig
from intake.decisions import apply_decisions, apply_final
from intake.models import (
    Code,
    Decision,
    FinalResult,
    Finding,
    Ledger,
    OtherFile,
    Outcome,
    Project,
    StoredAttachment,
    StoredMessage,
    UnmatchedForm,
)
from intake.rules import (
    AMOUNT_FIELD,
    APPLICANT_FIELD,
    CODE_FIELD,
    FormState,
    ProjectFacts,
    _show,
    agency_overlimit,
    city_share_for,
    converted_invention,
    find_mismatches,
    funding_split,
    judge,
    merged_values,
    normalize_code,
    number,
    over_quota,
    status_of,
)
from parsers.normalize import fold_name
from parsers.programs import AGREEMENT, PLEDGE, SUMMARY, attachment_named, campaign_year, says_form
from parsers.types import ApplicationForm, DocKind, OtherDocument, SummaryRow, SummaryTable

FORM_TYPES = frozenset({"pdf", "docx"})  # sniffed types a failed file must have to be a would-be form
_FAILED_STATE = {Code.SCANNED_FORM.value: FormState.SCANNED, Code.UNREADABLE_FILE.value: FormState.UNREADABLE}
_MIN_STEM = 4  # shortest file-name stem matched inside an applicant's name
OCR = "ocr"  # ApplicationForm.source of a scan read by OCR (parsers.forms.OCR_SOURCE)
_NOT_FORMS = frozenset({AGREEMENT, PLEDGE, SUMMARY})  # names that keep an unreadable file from being a form
_ATTACHED = frozenset({DocKind.AGREEMENT, DocKind.PLEDGE})


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


@dataclass(frozen=True)
class _Attached:
    """A 合作协议 or 信用承诺书 sent as a file of its own."""

    uid: int
    arrival: datetime
    attachment: StoredAttachment
    doc: OtherDocument


@dataclass
class _Material:
    tables: list[_Table]
    forms: list[_Form]
    attached: list[_Attached] = field(default_factory=list)
    others: list[OtherFile] = field(default_factory=list)
    stamped: bool = False


@dataclass(frozen=True)
class _Plan:
    """A project before the rules: its row, its form and attachments, its 受理编号."""

    number: str
    district: DistrictConfig
    table: _Table
    row: SummaryRow
    form: _Form | None
    attachments: tuple[str, ...]
    attached: tuple[_Attached, ...] = ()  # the files of its own among them


# -- public ---------------------------------------------------------------------------


def build_ledger(
    messages: Sequence[StoredMessage], config: Config, *, decisions: Sequence[Decision] = (),
    final: Sequence[FinalResult] | None = None,
) -> Ledger:
    """The ledger from the stored messages (any order; UID order is restored) and the config, with the staff's
    ``decisions`` and the close-out's ``final`` list laid over the rules' statuses (``intake.decisions``)."""
    return apply_final(apply_decisions(_rules_ledger(messages, config), decisions), final)


def _rules_ledger(messages: Sequence[StoredMessage], config: Config) -> Ledger:
    material = _collect(messages, config)
    plans: list[_Plan] = []
    unmatched: list[UnmatchedForm] = []
    others: list[OtherFile] = []
    for district in config.districts:
        found = material.get(district.name, _Material([], []))
        district_plans, district_unmatched = _district_plans(district, found, config)
        plans += district_plans
        unmatched += district_unmatched
        others += found.others
    registry = _registry_records(plans, config)
    projects = [_project(plan, records, config) for plan, records in zip(plans, registry, strict=True)]
    quotas = {d.name: d.quota for d in config.districts}
    _add_cross_findings(projects, config, quotas)
    for p in projects:
        p.status = status_of(p.findings)
    stamped = {name for name, m in material.items() if m.stamped}
    return Ledger(projects=projects, unmatched_forms=unmatched, quotas=quotas, other_files=others,
                  stamped_tables=stamped)


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
    year = campaign_year(config.campaign.name, config.campaign.number_prefix)
    for m in sorted(messages, key=lambda m: m.id):
        if not _contributes(m, config):
            continue
        found = out.setdefault(m.district or "", _Material([], []))
        for a in m.attachments:
            _sort_attachment(m, a, found, config.campaign.program, year)
    return out


def _sort_attachment(m: StoredMessage, a: StoredAttachment, found: _Material, program: str, year: int | None) -> None:
    """Put one recorded file where it belongs: our tables and forms, attachments, other files."""
    if a.kind == DocKind.SUMMARY_TABLE and a.parsed is not None:
        table = SummaryTable.from_dict(a.parsed)
        if _belongs(m, a, "汇总表", table.program, table.year, found, program, year):
            found.tables.append(_Table(m.uid, m.arrival, a, table))
    elif a.kind == DocKind.APPLICATION_FORM and a.parsed is not None:
        form = ApplicationForm.from_dict(a.parsed)
        if _belongs(m, a, "申报书", form.program, form.year, found, program, year):
            state = FormState.SCANNED if form.source == OCR else FormState.READ  # OCR: for staff only
            found.forms.append(_Form(m.uid, m.arrival, a, form, state))
    elif a.kind == DocKind.OTHER_PROGRAM and a.parsed is not None:
        doc = OtherDocument.from_dict(a.parsed)
        note = (f"属于{doc.program}，不纳入{program}受理" if doc.program
                else f"未注明所属项目且没有专利数列，未作为{program}汇总表受理")
        found.others.append(OtherFile(m.district or "", m.uid, a.filename, doc.recognized_as, doc.program or "",
                                      note))
    elif a.kind in _ATTACHED and a.parsed is not None:
        found.attached.append(_Attached(m.uid, m.arrival, a, OtherDocument.from_dict(a.parsed)))
    elif a.kind == DocKind.STAMPED_TABLE:
        found.stamped = True
    elif a.kind == "error" and _would_be_form(a):
        found.forms.append(_Form(m.uid, m.arrival, a, None, _FAILED_STATE[a.error_code or ""]))


def _belongs(m: StoredMessage, a: StoredAttachment, label: str, named: str | None, named_year: int | None,
             found: _Material, program: str, year: int | None) -> bool:
    """Whether a table or form is of this campaign; if not, it is listed among the other files."""
    if named and named != program:
        note = f"属于{named}，不纳入{program}受理"
    elif named_year and year and named_year != year:
        note = f"为{named_year}年材料，与本次{year}年申报不符，未予受理"
    else:
        return True
    found.others.append(OtherFile(m.district or "", m.uid, a.filename, label, named or program, note))
    return False


def _would_be_form(a: StoredAttachment) -> bool:
    """A file that failed to parse and stands for a 申报书: a scan named so, or an unreadable PDF/Word file
    whose name does not say it is an attachment or a summary table."""
    if a.error_code not in _FAILED_STATE or a.sniffed not in FORM_TYPES:
        return False
    if a.error_code == Code.SCANNED_FORM.value:
        return says_form(a.filename)
    return attachment_named(a.filename) not in _NOT_FORMS


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
    fields = form.form.fields if form.form is not None else {}
    index = _match_by(fields.get(CODE_FIELD), fields.get(APPLICANT_FIELD), form.attachment.filename, rows)
    if index is None and form.form is not None and form.form.source == OCR:  # OCR may misread: the name next
        return _match_file_name(form.attachment.filename, rows)
    return index


def _match_by(code_value: Any, name_value: Any, filename: str, rows: _RowIndex) -> int | None:
    """The row with this credit code, else this applicant name; with neither given, by file name."""
    code, name = normalize_code(code_value), fold_name(name_value)
    index = rows.by_code.get(code) if code else None
    if index is None and name:
        index = rows.by_name.get(name)
    if index is not None or code or name:
        return index
    return _match_file_name(filename, rows)


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


def _district_plans(
    district: DistrictConfig, found: _Material, config: Config
) -> tuple[list[_Plan], list[UnmatchedForm]]:
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
    attached: dict[int, list[_Attached]] = {}
    for doc in found.attached:
        index = _match_by(doc.doc.credit_code, doc.doc.applicant, doc.attachment.filename, index_of)
        if index is not None:
            attached.setdefault(index, []).append(doc)
    prefix = f"{config.campaign.number_prefix}-{district.label}-"
    order = sorted(range(len(rows)), key=numbers.__getitem__)
    plans = [
        _Plan(f"{prefix}{numbers[i]:03d}", district, current, rows[i], chosen.get(i),
              _documents(chosen.get(i), {d.doc.recognized_as for d in attached.get(i, [])}, config),
              tuple(attached.get(i, [])))
        for i in order
    ]
    return plans, unmatched


def _documents(form: _Form | None, files: set[str], config: Config) -> tuple[str, ...]:
    """The attached documents a project has (pages of its form, files of their own), required ones first."""
    present = set(files) | set(form.form.attachments if form is not None and form.form is not None else ())
    required = [name for name in config.rules.required_attachments if name in present]
    return (*required, *sorted(present - set(required)))


def _registry_records(plans: Sequence[_Plan], config: Config) -> list[tuple[Any, ...] | None]:
    """Each plan's registry records (joined once over the ledger), or None for all without a registry."""
    registry = config.rules.registry_data
    if registry is None:
        return [None] * len(plans)
    applicants = []
    for plan in plans:
        form = plan.form.form if plan.form is not None and plan.form.state is FormState.READ else None
        fields = form.fields if form is not None else {}  # never an OCR-read scan's values
        values = plan.row.values
        applicants.append((values.get(CODE_FIELD) or fields.get(CODE_FIELD) or "",
                           values.get(APPLICANT_FIELD) or fields.get(APPLICANT_FIELD) or ""))
    return list(registry.join(applicants))


def district_names(district: DistrictConfig) -> tuple[str, ...]:
    """How a form's 所属地区 may name the district: its name, its short name, 经开区 for the development zone."""
    names = [district.name, district.label]
    if "开发区" in district.name:
        names += ["经开区", "开发区", "经济开发区"]
    return tuple(dict.fromkeys(n for n in names if n))


def _facts(plan: _Plan, registry: tuple[Any, ...] | None) -> ProjectFacts:
    row, table, form = plan.row, plan.table, plan.form
    context: dict[str, Any] = dict(district=plan.district.name, district_names=district_names(plan.district),
                                   attachments=plan.attachments, registry=registry,
                                   table_file=table.attachment.filename)
    if form is None:
        return ProjectFacts.build(row.values, **context)
    reason = form.attachment.error_reason
    if form.form is None or form.state is FormState.SCANNED:
        return ProjectFacts.build(row.values, form_state=form.state, form_file=form.attachment.filename,
                                  form_reason=reason, **context)
    return ProjectFacts.build(row.values, form.form.fields, form.form.project_type,
                              form_file=form.attachment.filename, **context)


def _project(plan: _Plan, registry: tuple[Any, ...] | None, config: Config) -> Project:
    facts = _facts(plan, registry)
    values = dict(facts.values)
    share = city_share_for(values, plan.district.city_share)
    city, rest = funding_split(number(values.get(AMOUNT_FIELD)), share)
    used: list[_Table | _Form | _Attached] = [plan.table, *([plan.form] if plan.form else []), *plan.attached]
    findings = judge(facts, config.rules)
    if plan.form is not None and plan.form.form is not None and plan.form.form.source == OCR:
        values, findings = _with_ocr(plan.row, plan.form.form, values, findings)
    return Project(
        number=plan.number,
        district=plan.district.name,
        key=project_key(values, plan.row.row_number),
        values=values,
        project_type=facts.project_type,
        findings=findings,
        converted_invention=converted_invention(values, config.rules),
        city_share=share,
        city_amount=city,
        district_amount=rest,
        arrival=max(u.arrival for u in used),
        source_uids=sorted({u.uid for u in used}),
        form=plan.form.attachment if plan.form else None,
        formula_text=list(plan.row.formula_text),
        attachments=plan.attachments,
    )


def _with_ocr(
    row: SummaryRow, form: ApplicationForm, values: dict[str, Any], findings: list[Finding]
) -> tuple[dict[str, Any], list[Finding]]:
    """A scan read by OCR: its fields fill the row's blanks for staff (after every per-project rule
    and the funding split were judged on the row alone), and where it differs from the row, a note
    is added to the SCANNED_FORM finding's text (review; never a finding of its own)."""
    filled = merged_values(values, form.fields, form.project_type)  # the row's values stay; blanks filled
    differences = find_mismatches(row.values, form.fields, form.project_type)
    if not differences:
        return filled, findings
    note = "；".join(f"{d.field}：汇总表{_show(d.field, d.row_value)}，OCR识别为{_show(d.field, d.form_value)}"
                    for d in differences)
    text = f"OCR识别结果与汇总表不一致（仅供人工核对）：{note}。"
    return filled, [replace(f, message=f"{f.message}\n{text}") if f.code is Code.SCANNED_FORM else f
                    for f in findings]


def _add_cross_findings(projects: list[Project], config: Config, quotas: dict[str, int]) -> None:
    """AGENCY_OVERLIMIT and OVER_QUOTA, judged over every project of the ledger."""
    for extra in (agency_overlimit(projects, config.rules), over_quota(projects, quotas)):
        for p, findings in zip(projects, extra, strict=True):
            p.findings.extend(findings)


class LedgerBuilder:
    """``build_ledger`` kept current message by message, for a poll that renders many replies.

    Each message's documents are read into the district's material once; ``ledger()`` re-derives only the
    districts that changed since the last call (their plans, registry records and per-project rules), then
    the cross-district rules. A backlog of n messages costs n district rebuilds and n passes over the
    projects, not n rebuilds of everything.
    """

    def __init__(
        self, messages: Sequence[StoredMessage], config: Config, *, decisions: Sequence[Decision] = (),
        final: Sequence[FinalResult] | None = None,
    ) -> None:
        self.config = config
        self.decisions, self.final = decisions, final
        self._material = _collect(messages, config)
        self._districts: dict[str, tuple[list[Project], list[UnmatchedForm]]] = {}

    def add(self, message: StoredMessage) -> None:
        """Take in one more message (recorded after every message already in)."""
        for name, found in _collect([message], self.config).items():
            material = self._material.setdefault(name, _Material([], []))
            material.tables += found.tables
            material.forms += found.forms
            material.attached += found.attached
            material.others += found.others
            material.stamped = material.stamped or found.stamped
            self._districts.pop(name, None)

    def ledger(self) -> Ledger:
        """The same ledger ``build_ledger`` gives for every message added so far."""
        projects: list[Project] = []
        unmatched: list[UnmatchedForm] = []
        others: list[OtherFile] = []
        for district in self.config.districts:
            found = self._material.get(district.name, _Material([], []))
            if district.name not in self._districts:
                plans, district_unmatched = _district_plans(district, found, self.config)
                records = _registry_records(plans, self.config)
                self._districts[district.name] = (
                    [_project(plan, r, self.config) for plan, r in zip(plans, records, strict=True)],
                    district_unmatched)
            district_projects, district_unmatched = self._districts[district.name]
            projects += [replace(p, findings=list(p.findings)) for p in district_projects]
            unmatched += district_unmatched
            others += found.others
        quotas = {d.name: d.quota for d in self.config.districts}
        _add_cross_findings(projects, self.config, quotas)
        for p in projects:
            p.status = status_of(p.findings)
        stamped = {name for name, m in self._material.items() if m.stamped}
        ledger = Ledger(projects=projects, unmatched_forms=unmatched, quotas=quotas, other_files=others,
                        stamped_tables=stamped)
        return apply_final(apply_decisions(ledger, self.decisions), self.final)
