"""The guide's rules: each at, just below and just above its threshold; credit codes; statuses; funding."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from factories import make_config, make_form, make_row, make_values
from hypothesis import given
from hypothesis import strategies as st

from intake.config import RulesConfig
from intake.models import Code, Finding, Project, Status
from intake.rules import (
    CREDIT_CHARSET,
    CREDIT_WEIGHTS,
    RULES,
    FormState,
    ProjectFacts,
    agency_overlimit,
    agency_unqualified,
    bad_credit_code,
    city_share_for,
    converted_invention,
    credit_check_char,
    credit_code_valid,
    declaration_failed,
    funding_over_cap,
    funding_split,
    judge,
    mismatch,
    missing_field,
    missing_form,
    no_ip_engineer,
    normalize_code,
    over_quota,
    patents_below_threshold,
    scanned_form,
    status_of,
    unreadable_form,
    upgrade_not_eligible,
)

RULES_CFG = RulesConfig()


def facts(form: dict[str, Any] | None = None, *, with_form: bool = True, **values: Any) -> ProjectFacts:
    """Facts of project 1 with ``values`` in the row and ``form`` overriding its (read) form's fields."""
    row = make_row(1, **values)
    if not with_form:
        return ProjectFacts.build(row.values, table_file="汇总表.xlsx")
    built = make_form(row, **(form or {}))
    return ProjectFacts.build(row.values, built.fields, built.project_type, form_file=built.filename,
                              table_file="汇总表.xlsx")


def codes(findings: list[Finding]) -> list[Code]:
    return [f.code for f in findings]


# -- GB 32100-2015 ---------------------------------------------------------------------

bodies = st.text(alphabet=CREDIT_CHARSET, min_size=17, max_size=17)


def test_known_real_code_is_valid() -> None:
    """A published real-world credit code passes and its check character is recomputed."""
    assert credit_code_valid("91350100M000100Y43")
    assert credit_check_char("91350100M000100Y4") == "3"


@given(bodies)
def test_code_with_computed_check_char_is_valid(body: str) -> None:
    """Any 17 charset characters plus their computed check character form a valid code."""
    assert credit_code_valid(body + credit_check_char(body))


@given(bodies)
def test_check_char_completes_the_weighted_sum(body: str) -> None:
    """The standard's defining property: Σ(value × weight) + check value ≡ 0 (mod 31)."""
    total = sum(CREDIT_CHARSET.index(c) * w for c, w in zip(body, CREDIT_WEIGHTS, strict=True))
    assert (total + CREDIT_CHARSET.index(credit_check_char(body))) % 31 == 0


@given(bodies, st.integers(0, 17), st.sampled_from(CREDIT_CHARSET))
def test_changing_one_char_invalidates(body: str, position: int, replacement: str) -> None:
    """Replacing any one character by another charset character always fails the check."""
    code = body + credit_check_char(body)
    if code[position] == replacement:
        replacement = CREDIT_CHARSET[(CREDIT_CHARSET.index(replacement) + 1) % 31]
    changed = code[:position] + replacement + code[position + 1:]
    assert not credit_code_valid(changed)


@pytest.mark.parametrize("code", ["91350100M000100Y4", "91350100M000100Y433", "91350100I000100Y43",
                                  "91350100O000100Y43", "91350100m000100Y43", ""])
def test_wrong_length_or_charset_is_invalid(code: str) -> None:
    """Short, long, lower-case codes and the letters I, O (not in the charset) fail."""
    assert not credit_code_valid(code)


def test_normalize_code_folds_width_case_and_spaces() -> None:
    """Full-width, lower-case and spaced codes normalize to the plain upper-case code."""
    assert normalize_code(" ９１３５０１００m０００１００y４３ ") == "91350100M000100Y43"
    assert normalize_code("9135 0100 M000 100Y43") == "91350100M000100Y43"


def test_bad_credit_code_names_the_expected_check_char() -> None:
    """A wrong check character is BAD_CREDIT_CODE saying which character it should be."""
    [finding] = bad_credit_code(facts(统一社会信用代码="91350100M000100Y44"), RULES_CFG)
    assert finding.code is Code.BAD_CREDIT_CODE
    assert "“3”" in finding.message and "91350100M000100Y44" in finding.message


def test_bad_credit_code_reports_length() -> None:
    """A 17-character code is BAD_CREDIT_CODE naming both lengths."""
    [finding] = bad_credit_code(facts(统一社会信用代码="91350100M000100Y4"), RULES_CFG)
    assert "应为18位，现为17位" in finding.message


def test_lower_case_valid_code_passes_the_rule() -> None:
    """The rule normalizes before checking, so a lower-case or full-width valid code passes."""
    assert bad_credit_code(facts(统一社会信用代码="９１３５０１００m000100y43"), RULES_CFG) == []


