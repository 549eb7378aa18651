"""The ledger as a pure function of stored messages: supersession, matching, numbers, cross-project rules."""

from __future__ import annotations

import copy
import random
from datetime import timedelta

import pytest
from factories import (
    DEADLINE,
    attach_failed,
    attach_form,
    attach_table,
    make_config,
    make_credit_code,
    make_form,
    make_message,
    make_row,
    make_table,
)

from intake.merge import build_ledger, district_view, project_numbers, unmatched_for
from intake.models import Code, Outcome, Project, Status, StoredMessage, UnmatchedForm

CFG = make_config()


def build(*messages: StoredMessage) -> list[Project]:
    return build_ledger(messages, CFG).projects


def by_number(projects: list[Project]) -> dict[str, Project]:
    return {p.number: p for p in projects}


def codes(p: Project) -> list[Code]:
    return sorted(f.code for f in p.findings)


ROW1, ROW2, ROW3 = make_row(1), make_row(2), make_row(3)


def test_forms_before_table() -> None:
    """Forms sent before the table are matched once the table arrives; both projects are 受理."""
    m1 = make_message(1, attach_form(make_form(ROW1)), attach_form(make_form(ROW2)))
    m2 = make_message(2, attach_table(make_table(ROW1, ROW2)))
    projects = build(m1, m2)
    assert [p.number for p in projects] == ["XZ2024-云龙-001", "XZ2024-云龙-002"]
    assert all(p.status is Status.ACCEPTED and p.findings == [] for p in projects)
    assert projects[0].source_uids == [1, 2] and projects[0].arrival == m2.arrival
    assert projects[0].form is not None and projects[0].form.filename == "徐州1号科技有限公司申报书.pdf"


def test_forms_alone_make_no_projects() -> None:
    """Without a summary table, forms create no project and are listed as unmatched."""
    m1 = make_message(1, attach_form(make_form(ROW1)))
    ledger = build_ledger([m1], CFG)
    assert ledger.projects == []
    assert ledger.unmatched_forms == [UnmatchedForm("云龙区", "徐州1号科技有限公司申报书.pdf", 1)]


def test_row_without_form_is_missing_form() -> None:
    """A row with no matching form is MISSING_FORM, 待补正, with only the table's UID as source."""
    [p] = build(make_message(1, attach_table(make_table(ROW1))))
    assert codes(p) == [Code.MISSING_FORM] and p.status is Status.NEEDS_FIX and p.source_uids == [1]


def test_correction_table_supersedes() -> None:
    """A later table replaces the earlier one: its values are judged and its dropped rows disappear."""
    over = make_row(1, 申请资助金额=60)
    m1 = make_message(1, attach_table(make_table(over, ROW2)), attach_form(make_form(ROW1)))
    m2 = make_message(2, attach_table(make_table(ROW1)))
    assert codes(build(m1)[0]) == [Code.FUNDING_OVER_CAP, Code.MISMATCH]
    [p] = build(m1, m2)
    assert p.number == "XZ2024-云龙-001" and p.findings == [] and p.values["申请资助金额"] == 50


def test_correction_form_supersedes() -> None:
    """A later form for the same applicant replaces the earlier one, in either direction."""
    table = make_message(1, attach_table(make_table(ROW1)))
    wrong = make_message(2, attach_form(make_form(ROW1, 申请资助金额=45)))
    right = make_message(3, attach_form(make_form(ROW1)))
    assert codes(build(table, wrong)[0]) == [Code.MISMATCH]
    assert build(table, wrong, right)[0].findings == []
    assert codes(build(table, right, make_message(4, *wrong.attachments))[0]) == [Code.MISMATCH]


def test_later_form_in_same_message_wins() -> None:
    """Of two forms for one applicant in one message, the later attachment is used."""
    first, second = attach_form(make_form(ROW1, 申请资助金额=45)), attach_form(make_form(ROW1))
    [p] = build(make_message(1, attach_table(make_table(ROW1)), first, second))
    assert p.form == second and p.findings == []


