"""The guide's rules (徐知通〔2024〕12号 附件6, spec section 5) as small pure functions.

Every per-project rule has one signature, ``Rule``: it takes the facts of one
project (``ProjectFacts``: the summary row with the form filling gaps, the
form's fields when it was read, the form's state, the row/form mismatches) and
the ``[rules]`` config, and returns its findings, at most one per code. The
cross-project rules (``AGENCY_OVERLIMIT``, ``OVER_QUOTA``) look at every
project of the ledger and return one list of findings per project. Nothing
here touches mail, files or the database.

Where the spec is silent:

- A count or form figure a rule needs but nobody filled in is ``MISSING_FIELD``
  (fix), never a rejection: the district can still send it. The 是/否
  declarations follow the spec literally (``≠ 是`` includes blank).
- 单位性质: 实验室, 技术中心, 研究院, 研究所 (and 科研机构) count as 科研院所;
  a value naming 企业 or a university (大学, 学院, 高等院校) is read as 企业 / 高校.
  Anything else is ``BAD_VALUE`` and is judged by the enterprise thresholds,
  the lenient ones, so a rejection holds whatever the applicant turns out to be.
- A blank PCT申请数 counts as 0.
- ``MISSING_ATTACHMENT`` is judged once the project's form was read: the
  documents are bound in after the form (the notice: 申报书、附件材料顺序装订),
  a missing form is ``MISSING_FORM`` already, and pages bound into a scan or an
  unreadable file cannot be seen (``SCANNED_FORM`` / ``UNREADABLE_FILE`` send it
  to staff or back to the district).
- ``DISTRICT_MISMATCH``: 所属地区 agrees when it contains the sender's name or
  short name (``云龙``, ``徐州市云龙区``); a value that is only the city or
  province (``徐州市``, ``江苏省徐州市``) names no district.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from intake.config import RulesConfig
from intake.models import Code, Finding, Project, Severity, Status
from parsers.normalize import fold_name

if TYPE_CHECKING:
    from intake.registry import RegistryRecord

NEW, UPGRADE = "新建", "升级"
YES, NO = "是", "否"
CODE_FIELD, APPLICANT_FIELD, AGENCY_FIELD = "统一社会信用代码", "牵头申报单位", "合作服务机构"
AMOUNT_FIELD, TYPE_FIELD, STATE_UNIT_FIELD = "申请资助金额", "项目类别", "部省市属事业单位"

#: The summary table's canonical columns (spec section 3): what ``ProjectFacts.values`` holds.
CANONICAL = (
    "序号", "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "部省市属事业单位", "项目类别",
    "技术领域", "合作服务机构", "有效专利数", "有效发明专利数", "PCT申请数", "申请资助金额", "联系人",
    "联系电话", "备注",
)
#: Fields that must not be empty (spec section 5, ``MISSING_FIELD``).
REQUIRED = (
    "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "项目类别", "合作服务机构", "申请资助金额",
    "联系人", "联系电话",
)
#: Fields the summary row and the form must agree on (spec section 5, ``MISMATCH``).
COMPARED = ("申请资助金额", "有效专利数", "有效发明专利数", "PCT申请数", "合作服务机构", "项目类别")
NUMERIC = frozenset({"申请资助金额", "有效专利数", "有效发明专利数", "PCT申请数"})
UNITS = {"申请资助金额": "万元", "有效专利数": "件", "有效发明专利数": "件", "PCT申请数": "件"}
#: Form-only figures a 新建 project is judged on, with the label the form prints.
NEW_FORM_FIGURES = {
    "知识产权工程师人数": "取得知识产权工程师证书人数",
    "机构从业人员数": "服务机构从业人员数",
    "机构专利代理人数": "服务机构相关技术领域专利代理人及检索分析人员数",
    "机构服务收入": "服务机构2023年知识产权服务收入",
}

# -- GB 32100-2015 unified social credit code ---------------------------------

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CHARSET)}
_CREDIT_CHARS = frozenset(CREDIT_CHARSET)


def normalize_code(code: Any) -> str:
    """A credit code as compared: NFKC (full-width to half-width), no whitespace, upper case."""
    if code is None:
        return ""
    return "".join(unicodedata.normalize("NFKC", str(code)).split()).upper()


def credit_check_char(body: str) -> str:
    """The check character for the first 17 characters of a credit code."""
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def credit_code_valid(code: str) -> bool:
    """True when ``code`` is 18 characters of the GB 32100-2015 charset with the right check character."""
    if len(code) != 18 or not _CREDIT_CHARS.issuperset(code):
        return False
    return credit_check_char(code[:17]) == code[17]


def _credit_code_problem(code: str) -> str:
    """Why a (normalized) credit code fails, in words a district office understands."""
    if len(code) != 18:
        return f"应为18位，现为{len(code)}位"
    bad = [c for c in code if c not in _CREDIT_VALUE]
    if bad:
        return f"含有不允许的字符“{''.join(dict.fromkeys(bad))}”"
    return f"末位校验码应为“{credit_check_char(code[:17])}”而不是“{code[17]}”"


# -- plain values ----------------------------------------------------------------

_UNIT_SUFFIXES = ("万元", "元", "件", "人", "个", "项", "名")


def number(value: Any) -> float | None:
    """A figure as a float: numbers as they are, text like ``"50万元"`` or ``"５０"`` parsed, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "")
    for suffix in _UNIT_SUFFIXES:
        text = text.removesuffix(suffix)
    try:
        return float(text)
    except ValueError:
        return None


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def yes_no(value: Any) -> str | None:
    """``是``/``否`` from a form's answer (是/有/已… or 否/无/未…), None when blank or unclear."""
    if isinstance(value, bool):
        return YES if value else NO
    text = unicodedata.normalize("NFKC", str(value or "")).strip()
    if text[:1] in ("是", "有", "已") or text.upper() in ("Y", "YES", "√"):
        return YES
    if text[:1] in ("否", "无", "未", "没") or text.upper() in ("N", "NO", "×"):
        return NO
    return None