def test_empty_credit_code_is_missing_field_not_bad_code() -> None:
    """A blank credit code (row and form) is MISSING_FIELD, and BAD_CREDIT_CODE stays silent."""
    f = facts({"统一社会信用代码": None}, 统一社会信用代码=None)
    assert bad_credit_code(f, RULES_CFG) == []
    [finding] = missing_field(f, RULES_CFG)
    assert finding.code is Code.MISSING_FIELD and "统一社会信用代码" in finding.message


# -- funding cap ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "amount", "flagged"), [
    ("新建", 49.99, False), ("新建", 50, False), ("新建", 50.01, True),
    ("升级", 39.99, False), ("升级", 40, False), ("升级", 40.01, True),
])
def test_funding_cap(kind: str, amount: float, flagged: bool) -> None:
    """申请资助金额 may reach but not exceed 50 (新建) or 40 (升级)."""
    found = funding_over_cap(facts(项目类别=kind, 申请资助金额=amount), RULES_CFG)
    assert codes(found) == ([Code.FUNDING_OVER_CAP] if flagged else [])


def test_funding_cap_message_has_the_numbers() -> None:
    """The finding says the amount, the type and the cap, and what to send."""
    [finding] = funding_over_cap(facts(申请资助金额=60), RULES_CFG)
    assert "申请资助金额60万元超过新建项目上限50万元，请核减后重新报送汇总表和申报书。" in finding.message


def test_funding_cap_follows_config() -> None:
    """A raised cap_new lets 60 through."""
    assert funding_over_cap(facts(申请资助金额=60), RulesConfig(cap_new=60)) == []


# -- patents ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("patents", "flagged"), [(79, True), (80, False), (81, False)])
def test_enterprise_patent_count(patents: int, flagged: bool) -> None:
    """企业 新建: 80 有效专利 suffice when the converted invention count is below 10."""
    f = facts(有效专利数=patents, 有效发明专利数=5, PCT申请数=0)
    assert codes(patents_below_threshold(f, RULES_CFG)) == ([Code.PATENTS_BELOW_THRESHOLD] if flagged else [])


@pytest.mark.parametrize(("invention", "flagged"), [(9, True), (10, False), (11, False)])
def test_enterprise_invention_count(invention: int, flagged: bool) -> None:
    """企业 新建: 10 有效发明专利 suffice when 有效专利 are below 80."""
    f = facts(有效专利数=50, 有效发明专利数=invention, PCT申请数=0)
    assert codes(patents_below_threshold(f, RULES_CFG)) == ([Code.PATENTS_BELOW_THRESHOLD] if flagged else [])


@pytest.mark.parametrize("kind", ["高校", "科研院所"])
@pytest.mark.parametrize(("invention", "flagged"), [(19, True), (20, False), (21, False)])
def test_academic_invention_count(kind: str, invention: int, flagged: bool) -> None:
    """高校/科研院所 新建 need 20 converted invention patents (or 80 patents)."""
    f = facts(单位性质=kind, 有效专利数=79, 有效发明专利数=invention, PCT申请数=0)
    assert codes(patents_below_threshold(f, RULES_CFG)) == ([Code.PATENTS_BELOW_THRESHOLD] if flagged else [])


@pytest.mark.parametrize(("patents", "flagged"), [(79, True), (80, False), (81, False)])
def test_academic_patent_count(patents: int, flagged: bool) -> None:
    """高校 新建: 80 有效专利 suffice even with 19 invention patents."""
    f = facts(单位性质="高校", 有效专利数=patents, 有效发明专利数=19, PCT申请数=0)
    assert codes(patents_below_threshold(f, RULES_CFG)) == ([Code.PATENTS_BELOW_THRESHOLD] if flagged else [])


@pytest.mark.parametrize(("invention", "pct", "flagged"), [
    (5, 2, True), (6, 2, False), (7, 2, False), (0, 5, False),
])
def test_pct_counts_double(invention: int, pct: int, flagged: bool) -> None:
    """Each PCT application counts as 2 invention patents: 6 + 2×2 = 10 passes, 5 + 2×2 = 9 fails."""
    f = facts(有效专利数=10, 有效发明专利数=invention, PCT申请数=pct)
    assert codes(patents_below_threshold(f, RULES_CFG)) == ([Code.PATENTS_BELOW_THRESHOLD] if flagged else [])


def test_pct_weight_follows_config() -> None:
    """With pct_weight 3, 4 + 3×2 = 10 passes where the default weight fails."""
    f = facts(有效专利数=10, 有效发明专利数=4, PCT申请数=2)
    assert patents_below_threshold(f, RULES_CFG) != []
    assert patents_below_threshold(f, RulesConfig(pct_weight=3)) == []