@pytest.mark.parametrize("outcome", [Outcome.LATE, Outcome.DUPLICATE, Outcome.AUTO_REPLY, Outcome.ERROR])
def test_only_processed_material_enters(outcome: Outcome) -> None:
    """Late, duplicate, automatic and failed messages never change the projects."""
    m1 = make_message(1, attach_table(make_table(ROW1)), attach_form(make_form(ROW1)))
    bad = make_message(2, attach_table(make_table(ROW1, ROW2, ROW3)),
                       attach_form(make_form(ROW1, 联系人="李四")), outcome=outcome)
    assert build(m1, bad) == build(m1)


def test_unknown_sender_never_enters() -> None:
    """Material from an unknown sender (no district) or an unconfigured district is ignored."""
    stranger = make_message(1, attach_table(make_table(ROW1)), district=None, outcome=Outcome.UNKNOWN_SENDER)
    elsewhere = make_message(2, attach_table(make_table(ROW1)), district="铜山区")
    ledger = build_ledger([stranger, elsewhere], CFG)
    assert ledger.projects == [] and ledger.unmatched_forms == []


def test_processed_message_after_configured_deadline_is_ignored() -> None:
    """A stored message that is late under the current config's deadline does not enter."""
    m1 = make_message(1, attach_table(make_table(ROW1)))
    m2 = make_message(2, attach_table(make_table(ROW1, ROW2)), arrival=DEADLINE + timedelta(seconds=1))
    assert len(build(m1, m2)) == 1
    assert len(build(m1, make_message(2, *m2.attachments, arrival=DEADLINE))) == 2


def test_numbers_stable_across_corrections() -> None:
    """Numbers follow first appearance; a dropped number is not reused and a returning row gets its own."""
    a, b, c, d = (make_row(n) for n in (1, 2, 3, 4))
    m1 = make_message(1, attach_table(make_table(a, b, c)))
    m2 = make_message(2, attach_table(make_table(c, d, a)))
    m3 = make_message(3, attach_table(make_table(b, d)))
    label = {p.values["牵头申报单位"]: p.number[-3:] for p in build(m1, m2)}
    assert label == {"徐州1号科技有限公司": "001", "徐州3号科技有限公司": "003", "徐州4号科技有限公司": "004"}
    label = {p.values["牵头申报单位"]: p.number[-3:] for p in build(m1, m2, m3)}
    assert label == {"徐州2号科技有限公司": "002", "徐州4号科技有限公司": "004"}


def test_fixing_a_credit_code_keeps_the_number() -> None:
    """A correction of a wrong credit code keeps the project's 受理编号 (matched by applicant name)."""
    bad = make_row(2, 统一社会信用代码="91320300MA00000020")
    m1 = make_message(1, attach_table(make_table(ROW1, bad)))
    m2 = make_message(2, attach_table(make_table(ROW1, ROW2)))
    assert codes(by_number(build(m1))["XZ2024-云龙-002"]) == [Code.BAD_CREDIT_CODE, Code.MISSING_FORM]
    assert by_number(build(m1, m2))["XZ2024-云龙-002"].key == make_credit_code(2)


def test_project_numbers_never_repeat_within_a_table() -> None:
    """Two rows that share an identity get distinct numbers."""
    tables = [[("code:A",), ("code:B",)], [("code:A", "name:x"), ("code:A", "name:y")]]
    assert project_numbers(tables) == [1, 3]


def test_key_falls_back_to_folded_name() -> None:
    """A project without a credit code is keyed by its folded applicant name."""
    [p] = build(make_message(1, attach_table(make_table(make_row(1, 统一社会信用代码=None,
                                                                  牵头申报单位="徐州 甲（集团）公司")))))
    assert p.key == "徐州甲集团公司"


def test_form_matched_by_name_when_code_missing() -> None:
    """A form whose credit code is blank matches the row with the same folded applicant name."""
    form = make_form(ROW1, 统一社会信用代码=None, 牵头申报单位="徐州1号科技 有限公司")
    [p] = build(make_message(1, attach_table(make_table(ROW1)), attach_form(form)))
    assert p.form is not None and Code.MISSING_FORM not in codes(p)