def project_type_of(value: Any) -> str | None:
    """新建 / 升级 from a 项目类别 value such as ``新建项目``; None when it says neither (or both)."""
    text = str(value or "")
    new, upgrade = NEW in text, UPGRADE in text
    if new == upgrade:
        return None
    return NEW if new else UPGRADE


ENTERPRISE, UNIVERSITY, INSTITUTE = "企业", "高校", "科研院所"
#: 单位性质 <- words a value may use for it (the guide counts labs and technology centres as institutes).
UNIT_WORDS = (
    (INSTITUTE, ("科研院所", "科研机构", "实验室", "技术中心", "研究院", "研究所", "研究中心")),
    (UNIVERSITY, ("高校", "高等院校", "高等学校", "大学", "学院")),
    (ENTERPRISE, ("企业", "公司")),
)


def unit_kind(value: Any) -> str | None:
    """企业 / 高校 / 科研院所 from a 单位性质 value; None when blank or none of them."""
    text = unicodedata.normalize("NFKC", str(value or "")).strip()
    for kind, words in UNIT_WORDS:
        if any(w in text for w in words):
            return kind
    return None


def fmt(value: float) -> str:
    """A figure for a sentence: ``50``, ``45.5``, ``12.25`` (at most two decimals)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _show(field: str, value: Any) -> str:
    """A row or form value inside a sentence, with its unit."""
    n = number(value) if field in NUMERIC else None
    return f"{fmt(n)}{UNITS[field]}" if n is not None else f"“{value}”"


# -- the facts a rule sees ---------------------------------------------------------


class FormState(StrEnum):
    READ = "read"
    MISSING = "missing"
    SCANNED = "scanned"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Mismatch:
    field: str
    row_value: Any
    form_value: Any


@dataclass(frozen=True)
class ProjectFacts:
    """What the rules know about one project.

    ``values`` are the row's canonical values with the form filling gaps;
    ``form`` is the form's fields, only when the form was read.
    """

    values: Mapping[str, Any]
    project_type: str | None
    form: Mapping[str, Any] | None = None
    form_state: FormState = FormState.MISSING
    form_file: str | None = None
    form_reason: str | None = None
    table_file: str | None = None
    mismatches: tuple[Mismatch, ...] = ()
    district: str | None = None  # the sender's district
    district_names: tuple[str, ...] = ()  # the sender district's names as 所属地区 may write them
    attachments: tuple[str, ...] | None = None  # documents received besides the form; None: not judged
    registry: tuple[RegistryRecord, ...] | None = None  # the bureau's records of the applicant; None: no registry

    @classmethod
    def build(
        cls,
        row: Mapping[str, Any],
        form_fields: Mapping[str, Any] | None = None,
        form_type: str | None = None,
        form_state: FormState | None = None,
        form_file: str | None = None,
        form_reason: str | None = None,
        table_file: str | None = None,
        **context: Any,
    ) -> ProjectFacts:
        """Facts from a summary row and (when read) its form's fields and title-page project type;
        ``context`` sets ``district``, ``district_names``, ``attachments`` and ``registry``."""
        state = form_state or FormState.READ
        if state is FormState.READ and form_fields is None:
            state = FormState.MISSING
        fields = form_fields if state is FormState.READ else None
        values = merged_values(row, fields, form_type)
        return cls(
            values=values,
            project_type=project_type_of(values.get(TYPE_FIELD)),
            form=dict(fields) if fields is not None else None,
            form_state=state,
            form_file=form_file,
            form_reason=form_reason,
            table_file=table_file,
            mismatches=find_mismatches(row, fields, form_type) if fields is not None else (),
            **context,
        )


def _form_value(fields: Mapping[str, Any], form_type: str | None, name: str) -> Any:
    if name == TYPE_FIELD:
        return form_type or fields.get(TYPE_FIELD)
    return fields.get(name)


def merged_values(
    row: Mapping[str, Any], form_fields: Mapping[str, Any] | None, form_type: str | None = None
) -> dict[str, Any]:
    """The row's canonical values, the form filling what the row lacks; 部省市属事业单位 defaults to 否."""
    values = dict(row)
    for name in CANONICAL:
        if is_empty(values.get(name)) and form_fields is not None:
            filler = _form_value(form_fields, form_type, name)
            if not is_empty(filler):
                values[name] = filler
    if is_empty(values.get(STATE_UNIT_FIELD)):
        values[STATE_UNIT_FIELD] = NO
    return values