def test_converted_invention() -> None:
    """折算有效发明专利数 adds weighted PCT, treats a blank PCT as 0, and is None with no data."""
    assert converted_invention({"有效发明专利数": 5, "PCT申请数": 3}, RULES_CFG) == 11
    assert converted_invention({"有效发明专利数": 5, "PCT申请数": None}, RULES_CFG) == 5
    assert converted_invention({}, RULES_CFG) is None


def test_patent_message_has_the_numbers() -> None:
    """The rejection states counts, converted count and both thresholds."""
    [finding] = patents_below_threshold(facts(有效专利数=70, 有效发明专利数=5, PCT申请数=2), RULES_CFG)
    assert "有效专利70件、折算有效发明专利9件" in finding.message
    assert "不少于80件" in finding.message and "不少于10件" in finding.message


def test_upgrade_projects_have_no_patent_threshold() -> None:
    """升级 projects are not judged on the 新建 patent threshold."""
    assert patents_below_threshold(facts(项目类别="升级", 有效专利数=1, 有效发明专利数=0), RULES_CFG) == []


def test_unknown_kind_uses_lenient_thresholds() -> None:
    """An unknown 单位性质 is judged like an enterprise: 10 invention patents pass."""
    f = facts(单位性质="其他", 有效专利数=10, 有效发明专利数=10, PCT申请数=0)
    assert patents_below_threshold(f, RULES_CFG) == []


def test_blank_patent_counts_ask_for_them_instead_of_rejecting() -> None:
    """新建 with blank patent counts (row and form) is MISSING_FIELD, not a rejection."""
    blank = {"有效专利数": None, "有效发明专利数": None}
    f = facts(blank, PCT申请数=None, **blank)
    assert patents_below_threshold(f, RULES_CFG) == []
    [finding] = missing_field(f, RULES_CFG)
    assert "有效专利数" in finding.message and "有效发明专利数" in finding.message


# -- form-only rules ------------------------------------------------------------------------


@pytest.mark.parametrize(("engineers", "flagged"), [(0, True), (1, False), (2, False)])
def test_ip_engineer(engineers: int, flagged: bool) -> None:
    """新建 needs at least one certified IP engineer."""
    found = no_ip_engineer(facts({"知识产权工程师人数": engineers}), RULES_CFG)
    assert codes(found) == ([Code.NO_IP_ENGINEER] if flagged else [])


def test_ip_engineer_threshold_follows_config_and_type() -> None:
    """min_ip_engineers 2 flags one engineer; 升级 projects are not judged."""
    assert codes(no_ip_engineer(facts({"知识产权工程师人数": 1}), RulesConfig(min_ip_engineers=2))) == [
        Code.NO_IP_ENGINEER]
    assert no_ip_engineer(facts({"知识产权工程师人数": 0}, 项目类别="升级"), RULES_CFG) == []


@pytest.mark.parametrize(("field", "below", "at", "above"), [
    ("机构从业人员数", 14, 15, 16),
    ("机构专利代理人数", 4, 5, 6),
    ("机构服务收入", 299.99, 300, 300.01),
])
def test_agency_thresholds(field: str, below: float, at: float, above: float) -> None:
    """The agency needs 15 staff, 5 agents and 300万元 revenue; each minimum is itself enough."""
    assert codes(agency_unqualified(facts({field: below}), RULES_CFG)) == [Code.AGENCY_UNQUALIFIED]
    assert agency_unqualified(facts({field: at}), RULES_CFG) == []
    assert agency_unqualified(facts({field: above}), RULES_CFG) == []


def test_agency_message_lists_every_shortfall() -> None:
    """One finding names each figure below its minimum with both numbers."""
    [finding] = agency_unqualified(facts({"机构从业人员数": 12, "机构服务收入": 250}), RULES_CFG)
    assert "从业人员12人（须不少于15人）" in finding.message
    assert "2023年知识产权服务收入250万元（须不少于300万元）" in finding.message
    assert "专利代理人" not in finding.message


def test_agency_rule_is_for_new_projects_only() -> None:
    """An 升级 project's agency is not judged on the 新建 minimums."""
    assert agency_unqualified(facts({"机构从业人员数": 1}, 项目类别="升级"), RULES_CFG) == []


@pytest.mark.parametrize(("fields", "flagged"), [
    ({}, False),
    ({"专利密集型产品备案": "否"}, True),
    ({"专利密集型产品备案": None}, True),
    ({"严重失信行为": "是"}, True),
    ({"非正常专利申请": "是"}, True),
    ({"严重失信行为": None, "非正常专利申请": None}, False),
])
def test_declarations(fields: dict[str, Any], flagged: bool) -> None:
    """备案 must be 是; 严重失信 and 非正常专利申请 must not be 是."""
    found = declaration_failed(facts(fields), RULES_CFG)
    assert codes(found) == ([Code.DECLARATION_FAILED] if flagged else [])