def test_form_matched_by_code_despite_other_name() -> None:
    """The credit code decides first: a form with the row's code but an abbreviated name still matches."""
    form = make_form(ROW1, 牵头申报单位="徐州一号")
    [p] = build(make_message(1, attach_table(make_table(ROW1)), attach_form(form)))
    assert p.form is not None and p.findings == []


def test_scanned_form_matched_by_file_name() -> None:
    """A scan named 申报书 is matched by the applicant name in its file name; its project is SCANNED_FORM (待审核)."""
    scan = attach_failed("2-徐州2号科技有限公司（盖章）申报书.pdf")
    table, form = attach_table(make_table(ROW1, ROW2)), attach_form(make_form(ROW1))
    projects = build(make_message(1, table, form, scan))
    p2 = by_number(projects)["XZ2024-云龙-002"]
    assert codes(p2) == [Code.SCANNED_FORM] and p2.status is Status.REVIEW and p2.form == scan
    assert "2-徐州2号科技有限公司（盖章）申报书.pdf" in p2.findings[0].message


@pytest.mark.parametrize("name", ["2-徐州2号科技有限公司（盖章）.pdf", "徐州2号科技有限公司扫描件.pdf"])
def test_scan_not_named_a_form_is_no_form(name: str) -> None:
    """A scan whose file name does not say 申报书/申请书 never stands in for the project's form (10.2)."""
    table = attach_table(make_table(ROW1, ROW2))
    projects = build(make_message(1, table, attach_form(make_form(ROW1)), attach_failed(name)))
    p2 = by_number(projects)["XZ2024-云龙-002"]
    assert codes(p2) == [Code.MISSING_FORM] and p2.form is None


def test_unreadable_form_gets_its_reason() -> None:
    """An encrypted docx matched by file name gives UNREADABLE_FILE with the parser's reason."""
    bad = attach_failed("徐州1号科技.docx", code="UNREADABLE_FILE", reason="文件已加密", sniffed="docx")
    [p] = build(make_message(1, attach_table(make_table(ROW1)), bad))
    assert codes(p) == [Code.UNREADABLE_FILE] and "文件已加密" in p.findings[0].message


def test_later_readable_form_replaces_scan() -> None:
    """A readable form sent after the scan supersedes it."""
    m1 = make_message(1, attach_table(make_table(ROW1)), attach_failed("徐州1号科技有限公司申报书.pdf"))
    m2 = make_message(2, attach_form(make_form(ROW1)))
    [p] = build(m1, m2)
    assert p.findings == [] and p.source_uids == [1, 2]


def test_failed_spreadsheet_is_not_a_form() -> None:
    """An unreadable xlsx named after an applicant is not a would-be form."""
    bad = attach_failed("徐州1号科技有限公司.xlsx", code="UNREADABLE_FILE", sniffed="xlsx")
    ledger = build_ledger([make_message(1, attach_table(make_table(ROW1)), bad)], CFG)
    assert codes(ledger.projects[0]) == [Code.MISSING_FORM] and ledger.unmatched_forms == []


def test_unmatched_form_listed_per_message() -> None:
    """A form for an applicant not in the current table is unmatched, attributed to its message."""
    stray = make_form(make_row(9))
    scan = attach_failed("申报书.pdf")
    m1 = make_message(1, attach_table(make_table(ROW1)), attach_form(make_form(ROW1)))
    m2 = make_message(2, attach_form(stray), scan)
    ledger = build_ledger([m1, m2], CFG)
    assert ledger.unmatched_forms == [UnmatchedForm("云龙区", stray.filename, 2),
                                      UnmatchedForm("云龙区", "申报书.pdf", 2)]
    assert unmatched_for(ledger, "云龙区", 1) == [] and len(unmatched_for(ledger, "云龙区", 2)) == 2
    assert unmatched_for(ledger, "鼓楼区") == []