def _same(field: str, a: Any, b: Any) -> bool:
    if field == TYPE_FIELD:
        return project_type_of(a) == project_type_of(b)
    na, nb = (number(a), number(b)) if field in NUMERIC else (None, None)
    if na is not None and nb is not None:
        return abs(na - nb) < 1e-9
    return fold_name(str(a)) == fold_name(str(b))


def find_mismatches(
    row: Mapping[str, Any], form_fields: Mapping[str, Any], form_type: str | None = None
) -> tuple[Mismatch, ...]:
    """Fields where row and form both have a value and disagree (numbers numerically, names folded)."""
    found = []
    for name in COMPARED:
        a, b = row.get(name), _form_value(form_fields, form_type, name)
        if not is_empty(a) and not is_empty(b) and not _same(name, a, b):
            found.append(Mismatch(name, a, b))
    return tuple(found)


# -- per-project rules ----------------------------------------------------------------

Rule = Callable[[ProjectFacts, RulesConfig], list[Finding]]


def _applicant(f: ProjectFacts) -> str:
    return str(f.values.get(APPLICANT_FIELD) or f.values.get("项目名称") or "该项目")


def missing_form(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """MISSING_FORM: a summary row without a matching form."""
    if f.form_state is not FormState.MISSING:
        return []
    return [Finding.of(
        Code.MISSING_FORM,
        f"汇总表中“{_applicant(f)}”的项目没有收到对应的申报书，请补发申报书（文件名请含申报单位名称）。",
        f.table_file,
    )]


def unreadable_form(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """UNREADABLE_FILE: the project's form could not be read."""
    if f.form_state is not FormState.UNREADABLE:
        return []
    reason = f"（{f.form_reason}）" if f.form_reason else ""
    return [Finding.of(
        Code.UNREADABLE_FILE,
        f"“{_applicant(f)}”的申报书“{f.form_file}”无法读取{reason}，请重新发送可以正常打开的PDF或Word文件。",
        f.form_file,
    )]


def scanned_form(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """SCANNED_FORM: the form is a scan without a text layer; staff check it by hand."""
    if f.form_state is not FormState.SCANNED:
        return []
    return [Finding.of(
        Code.SCANNED_FORM,
        f"“{_applicant(f)}”的申报书“{f.form_file}”是扫描件，无法自动核对，市局将人工审核；"
        "如有可复制文字的PDF版本，请一并发送。",
        f.form_file,
    )]


def patent_verdict(f: ProjectFacts, rules: RulesConfig) -> bool | None:
    """Whether a 新建 project meets the patent threshold; None when a count it needs is blank."""
    academic = _is_academic(f.values.get("单位性质"))
    min_patents = rules.academic_min_patents if academic else rules.enterprise_min_patents
    min_invention = rules.academic_min_invention if academic else rules.enterprise_min_invention
    patents = number(f.values.get("有效专利数"))
    converted = converted_invention(f.values, rules)
    if patents is not None and patents >= min_patents:
        return True
    if converted is not None and converted >= min_invention:
        return True
    if patents is None or number(f.values.get("有效发明专利数")) is None:
        return None
    return False


def _is_academic(kind: Any) -> bool:
    return unit_kind(kind) in (UNIVERSITY, INSTITUTE)


def converted_invention(values: Mapping[str, Any], rules: RulesConfig) -> float | None:
    """折算有效发明专利数 = 有效发明专利数 + pct_weight × PCT申请数; blank counts 0, None when both blank."""
    invention, pct = number(values.get("有效发明专利数")), number(values.get("PCT申请数"))
    if invention is None and pct is None:
        return None
    return (invention or 0) + rules.pct_weight * (pct or 0)


def _missing_figures(f: ProjectFacts, rules: RulesConfig) -> tuple[list[str], list[str]]:
    """Blank row fields and blank form figures that a rule needs."""
    in_row = [name for name in REQUIRED if is_empty(f.values.get(name))]
    if f.project_type == NEW and patent_verdict(f, rules) is None:
        in_row += [n for n in ("有效专利数", "有效发明专利数") if number(f.values.get(n)) is None]
    in_form = []
    if f.form is not None and f.project_type == NEW:
        in_form = [label for name, label in NEW_FORM_FIGURES.items() if number(f.form.get(name)) is None]
    return in_row, in_form


def missing_field(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """MISSING_FIELD: a required field (row, else form) or a figure a rule needs is blank."""
    in_row, in_form = _missing_figures(f, rules)
    if not in_row and not in_form:
        return []
    parts, send = [], []
    if in_row:
        parts.append(f"汇总表未填写{'、'.join(in_row)}")
        send.append("汇总表")
    if in_form:
        parts.append(f"申报书未填写{'、'.join(in_form)}")
        send.append("申报书")
    return [Finding.of(
        Code.MISSING_FIELD,
        f"“{_applicant(f)}”的{'，'.join(parts)}，请补填后重新报送{'和'.join(send)}。",
        f.table_file if in_row else f.form_file,
    )]


def bad_credit_code(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """BAD_CREDIT_CODE: the applicant's credit code fails the GB 32100-2015 check (blank is MISSING_FIELD)."""
    code = normalize_code(f.values.get(CODE_FIELD))
    if not code or credit_code_valid(code):
        return []
    return [Finding.of(
        Code.BAD_CREDIT_CODE,
        f"“{_applicant(f)}”的统一社会信用代码“{code}”{_credit_code_problem(code)}，"
        "请核对营业执照后重新报送汇总表和申报书。",
        f.table_file,
    )]


def mismatch(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """MISMATCH: the summary row and the form disagree on a compared field."""
    if not f.mismatches:
        return []
    detail = "、".join(
        f"{m.field}（汇总表{_show(m.field, m.row_value)}，申报书{_show(m.field, m.form_value)}）"
        for m in f.mismatches
    )
    return [Finding.of(
        Code.MISMATCH,
        f"“{_applicant(f)}”的汇总表与申报书不一致：{detail}，请核对后重新报送一致的汇总表和申报书。",
        f.form_file,
    )]


def funding_over_cap(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """FUNDING_OVER_CAP: 申请资助金额 above the cap of the project's type."""
    amount = number(f.values.get(AMOUNT_FIELD))
    caps = {NEW: rules.cap_new, UPGRADE: rules.cap_upgrade}
    cap = caps.get(f.project_type or "")
    if amount is None or cap is None or amount <= cap:
        return []
    return [Finding.of(
        Code.FUNDING_OVER_CAP,
        f"“{_applicant(f)}”申请资助金额{fmt(amount)}万元超过{f.project_type}项目上限{fmt(cap)}万元，"
        "请核减后重新报送汇总表和申报书。",
        f.table_file,
    )]


def patents_below_threshold(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """PATENTS_BELOW_THRESHOLD: a 新建 project below both patent thresholds of its applicant's kind."""
    if f.project_type != NEW or patent_verdict(f, rules) is not False:
        return []
    academic = _is_academic(f.values.get("单位性质"))
    who, min_p, min_i = (
        ("高校、科研院所", rules.academic_min_patents, rules.academic_min_invention) if academic
        else ("企业", rules.enterprise_min_patents, rules.enterprise_min_invention)
    )
    patents = number(f.values.get("有效专利数")) or 0
    invention = number(f.values.get("有效发明专利数")) or 0
    pct = number(f.values.get("PCT申请数")) or 0
    converted = invention + rules.pct_weight * pct
    return [Finding.of(
        Code.PATENTS_BELOW_THRESHOLD,
        f"“{_applicant(f)}”有效专利{fmt(patents)}件、折算有效发明专利{fmt(converted)}件"
        f"（有效发明专利{fmt(invention)}件＋PCT申请{fmt(pct)}件×{fmt(rules.pct_weight)}），"
        f"未达到{who}新建项目有效专利不少于{fmt(min_p)}件或折算有效发明专利不少于{fmt(min_i)}件的条件，"
        "不予受理；如数据填报有误，请更正后重新报送汇总表和申报书。",
        f.table_file,
    )]


def no_ip_engineer(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """NO_IP_ENGINEER: a 新建 form reports fewer certified IP engineers than required."""
    if f.form is None or f.project_type != NEW:
        return []
    engineers = number(f.form.get("知识产权工程师人数"))
    if engineers is None or engineers >= rules.min_ip_engineers:
        return []
    return [Finding.of(
        Code.NO_IP_ENGINEER,
        f"“{_applicant(f)}”申报书填报取得知识产权工程师证书人数为{fmt(engineers)}人，"
        f"新建项目须至少{rules.min_ip_engineers}人，不予受理；如填报有误，请更正后重新报送申报书。",
        f.form_file,
    )]


def agency_unqualified(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """AGENCY_UNQUALIFIED: a 新建 project's agency is below the staff, agent or revenue minimum."""
    if f.form is None or f.project_type != NEW:
        return []
    checks = (
        ("机构从业人员数", "从业人员", rules.agency_min_staff, "人"),
        ("机构专利代理人数", "相关技术领域专利代理人及检索分析人员", rules.agency_min_agents, "人"),
        ("机构服务收入", "2023年知识产权服务收入", rules.agency_min_revenue, "万元"),
    )
    short = []
    for name, label, minimum, unit in checks:
        value = number(f.form.get(name))
        if value is not None and value < minimum:
            short.append(f"{label}{fmt(value)}{unit}（须不少于{fmt(minimum)}{unit}）")
    if not short:
        return []
    agency = f.values.get(AGENCY_FIELD) or f.form.get(AGENCY_FIELD) or "合作服务机构"
    return [Finding.of(
        Code.AGENCY_UNQUALIFIED,
        f"“{_applicant(f)}”的合作服务机构“{agency}”{'、'.join(short)}，不符合新建项目条件，不予受理；"
        "如填报有误，请更正后重新报送申报书。",
        f.form_file,
    )]


def _answer(value: Any) -> str:
    return yes_no(value) or ("未填写" if is_empty(value) else str(value))


def declaration_failed(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """DECLARATION_FAILED: no 专利密集型产品备案, or 严重失信行为 or 非正常专利申请 declared."""
    if f.form is None:
        return []
    problems = []
    filed = f.form.get("专利密集型产品备案")
    if yes_no(filed) != YES:
        problems.append(f"是否完成专利密集型产品备案为“{_answer(filed)}”")
    if yes_no(f.form.get("严重失信行为")) == YES:
        problems.append("存在严重失信行为")
    if yes_no(f.form.get("非正常专利申请")) == YES:
        problems.append("存在非正常专利申请行为")
    if not problems:
        return []
    return [Finding.of(
        Code.DECLARATION_FAILED,
        f"“{_applicant(f)}”申报书显示{'、'.join(problems)}，不符合申报条件，不予受理；"
        "如填报有误，请更正后重新报送申报书。",
        f.form_file,
    )]


def upgrade_not_eligible(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """UPGRADE_NOT_ELIGIBLE: an 升级 project not accepted at city level, or carrying a provincial project."""
    if f.form is None or f.project_type != UPGRADE:
        return []
    problems = []
    accepted = f.form.get("已通过市级验收")
    if yes_no(accepted) != YES:
        problems.append(f"是否已通过市级高价值专利培育计划项目验收为“{_answer(accepted)}”")
    if yes_no(f.form.get("承担省级项目")) == YES:
        problems.append("承担了省级高价值专利培育计划项目")
    if not problems:
        return []
    return [Finding.of(
        Code.UPGRADE_NOT_ELIGIBLE,
        f"“{_applicant(f)}”申报书显示{'、'.join(problems)}，不符合升级项目申报条件，不予受理；"
        "如填报有误，请更正后重新报送申报书。",
        f.form_file,
    )]


# -- values the guide allows, the applicant's place, attachments (spec 10.2, 10.3) ---------------

#: 是/否 fields: the row's and the form's (the form-only ones are judged only when the form was read).
YES_NO_FIELDS = {
    "部省市属事业单位": "是否部省市属事业单位", "专利密集型产品备案": "是否完成专利密集型产品备案",
    "严重失信行为": "是否存在严重失信行为", "非正常专利申请": "是否存在非正常专利申请行为",
    "已通过市级验收": "是否已通过市级高价值专利培育计划项目验收", "承担省级项目": "是否承担省级高价值专利培育计划项目",
}


def _bad_values(f: ProjectFacts) -> list[str]:
    """Each value outside what the guide allows, quoted."""
    bad = []
    kind = f.values.get("单位性质")
    if not is_empty(kind) and unit_kind(kind) is None:
        bad.append(f"单位性质为“{kind}”（应为企业、高校或科研院所）")
    category = f.values.get(TYPE_FIELD)
    if not is_empty(category) and project_type_of(category) is None:
        bad.append(f"项目类别为“{category}”（应为新建或升级）")
    sources = [f.values] + ([f.form] if f.form is not None else [])
    for name, label in YES_NO_FIELDS.items():
        value = next((v for src in sources if not is_empty(v := src.get(name))), None)
        if value is not None and yes_no(value) is None:
            bad.append(f"{label}为“{value}”（应为是或否）")
    return bad


def bad_value(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """BAD_VALUE: 单位性质, 项目类别 or a 是/否 answer holding something the guide does not allow."""
    bad = _bad_values(f)
    if not bad:
        return []
    return [Finding.of(
        Code.BAD_VALUE,
        f"“{_applicant(f)}”的{'；'.join(bad)}，请按申报指南规定的选项填写后重新报送汇总表和申报书。",
        f.table_file,
    )]


_CITY_PREFIXES = ("江苏省", "江苏", "徐州市", "徐州")


def district_mismatch(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """DISTRICT_MISMATCH: the form's 所属地区 names another district than the one that sent it."""
    if f.form is None or not f.district:
        return []
    stated = fold_name(f.form.get("所属地区"))
    names = [fold_name(n) for n in (f.district, *f.district_names) if n]
    rest = stated
    for prefix in _CITY_PREFIXES:
        rest = rest.removeprefix(prefix)
    if not rest or any(n and n in stated for n in names):
        return []
    return [Finding.of(
        Code.DISTRICT_MISMATCH,
        f"“{_applicant(f)}”申报书所属地区填写为“{f.form.get('所属地区')}”，与报送单位{f.district}不一致，"
        "市局将核实；如填写有误，请更正后重新报送申报书。",
        f.form_file,
    )]


XUZHOU_DIVISION = "3203"


def not_local(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """NOT_LOCAL: a valid credit code whose division code (characters 3–8) names a prefecture other than 徐州."""
    code = normalize_code(f.values.get(CODE_FIELD))
    if not credit_code_valid(code):
        return []
    division = code[2:8]
    if division.startswith(XUZHOU_DIVISION) or division.endswith("0000"):
        return []
    return [Finding.of(
        Code.NOT_LOCAL,
        f"“{_applicant(f)}”的统一社会信用代码“{code}”中的登记机关行政区划码为{division}，不属于徐州市，"
        "市局将核实申报单位是否在本市注册；如代码填写有误，请更正后重新报送汇总表和申报书。",
        f.table_file,
    )]


def missing_attachment(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """MISSING_ATTACHMENT: a document of ``rules.required_attachments`` was not received for the project."""
    if f.attachments is None or f.form_state is not FormState.READ:
        return []
    missing = [name for name in rules.required_attachments if name not in f.attachments]
    if not missing:
        return []
    return [Finding.of(
        Code.MISSING_ATTACHMENT,
        f"“{_applicant(f)}”未收到{'、'.join(missing)}，请补发（可作为单独文件，文件名含申报单位名称，"
        "或附在申报书之后）；市局将审核。",
        f.form_file or f.table_file,
    )]


# -- the bureau's registry of past projects (spec 10.3) -------------------------------------------


def _record_text(r: RegistryRecord) -> str:
    year = f"{r.year}年" if r.year else ""
    return f"{year}{r.level}“{r.project or r.type}”（{r.status or '状态未填'}）"


def registry_excluded(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """REGISTRY_EXCLUDED: first applicant of a provincial 示范中心 (企业/科研院所), or, for 新建, an ongoing
    city or district project of this program."""
    if not f.registry:
        return []
    university = unit_kind(f.values.get("单位性质")) == UNIVERSITY
    reasons = []
    centres = [r for r in f.registry if r.provincial_centre]
    if centres and not university:
        reasons.append(f"已作为第一申报主体承担{_record_text(centres[0])}，按申报指南不得参加申报")
    ongoing = [r for r in f.registry if r.local and r.this_program and r.status == "在研"]
    if ongoing and f.project_type == NEW:
        reasons.append(f"正在承担{_record_text(ongoing[0])}，按申报指南不得申报新建项目")
    if not reasons:
        return []
    return [Finding.of(
        Code.REGISTRY_EXCLUDED,
        f"据市局项目档案，“{_applicant(f)}”{'；'.join(reasons)}，不予受理；如档案记录有误，请与市局联系。",
        f.table_file,
    )]


def registry_conflict(f: ProjectFacts, rules: RulesConfig) -> list[Finding]:
    """REGISTRY_CONFLICT: an 升级 project without an accepted city project of this program in the registry,
    or a 高校 with a provincial 示范中心 record (staff judge the 院系/学科)."""
    if f.registry is None:
        return []
    found = []
    if f.project_type == UPGRADE and not any(
            r.level == "市级" and r.this_program and r.status == "已验收" for r in f.registry):
        held = [r for r in f.registry if r.this_program]
        seen = f"，档案记录为{_record_text(held[0])}" if held else "，档案中没有该单位的项目记录"
        found.append(f"申报升级项目，但市局档案中没有其已通过验收的市级高价值专利培育计划项目{seen}")
    centres = [r for r in f.registry if r.provincial_centre]
    if centres and unit_kind(f.values.get("单位性质")) == UNIVERSITY:
        found.append(f"曾作为第一申报主体承担{_record_text(centres[0])}，不得以同一院系或相同学科领域再次申报，"
                     "市局将核对院系和学科方向")
    if not found:
        return []
    return [Finding.of(
        Code.REGISTRY_CONFLICT,
        f"“{_applicant(f)}”{'；'.join(found)}；市局将审核。",
        f.form_file or f.table_file,
    )]


RULES: tuple[Rule, ...] = (
    missing_form, unreadable_form, scanned_form, missing_field, bad_credit_code, mismatch,
    funding_over_cap, patents_below_threshold, no_ip_engineer, agency_unqualified,
    declaration_failed, upgrade_not_eligible, bad_value, district_mismatch, not_local, missing_attachment,
    registry_excluded, registry_conflict,
)


def judge(facts: ProjectFacts, rules: RulesConfig, applied: Sequence[Rule] = RULES) -> list[Finding]:
    """Every finding of every per-project rule, in rule order."""
    return [finding for rule in applied for finding in rule(facts, rules)]


# -- cross-project rules -------------------------------------------------------------


def agency_overlimit(projects: Sequence[Project], rules: RulesConfig) -> list[list[Finding]]:
    """AGENCY_OVERLIMIT: per project, flagged when its folded agency joins more than the allowed projects."""
    agencies = [fold_name(p.values.get(AGENCY_FIELD)) for p in projects]
    per_agency: defaultdict[str, Counter[str]] = defaultdict(Counter)  # agency -> projects per district
    for agency, p in zip(agencies, projects, strict=True):
        if agency:
            per_agency[agency][p.district] += 1
    totals = {agency: counts.total() for agency, counts in per_agency.items()}
    out: list[list[Finding]] = []
    for agency, p in zip(agencies, projects, strict=True):
        if not agency or totals[agency] <= rules.agency_max_projects:
            out.append([])
            continue
        counts, total = per_agency[agency], totals[agency]
        where = "、".join(f"{d}{n}个" for d, n in counts.items())
        out.append([Finding.of(
            Code.AGENCY_OVERLIMIT,
            f"合作服务机构“{p.values.get(AGENCY_FIELD)}”共参与{total}个项目（{where}），"
            f"超过每家机构每年{rules.agency_max_projects}项的限制，市局将审核确定；请与相关单位协商，必要时更换机构后重新报送。",
        )])
    return out


def over_quota(projects: Sequence[Project], quotas: Mapping[str, int]) -> list[list[Finding]]:
    """OVER_QUOTA: every project of a district that put forward more projects than its quota."""
    counts = Counter(p.district for p in projects)
    out: list[list[Finding]] = []
    for p in projects:
        quota = quotas.get(p.district)
        if quota is None or counts[p.district] <= quota:
            out.append([])
            continue
        out.append([Finding.of(
            Code.OVER_QUOTA,
            f"{p.district}报送{counts[p.district]}个项目，超过本区名额{quota}个，市局将审核确定；"
            "如需调整，请撤下多出的项目后重新报送汇总表。",
        )])
    return out


# -- status and funding ----------------------------------------------------------------

_STATUS_OF = {
    Severity.REJECT: Status.REJECTED,
    Severity.FIX: Status.NEEDS_FIX,
    Severity.REVIEW: Status.REVIEW,
}
_PRECEDENCE = list(Status)  # worst first


def status_of(findings: Sequence[Finding]) -> Status:
    """不予受理 > 待补正 > 待审核 > 受理: the worst severity among the findings decides."""
    statuses = [_STATUS_OF[f.severity] for f in findings if f.severity in _STATUS_OF]
    return min(statuses, key=_PRECEDENCE.index, default=Status.ACCEPTED)


def city_share_for(values: Mapping[str, Any], district_share: float) -> float:
    """1.0 for a 部省市属事业单位 (the city pays everything), else the district's city share."""
    return 1.0 if yes_no(values.get(STATE_UNIT_FIELD)) == YES else district_share


def funding_split(amount: float | None, share: float) -> tuple[float | None, float | None]:
    """(市级承担, 区级承担) in 万元.

    The city's part is rounded half-up to 2 decimals (0.01 万元 = 100 元) and the
    district carries the exact rest, so the two always add up to the amount.
    """
    if amount is None:
        return None, None
    total = Decimal(str(amount))
    city = (total * Decimal(str(share))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return float(city), float(total - city)