@pytest.mark.parametrize(("fields", "flagged"), [
    ({}, False),
    ({"已通过市级验收": "否"}, True),
    ({"已通过市级验收": None}, True),
    ({"承担省级项目": "是"}, True),
])
def test_upgrade_eligibility(fields: dict[str, Any], flagged: bool) -> None:
    """升级 needs a passed city-level acceptance and no provincial project."""
    found = upgrade_not_eligible(facts(fields, 项目类别="升级", 申请资助金额=40), RULES_CFG)
    assert codes(found) == ([Code.UPGRADE_NOT_ELIGIBLE] if flagged else [])


def test_upgrade_rule_ignores_new_projects() -> None:
    """A 新建 project is never UPGRADE_NOT_ELIGIBLE."""
    assert upgrade_not_eligible(facts({"已通过市级验收": "否"}), RULES_CFG) == []


def test_form_only_rules_need_a_read_form() -> None:
    """Without a read form, the form-only rules say nothing and MISSING_FORM says it all."""
    f = facts(with_form=False)
    for rule in (no_ip_engineer, agency_unqualified, declaration_failed, upgrade_not_eligible, mismatch):
        assert rule(f, RULES_CFG) == []
    assert codes(judge(f, RULES_CFG)) == [Code.MISSING_FORM]


def test_blank_form_figure_is_missing_field() -> None:
    """A 新建 form without the IP engineer count asks for it (MISSING_FIELD) instead of rejecting."""
    f = facts({"知识产权工程师人数": None})
    assert no_ip_engineer(f, RULES_CFG) == []
    [finding] = missing_field(f, RULES_CFG)
    assert "申报书未填写取得知识产权工程师证书人数" in finding.message


# -- missing fields, mismatches, form state ----------------------------------------------------


@pytest.mark.parametrize("field", ["项目名称", "牵头申报单位", "单位性质", "项目类别", "合作服务机构",
                                   "申请资助金额", "联系人", "联系电话"])
def test_required_field_blank_in_row_and_form(field: str) -> None:
    """A required field blank in both row and form is MISSING_FIELD naming it."""
    f = facts({field: None}, **{field: " " if field != "申请资助金额" else None})
    found = missing_field(f, RULES_CFG)
    assert codes(found) == [Code.MISSING_FIELD] and field in found[0].message


def test_form_fills_a_blank_required_field() -> None:
    """A field blank in the row but present on the form is not missing."""
    f = facts({"联系电话": "13800000000"}, 联系电话=None)
    assert missing_field(f, RULES_CFG) == [] and f.values["联系电话"] == "13800000000"


def test_complete_project_has_no_findings() -> None:
    """The factory's default project passes every rule."""
    assert judge(facts(), RULES_CFG) == []


def test_state_unit_defaults_to_no() -> None:
    """部省市属事业单位 blank in row and form becomes 否; the form fills it when the row lacks it."""
    assert facts({"部省市属事业单位": None}, 部省市属事业单位=None).values["部省市属事业单位"] == "否"
    assert facts({"部省市属事业单位": "是"}, 部省市属事业单位=None).values["部省市属事业单位"] == "是"


@pytest.mark.parametrize(("row", "form", "flagged"), [
    ({"申请资助金额": 50}, {"申请资助金额": "50.0"}, False),
    ({"申请资助金额": 50}, {"申请资助金额": 45}, True),
    ({"有效专利数": 100}, {"有效专利数": 101}, True),
    ({"有效发明专利数": 12}, {"有效发明专利数": 11}, True),
    ({"PCT申请数": 1}, {"PCT申请数": 0}, True),
    ({"合作服务机构": "徐州（某某）代理 有限公司"}, {"合作服务机构": "徐州(某某)代理有限公司"}, False),
    ({"合作服务机构": "甲代理公司"}, {"合作服务机构": "乙代理公司"}, True),
    ({"申请资助金额": 50}, {"申请资助金额": None}, False),
])
def test_mismatch(row: dict[str, Any], form: dict[str, Any], flagged: bool) -> None:
    """Row and form must agree where both have a value (numbers numerically, names folded)."""
    assert codes(mismatch(facts(form, **row), RULES_CFG)) == ([Code.MISMATCH] if flagged else [])


def test_mismatch_on_project_type_and_message() -> None:
    """A 新建 row with an 升级 form is MISMATCH, and the message shows both values."""
    row = make_row(1, 申请资助金额=50)
    form = make_form(row, project_type="升级", 申请资助金额=45)
    f = ProjectFacts.build(row.values, form.fields, form.project_type)
    [finding] = mismatch(f, RULES_CFG)
    assert "申请资助金额（汇总表50万元，申报书45万元）" in finding.message
    assert "项目类别（汇总表“新建”，申报书“升级”）" in finding.message