def test_cross_district_agency_count() -> None:
    """One agency in projects of two districts flags both (待审核); other projects stay 受理."""
    shared = "徐州（联合）知识产权代理有限公司"
    yl = make_row(1, 合作服务机构=shared)
    gl = make_row(2, 合作服务机构="徐州(联合)知识产权代理有限公司")
    m1 = make_message(1, attach_table(make_table(yl, ROW3)), attach_form(make_form(yl)),
                      attach_form(make_form(ROW3)))
    m2 = make_message(2, attach_table(make_table(gl)), attach_form(make_form(gl, 所属地区="鼓楼区")),
                      district="鼓楼区")
    projects = build(m1, m2)
    assert [(p.district, codes(p)) for p in projects] == [
        ("云龙区", [Code.AGENCY_OVERLIMIT]), ("云龙区", []), ("鼓楼区", [Code.AGENCY_OVERLIMIT])]
    assert [p.status for p in projects] == [Status.REVIEW, Status.ACCEPTED, Status.REVIEW]


def test_over_quota_flags_every_project_of_the_district() -> None:
    """Four projects against a quota of 3 flag all four with OVER_QUOTA; the quota map is in config order."""
    rows = [make_row(n) for n in range(1, 5)]
    m1 = make_message(1, attach_table(make_table(*rows)), *(attach_form(make_form(r)) for r in rows))
    ledger = build_ledger([m1], CFG)
    assert [codes(p) for p in ledger.projects] == [[Code.OVER_QUOTA]] * 4
    assert list(ledger.quotas) == ["云龙区", "鼓楼区", "泉山区", "徐州经济技术开发区"]
    assert set(ledger.quotas.values()) == {3}
    at_quota = make_message(1, attach_table(make_table(*rows[:3])), *m1.attachments[1:4])
    assert [codes(p) for p in build(at_quota)] == [[], [], []]


def test_funding_split_for_state_units() -> None:
    """A 部省市属事业单位 is paid wholly by the city; other projects split by the district's share."""
    state = make_row(1, 部省市属事业单位="是", 申请资助金额=45.55)
    m1 = make_message(1, attach_table(make_table(state, ROW2)), attach_form(make_form(state)),
                      attach_form(make_form(ROW2)))
    p1, p2 = build(m1)
    assert (p1.city_share, p1.city_amount, p1.district_amount) == (1.0, 45.55, 0.0)
    assert (p2.city_share, p2.city_amount, p2.district_amount) == (0.5, 25.0, 25.0)


def test_form_fills_a_column_the_table_lacks() -> None:
    """Without a 部省市属事业单位 column, the form's answer is used; without either, 否."""
    row = make_row(1)
    del row.values["部省市属事业单位"]
    form = attach_form(make_form(row, 部省市属事业单位="是"))
    filled = build(make_message(1, attach_table(make_table(row)), form))
    bare = build(make_message(1, attach_table(make_table(row))))
    assert filled[0].values["部省市属事业单位"] == "是" and filled[0].city_amount == 50
    assert bare[0].values["部省市属事业单位"] == "否" and bare[0].city_amount == 25


def test_project_type_from_form_when_row_lacks_it() -> None:
    """A row without 项目类别 takes the form's title-page project type."""
    row = make_row(1, 项目类别=None, 申请资助金额=40)
    form = make_form(row, project_type="升级")
    [p] = build(make_message(1, attach_table(make_table(row)), attach_form(form)))
    assert p.project_type == "升级" and p.findings == []


def test_converted_invention_and_formula_text() -> None:
    """折算有效发明专利数 is computed and the row's formula_text is carried over."""
    row = make_row(1, 有效发明专利数=7, PCT申请数=3, 项目名称="=HYPERLINK(\"x\")")
    row.formula_text.append("项目名称")
    [p] = build(make_message(1, attach_table(make_table(row))))
    assert p.converted_invention == 13 and p.formula_text == ["项目名称"]