@pytest.mark.parametrize(("state", "rule", "code"), [
    (FormState.MISSING, missing_form, Code.MISSING_FORM),
    (FormState.SCANNED, scanned_form, Code.SCANNED_FORM),
    (FormState.UNREADABLE, unreadable_form, Code.UNREADABLE_FILE),
])
def test_form_state_rules(state: FormState, rule: Any, code: Code) -> None:
    """Each form state has its one code, with the file name and reason; a read form has none of them."""
    f = ProjectFacts.build(make_values(), form_state=state, form_file="徐州1号科技有限公司.pdf",
                           form_reason="文件已加密")
    assert codes(judge(f, RULES_CFG)) == [code]
    if state is not FormState.MISSING:
        assert "徐州1号科技有限公司.pdf" in rule(f, RULES_CFG)[0].message
    assert rule(facts(), RULES_CFG) == []


def test_messages_are_single_chinese_sentences() -> None:
    """Every rule's message is one sentence ending in 。 with no line breaks."""
    form = {"知识产权工程师人数": 0, "专利密集型产品备案": "否", "机构从业人员数": 3, "申请资助金额": 40}
    f = facts(form, 有效专利数=1, 有效发明专利数=1, PCT申请数=0, 申请资助金额=70, 统一社会信用代码="123",
              联系人=None)
    found = judge(f, RULES_CFG)
    assert sorted(codes(found)) == sorted([
        Code.MISSING_FIELD, Code.BAD_CREDIT_CODE, Code.MISMATCH, Code.FUNDING_OVER_CAP,
        Code.PATENTS_BELOW_THRESHOLD, Code.NO_IP_ENGINEER, Code.AGENCY_UNQUALIFIED, Code.DECLARATION_FAILED,
    ])
    for one in found:
        assert one.message.endswith("。") and one.message.count("。") == 1 and "\n" not in one.message


def test_rules_list_covers_every_per_project_code() -> None:
    """RULES has one rule named for each per-project code (UNREADABLE_FILE's is unreadable_form)."""
    per_project = set(Code) - {Code.AGENCY_OVERLIMIT, Code.OVER_QUOTA, Code.NO_ATTACHMENTS,
                               Code.UNRECOGNIZED_FILE, Code.CLOUD_ATTACHMENT, Code.LATE,
                               Code.OTHER_PROGRAM, Code.WRONG_CAMPAIGN, Code.UNAUTHENTICATED_SENDER,
                               Code.NOT_CORRECTED}  # set by the close-out, not by a rule
    expected = {c.value.lower() for c in per_project} - {"unreadable_file"} | {"unreadable_form"}
    assert sorted(r.__name__ for r in RULES) == sorted(expected)


# -- cross-project rules ----------------------------------------------------------------------


def project(district: str, agency: str | None) -> Project:
    return Project(number="n", district=district, key="k", values={"合作服务机构": agency},
                   project_type="新建")


def test_agency_overlimit_across_districts() -> None:
    """One agency (folded name) in two districts flags both projects; another agency's project stays clean."""
    ps = [project("云龙区", "徐州（某某）代理"), project("鼓楼区", "徐州(某某) 代理"),
          project("鼓楼区", "乙代理")]
    found = agency_overlimit(ps, RULES_CFG)
    assert [codes(f) for f in found] == [[Code.AGENCY_OVERLIMIT], [Code.AGENCY_OVERLIMIT], []]
    assert "共参与2个项目（云龙区1个、鼓楼区1个）" in found[0][0].message


@pytest.mark.parametrize(("count", "flagged"), [(1, False), (2, False), (3, True)])
def test_agency_overlimit_threshold(count: int, flagged: bool) -> None:
    """With agency_max_projects 2, two projects are allowed and a third flags all three."""
    ps = [project("云龙区", "甲代理")] * count
    found = agency_overlimit(ps, RulesConfig(agency_max_projects=2))
    assert all(codes(f) == ([Code.AGENCY_OVERLIMIT] if flagged else []) for f in found)


def test_blank_agency_is_not_counted() -> None:
    """Projects without an agency are not one agency's projects."""
    assert agency_overlimit([project("云龙区", None), project("云龙区", "")], RULES_CFG) == [[], []]


@pytest.mark.parametrize(("count", "flagged"), [(2, False), (3, False), (4, True)])
def test_over_quota(count: int, flagged: bool) -> None:
    """A district over its quota of 3 has every project flagged; another district is untouched."""
    ps = [project("云龙区", None)] * count + [project("鼓楼区", None)]
    found = over_quota(ps, {"云龙区": 3, "鼓楼区": 3})
    assert [codes(f) for f in found] == [[Code.OVER_QUOTA] if flagged else []] * count + [[]]
    if flagged:
        assert "云龙区报送4个项目，超过本区名额3个" in found[0][0].message


# -- status and funding --------------------------------------------------------------------------


def finding(code: Code) -> Finding:
    return Finding.of(code, "说明。")


@pytest.mark.parametrize(("found", "status"), [
    ([], Status.ACCEPTED),
    ([Code.SCANNED_FORM], Status.REVIEW),
    ([Code.SCANNED_FORM, Code.MISSING_FIELD], Status.NEEDS_FIX),
    ([Code.OVER_QUOTA, Code.MISMATCH, Code.NO_IP_ENGINEER], Status.REJECTED),
    ([Code.PATENTS_BELOW_THRESHOLD, Code.AGENCY_OVERLIMIT], Status.REJECTED),
])
def test_status_precedence(found: list[Code], status: Status) -> None:
    """不予受理 beats 待补正 beats 待审核 beats 受理."""
    assert status_of([finding(c) for c in found]) is status


@given(st.lists(st.sampled_from(list(Code))))
def test_status_is_the_worst_severity(found: list[Code]) -> None:
    """The status never depends on order: it is the status of the worst finding."""
    rank = [Status.REJECTED, Status.NEEDS_FIX, Status.REVIEW, Status.ACCEPTED]
    statuses = [status_of([finding(c)]) for c in found]
    assert status_of([finding(c) for c in found]) is min(statuses, key=rank.index, default=Status.ACCEPTED)
    assert status_of([finding(c) for c in reversed(found)]) is status_of([finding(c) for c in found])


def test_city_share() -> None:
    """部省市属事业单位 = 是 puts the whole amount on the city; else the district's share applies."""
    assert city_share_for({"部省市属事业单位": "是"}, 0.5) == 1.0
    assert city_share_for({"部省市属事业单位": "否"}, 0.5) == 0.5
    assert city_share_for({}, 0.4) == 0.4


def test_funding_split_rounds_city_half_up_and_district_takes_rest() -> None:
    """45.55 × 0.5 = 22.775 gives the city 22.78 and the district 22.77."""
    assert funding_split(45.55, 0.5) == (22.78, 22.77)
    assert funding_split(50, 1.0) == (50.0, 0.0)
    assert funding_split(None, 0.5) == (None, None)


@given(st.decimals(min_value=0, max_value=1000, places=2), st.sampled_from([0.3, 0.5, 0.6, 1.0]))
def test_funding_split_adds_up(amount: Decimal, share: float) -> None:
    """City and district parts always add up to the amount, to the cent of 万元."""
    city, rest = funding_split(float(amount), share)
    assert city is not None and rest is not None
    assert Decimal(str(city)) + Decimal(str(rest)) == amount
    assert abs(city - float(amount) * share) <= 0.005 + 1e-9


def test_make_config_rules_default_to_the_guide() -> None:
    """The shared test config carries the guide's rule values."""
    assert make_config().rules == RULES_CFG


# -- spec 10.3: values, the applicant's place, the registry ----------------------------------------

from intake.registry import RegistryRecord  # noqa: E402
from intake.rules import (  # noqa: E402
    bad_value,
    district_mismatch,
    missing_attachment,
    not_local,
    registry_conflict,
    registry_excluded,
    unit_kind,
)


@pytest.mark.parametrize(("kind", "expected"), [
    ("企业", "企业"), ("民营企业", "企业"), ("高校", "高校"), ("大学", "高校"), ("科研院所", "科研院所"),
    ("实验室", "科研院所"), ("技术中心", "科研院所"), ("研究院", "科研院所"), ("研究所", "科研院所"),
    ("个体工商户", None), ("其他", None), ("", None),
])
def test_unit_kinds(kind: str, expected: str | None) -> None:
    """单位性质 words map to 企业/高校/科研院所; 实验室, 技术中心, 研究院, 研究所 are 科研院所."""
    assert unit_kind(kind) == expected


@pytest.mark.parametrize("kind", ["实验室", "技术中心", "研究院", "研究所", "科研院所", "高校"])
def test_institute_aliases_use_academic_thresholds(kind: str) -> None:
    """70 patents and 15 converted inventions: enough for an 企业, below the 20 that 科研院所 (and its aliases) need."""
    below = facts(单位性质=kind, 有效专利数=70, 有效发明专利数=15, PCT申请数=0)
    assert codes(patents_below_threshold(below, RULES_CFG)) == [Code.PATENTS_BELOW_THRESHOLD]
    assert bad_value(below, RULES_CFG) == []
    assert patents_below_threshold(facts(单位性质="企业", 有效专利数=70, 有效发明专利数=15), RULES_CFG) == []