def test_order_by_district_config_then_number() -> None:
    """Projects come in config district order, then by number, whatever the mail order."""
    m1 = make_message(1, attach_table(make_table(make_row(5))), district="泉山区")
    m2 = make_message(2, attach_table(make_table(ROW1, ROW2)), district="鼓楼区")
    m3 = make_message(3, attach_table(make_table(ROW3)))
    assert [p.number for p in build(m1, m2, m3)] == [
        "XZ2024-云龙-001", "XZ2024-鼓楼-001", "XZ2024-鼓楼-002", "XZ2024-泉山-001"]
    assert [p.number for p in district_view(build_ledger([m1, m2, m3], CFG), "鼓楼区")] == [
        "XZ2024-鼓楼-001", "XZ2024-鼓楼-002"]


def _mail() -> list[StoredMessage]:
    rows = [make_row(n) for n in range(1, 6)]
    return [
        make_message(1, attach_form(make_form(rows[0])), attach_failed("徐州2号科技有限公司.pdf")),
        make_message(2, attach_table(make_table(*rows[:3])), district="鼓楼区"),
        make_message(3, attach_table(make_table(*rows[:4])), attach_form(make_form(rows[2]))),
        make_message(4, attach_table(make_table(rows[3], rows[0], rows[4]))),
        make_message(5, attach_form(make_form(rows[4], 申请资助金额=99)),
                     attach_form(make_form(make_row(8)))),
        make_message(6, attach_table(make_table(*rows)), outcome=Outcome.LATE),
    ]


def test_pure_and_order_independent() -> None:
    """Same messages give equal ledgers, whatever their order, and the input is left untouched."""
    mail = _mail()
    before = copy.deepcopy(mail)
    first = build_ledger(mail, CFG)
    assert build_ledger(mail, CFG) == first
    for seed in range(5):
        shuffled = mail[:]
        random.Random(seed).shuffle(shuffled)
        assert build_ledger(shuffled, CFG) == first
    assert mail == before
    assert [p.number for p in first.projects] == [
        "XZ2024-云龙-001", "XZ2024-云龙-004", "XZ2024-云龙-005",
        "XZ2024-鼓楼-001", "XZ2024-鼓楼-002", "XZ2024-鼓楼-003"]


# -- attachments and stamped tables (spec 10.2) -----------------------------------------------------

from factories import attach_doc  # noqa: E402

from parsers.types import OtherDocument  # noqa: E402


def agreement(name: str = "徐州2号科技有限公司合作协议.pdf", **kw) -> OtherDocument:
    return OtherDocument(name, "agreement", "合作协议", **kw)


def pledge(name: str = "徐州2号科技有限公司信用承诺书.pdf", **kw) -> OtherDocument:
    return OtherDocument(name, "pledge", "信用承诺书", **kw)


def test_missing_attachment_names_what_is_missing() -> None:
    """A read form without 合作协议 / 信用承诺书 pages or files is MISSING_ATTACHMENT (待审核), naming both."""
    form = make_form(ROW2, attachments=())
    [p] = build(make_message(1, attach_table(make_table(ROW2)), attach_form(form)))
    assert codes(p) == [Code.MISSING_ATTACHMENT] and p.status is Status.REVIEW and p.attachments == ()
    assert "合作协议、信用承诺书" in p.findings[0].message


@pytest.mark.parametrize(("docs", "present"), [
    ((agreement(scanned=True), pledge()), ("合作协议", "信用承诺书")),  # by file name
    ((agreement("协议.pdf", applicant="徐州2号科技有限公司"), pledge("承诺.pdf", credit_code=make_credit_code(2))),
     ("合作协议", "信用承诺书")),  # by applicant, by code
    ((agreement(),), ("合作协议",)),
    ((agreement("徐州1号科技有限公司合作协议.pdf"),), ()),  # another project's
])
def test_attachment_files_matched_like_forms(docs: tuple[OtherDocument, ...], present: tuple[str, ...]) -> None:
    """Separate 合作协议 / 信用承诺书 files count for the row they match (code, applicant, file name)."""
    table = attach_table(make_table(ROW1, ROW2))
    forms = [attach_form(make_form(ROW1)), attach_form(make_form(ROW2, attachments=()))]
    m2 = make_message(2, *(attach_doc(d) for d in docs))
    p2 = by_number(build(make_message(1, table, *forms), m2))["XZ2024-云龙-002"]
    assert p2.attachments == present
    assert (Code.MISSING_ATTACHMENT in codes(p2)) == (len(present) < 2)
    if docs and present:
        assert p2.source_uids == [1, 2]


def test_pages_and_files_add_up() -> None:
    """A form with the 合作协议 bound in and a 信用承诺书 sent alone has both."""
    form = attach_form(make_form(ROW2, attachments=("合作协议",)))
    [p] = build(make_message(1, attach_table(make_table(ROW2)), form, attach_doc(pledge())))
    assert p.attachments == ("合作协议", "信用承诺书") and p.findings == []


def test_required_attachments_from_config() -> None:
    """rules.required_attachments decides what is required; an empty list requires nothing."""
    cfg = make_config(rules={"required_attachments": []})
    message = make_message(1, attach_table(make_table(ROW1)), attach_form(make_form(ROW1, attachments=())))
    assert build_ledger([message], cfg).projects[0].findings == []
    cfg = make_config(rules={"required_attachments": ["合作协议"]})
    message = make_message(1, attach_table(make_table(ROW1)), attach_form(make_form(ROW1, attachments=("合作协议",))))
    assert build_ledger([message], cfg).projects[0].findings == []


def test_scanned_agreement_never_stands_in_for_the_form() -> None:
    """The reported case: a scanned 合作协议 named after the applicant leaves the project with its readable form."""
    table, form = attach_table(make_table(ROW2)), attach_form(make_form(ROW2))
    scan = attach_doc(agreement("徐州2号科技有限公司.合作协议.pdf", scanned=True))
    [p] = build(make_message(1, table, form), make_message(2, scan))
    assert p.status is Status.ACCEPTED and p.form == form and p.findings == []


@pytest.mark.parametrize(("name", "is_form"), [
    ("徐州2号科技有限公司.pdf", True), ("徐州2号科技有限公司申报书.pdf", True),
    ("徐州2号科技有限公司合作协议.pdf", False), ("徐州2号科技有限公司承诺书.pdf", False),
    ("徐州2号科技有限公司汇总表.pdf", False),
])
def test_unreadable_file_is_a_form_unless_named_otherwise(name: str, is_form: bool) -> None:
    """An encrypted or corrupt PDF is matched as a form by file name, unless it says 合作协议, 承诺书 or 汇总表."""
    bad = attach_failed(name, code="UNREADABLE_FILE", reason="PDF 文件已加密")
    [p] = build(make_message(1, attach_table(make_table(ROW2)), bad))
    assert codes(p) == ([Code.UNREADABLE_FILE] if is_form else [Code.MISSING_FORM])


def test_stamped_table_recorded_per_district() -> None:
    """A stamped summary table marks its district; it is no form and no unmatched form."""
    stamped = attach_doc(OtherDocument("云龙区汇总表（盖章）.pdf", "stamped_table", "盖章汇总表", scanned=True))
    m1 = make_message(1, attach_table(make_table(ROW1)), attach_form(make_form(ROW1)), stamped)
    m2 = make_message(2, attach_table(make_table(ROW2)), district="鼓楼区")
    ledger = build_ledger([m1, m2], CFG)
    assert ledger.stamped_tables == {"云龙区"} and ledger.unmatched_forms == []
    assert ledger.projects[0].status is Status.ACCEPTED


def test_late_stamped_table_does_not_count() -> None:
    """A stamped table in a late message is not recorded as received."""
    stamped = attach_doc(OtherDocument("汇总表.pdf", "stamped_table", "盖章汇总表", scanned=True))
    late = make_message(1, stamped, outcome=Outcome.LATE, arrival=DEADLINE + timedelta(seconds=1))
    assert build_ledger([late], CFG).stamped_tables == set()