@pytest.mark.parametrize(("values", "form", "words"), [
    ({"单位性质": "个体工商户"}, {}, "单位性质为“个体工商户”"),
    ({"项目类别": "新建/升级"}, {}, "项目类别为“新建/升级”"),
    ({"项目类别": "扩建"}, {}, "项目类别为“扩建”"),
    ({"部省市属事业单位": "不确定"}, {}, "是否部省市属事业单位为“不确定”"),
    ({}, {"严重失信行为": "待查"}, "是否存在严重失信行为为“待查”"),
    ({}, {"专利密集型产品备案": "进行中"}, "是否完成专利密集型产品备案为“进行中”"),
])
def test_bad_value(values: dict, form: dict, words: str) -> None:
    """BAD_VALUE (fix) quotes the value outside 企业/高校/科研院所, 新建/升级 or 是/否."""
    [finding] = bad_value(facts(form, **values), RULES_CFG)
    assert finding.code is Code.BAD_VALUE and finding.severity == "fix" and words in finding.message


def test_good_and_blank_values_are_no_bad_value() -> None:
    """Allowed values, yes/no spellings and blanks (MISSING_FIELD's business) give no BAD_VALUE."""
    assert bad_value(facts({"严重失信行为": "无"}, 部省市属事业单位="N", 项目类别="新建项目"), RULES_CFG) == []
    blank = facts(单位性质=None, 项目类别=None)
    assert bad_value(blank, RULES_CFG) == [] and codes(missing_field(blank, RULES_CFG)) == [Code.MISSING_FIELD]


def test_unclear_project_type_is_bad_value_not_missing_field() -> None:
    """A filled 项目类别 that says neither 新建 nor 升级 is BAD_VALUE, not MISSING_FIELD."""
    f = facts(项目类别="扩建")
    assert missing_field(f, RULES_CFG) == [] and codes(bad_value(f, RULES_CFG)) == [Code.BAD_VALUE]


def located(stated: str | None, district: str = "云龙区", names: tuple[str, ...] = ("云龙",)) -> ProjectFacts:
    f = facts({"所属地区": stated})
    return ProjectFacts(**{**f.__dict__, "district": district, "district_names": names})


@pytest.mark.parametrize(("stated", "flagged"), [
    ("云龙区", False), ("徐州市云龙区", False), ("江苏省徐州市云龙区", False), ("云龙", False),
    ("徐州市", False), ("江苏省徐州市", False), (None, False),
    ("泉山区", True), ("徐州市鼓楼区", True), ("铜山区", True), ("邳州市", True),
])
def test_district_mismatch(stated: str | None, flagged: bool) -> None:
    """DISTRICT_MISMATCH (review) when the form's 所属地区 names a district other than the sender's."""
    found = district_mismatch(located(stated), RULES_CFG)
    assert codes(found) == ([Code.DISTRICT_MISMATCH] if flagged else [])
    if flagged:
        assert found[0].severity == "review" and "云龙区" in found[0].message


def test_development_zone_short_names() -> None:
    """经开区 names 徐州经济技术开发区."""
    from intake.merge import district_names

    zone = make_config().district("徐州经济技术开发区")
    assert zone is not None
    f = located("经开区", "徐州经济技术开发区", district_names(zone))
    assert district_mismatch(f, RULES_CFG) == []


def code_with(division: str) -> str:
    body = f"91{division}MA1XY012"[:17].ljust(17, "0")
    return body + credit_check_char(body)


@pytest.mark.parametrize(("division", "flagged"), [
    ("320300", False), ("320311", False), ("320381", False),  # 徐州 and its districts / counties
    ("320000", False), ("100000", False), ("110000", False),  # province, nation: no prefecture
    ("320100", True), ("320500", True), ("110105", True),  # 南京, 苏州, a Beijing district
])
def test_not_local(division: str, flagged: bool) -> None:
    """NOT_LOCAL (review): characters 3–8 neither start with 3203 nor end in 0000."""
    found = not_local(facts(统一社会信用代码=code_with(division)), RULES_CFG)
    assert codes(found) == ([Code.NOT_LOCAL] if flagged else [])
    if flagged:
        assert division in found[0].message


def test_not_local_only_for_valid_codes() -> None:
    """A code failing the checksum is BAD_CREDIT_CODE's business, never NOT_LOCAL."""
    code = code_with("320100")
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert not_local(facts(统一社会信用代码=wrong), RULES_CFG) == []


def attached(present: tuple[str, ...] | None, state: FormState = FormState.READ) -> ProjectFacts:
    f = facts()
    return ProjectFacts(**{**f.__dict__, "attachments": present, "form_state": state})


def test_missing_attachment() -> None:
    """MISSING_ATTACHMENT (review) names each required document not received; not judged without a read form."""
    [one] = missing_attachment(attached(("合作协议",)), RULES_CFG)
    assert one.severity == "review" and "信用承诺书" in one.message and "合作协议" not in one.message
    assert missing_attachment(attached(("合作协议", "信用承诺书")), RULES_CFG) == []
    assert missing_attachment(attached(None), RULES_CFG) == []
    for state in (FormState.SCANNED, FormState.UNREADABLE, FormState.MISSING):
        assert missing_attachment(attached((), state), RULES_CFG) == []


def record(level: str, kind: str, status: str, *, this_program: bool = True, project: str = "") -> RegistryRecord:
    return RegistryRecord(code="", name="徐州1号科技有限公司", project=project, level=level, type=kind, year=2022,
                          status=status, this_program=this_program)


CENTRE = record("省级", "高价值专利培育示范中心", "已验收", this_program=False)
CITY_ONGOING = record("市级", "高价值专利培育计划", "在研")
DISTRICT_ONGOING = record("区级", "高价值专利培育计划", "在研")
CITY_DONE = record("市级", "高价值专利培育计划", "已验收")
TRADEMARK = record("市级", "高价值商标品牌培育计划", "在研", this_program=False)


def registered(*records: RegistryRecord, registry: bool = True, **values: Any) -> ProjectFacts:
    f = facts(**values)
    return ProjectFacts(**{**f.__dict__, "registry": records if registry else None})


@pytest.mark.parametrize(("records", "values", "excluded"), [
    ((CENTRE,), {}, True),  # 企业, provincial 示范中心
    ((CENTRE,), {"单位性质": "研究所"}, True),  # 科研院所 (alias)
    ((CENTRE,), {"单位性质": "高校"}, False),  # 高校: REGISTRY_CONFLICT instead
    ((CENTRE,), {"项目类别": "升级"}, True),  # whatever it applies for
    ((CITY_ONGOING,), {}, True), ((DISTRICT_ONGOING,), {}, True),  # 新建 with an ongoing city/district project
    ((CITY_ONGOING,), {"项目类别": "升级", "申请资助金额": 40}, False),  # only 新建 is excluded by an ongoing one
    ((CITY_DONE,), {}, False), ((TRADEMARK,), {}, False),  # accepted; another program
    ((record("市级", "高价值专利培育计划", "终止"),), {}, False),
    ((), {}, False),
])
def test_registry_excluded(records: tuple, values: dict, excluded: bool) -> None:
    """REGISTRY_EXCLUDED (reject) at each edge of the guide's 申报要求 1."""
    found = registry_excluded(registered(*records, **values), RULES_CFG)
    assert codes(found) == ([Code.REGISTRY_EXCLUDED] if excluded else [])
    if excluded:
        assert found[0].severity == "reject" and "市局项目档案" in found[0].message


@pytest.mark.parametrize(("records", "values", "conflict"), [
    ((CITY_ONGOING,), {"项目类别": "升级"}, True),  # 升级 whose city project is 在研, not 已验收
    ((DISTRICT_ONGOING,), {"项目类别": "升级"}, True),
    ((record("区级", "高价值专利培育计划", "已验收"),), {"项目类别": "升级"}, True),  # a district one is no city one
    ((), {"项目类别": "升级"}, True),  # no record at all
    ((CITY_DONE,), {"项目类别": "升级"}, False),
    ((CENTRE,), {"单位性质": "高校"}, True),  # a 高校 with a provincial 示范中心
    ((CENTRE,), {"单位性质": "企业"}, False),  # excluded instead
    ((), {}, False), ((CITY_ONGOING,), {}, False),
])
def test_registry_conflict(records: tuple, values: dict, conflict: bool) -> None:
    """REGISTRY_CONFLICT (review): an 升级 without an accepted city project; a 高校 with a provincial 示范中心."""
    found = registry_conflict(registered(*records, **values), RULES_CFG)
    assert codes(found) == ([Code.REGISTRY_CONFLICT] if conflict else [])
    if conflict:
        assert found[0].severity == "review"


def test_no_registry_no_registry_rules() -> None:
    """Without rules.registry (records None) neither registry rule runs, even for an 升级."""
    f = registered(registry=False, 项目类别="升级")
    assert registry_conflict(f, RULES_CFG) == [] and registry_excluded(f, RULES_CFG) == []


def test_info_findings_do_not_change_a_status() -> None:
    """OTHER_PROGRAM is information: a list holding only it is 受理."""
    assert status_of([Finding.of(Code.OTHER_PROGRAM, "x")]) is Status.ACCEPTED
