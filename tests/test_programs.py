"""The notice's other programs and other years share the mailbox (spec 10.1): recognized, listed, never merged."""

from __future__ import annotations

import pytest
from factories import attach_doc, attach_form, attach_table, make_config, make_form, make_message, make_row, make_table

from intake.classify import message_findings
from intake.merge import build_ledger
from intake.models import Code, OtherFile, Outcome, Status
from intake.store import NewAttachment
from parsers.documents import parse_document
from parsers.types import DocKind, MailParts, OtherDocument, SummaryTable
from samples.forms import form_pdf, sample_form_fields
from samples.tables import sample_row, summary_table_xlsx

CFG = make_config()

# program -> (summary table title, form title lines), as the notice's attachments 1–8 name them
OTHERS = {
    "知识产权保护": ("2024年徐州市知识产权保护项目申报汇总表", ("2024年徐州市知识产权保护项目申报书",)),
    "维权援助体系建设": ("2024年徐州市知识产权维权援助体系建设项目申报汇总表",
                   ("2024年徐州市知识产权维权援助体系建设项目申报书",)),
    "质押融资": ("2024年徐州市知识产权质押融资项目申报汇总表", ("2024年徐州市知识产权质押融资项目申报书",)),
    "企业专利投保": ("2024年徐州市企业专利投保项目申报汇总表", ("2024年徐州市企业专利投保项目申报书",)),
    "电子商务平台知识产权保护管理国家标准": (
        "2024年贯彻实施《电子商务平台知识产权保护管理》国家标准项目申报汇总表",
        ("2024年贯彻实施《电子商务平台知识产权保护管理》国家标准项目申报书",)),
    "高价值商标品牌培育计划": ("2024年徐州市高价值商标品牌培育计划项目申报汇总表",
                       ("2024年徐州市知识产权计划项目申报书", "（高价值商标品牌培育计划项目）")),
    "企业知识产权战略推进计划": ("2024年徐州市企业知识产权战略推进计划项目申报汇总表",
                        ("2024年徐州市知识产权计划项目申报书", "（企业知识产权战略推进计划项目）")),
}
PARTS = MailParts(message_id="<m@x>", subject="材料", from_addr="ylq@example.cn", from_name="", date_header=None,
                  auto_reasons=(), attachments=(), problems=(), cloud_links=())


def table_file(title: str, name: str = "汇总表.xlsx") -> tuple[bytes, str]:
    return summary_table_xlsx("云龙区", [sample_row(0), sample_row(1)], title_text=title), name


def form_file(titles: tuple[str, ...]) -> bytes:
    return form_pdf(sample_form_fields(0), titles=titles)


def new_attachment(doc, sniffed: str) -> NewAttachment:
    return NewAttachment(filename=doc.filename, content_type="application/octet-stream", sniffed=sniffed,
                         sha256="0" * 64, size=1, path="x", kind=doc.kind, parsed=doc.to_dict())


def ours_then(doc, sniffed: str):
    """The district's own table and form (uid 1), then ``doc`` (uid 2): the ledger after both."""
    row = make_row(1)
    m1 = make_message(1, attach_table(make_table(row)), attach_form(make_form(row)))
    return build_ledger([m1, make_message(2, attach_doc(doc, sniffed))], CFG)


@pytest.mark.parametrize("program", list(OTHERS))
def test_other_programs_table_is_listed_not_merged(program: str) -> None:
    """Another program's summary table is other_program with its program's name; the district's projects stay."""
    data, name = table_file(OTHERS[program][0])
    doc = parse_document(data, name, "xlsx")
    assert isinstance(doc, OtherDocument) and doc.kind == DocKind.OTHER_PROGRAM
    assert (doc.program, doc.recognized_as, doc.year) == (program, "汇总表", 2024)
    ledger = ours_then(doc, "xlsx")
    assert [p.status for p in ledger.projects] == [Status.ACCEPTED]
    note = f"属于{program}，不纳入高价值专利培育计划受理"
    assert ledger.other_files == [OtherFile("云龙区", 2, name, "汇总表", program, note)]
    [finding] = message_findings(Outcome.PROCESSED, PARTS, [new_attachment(doc, "xlsx")], campaign=CFG.campaign)
    assert finding.code is Code.OTHER_PROGRAM and program in finding.message and finding.severity == "info"


@pytest.mark.parametrize("program", list(OTHERS))
def test_other_programs_form_is_listed_not_merged(program: str) -> None:
    """Another program's 申报书 is other_program with its program's name, never matched as a form."""
    doc = parse_document(form_file(OTHERS[program][1]), "徐州恒达智能装备有限公司申报书.pdf", "pdf")
    assert isinstance(doc, OtherDocument) and doc.kind == DocKind.OTHER_PROGRAM
    assert (doc.program, doc.recognized_as, doc.applicant) == (program, "申报书", "徐州恒达智能装备有限公司")
    ledger = ours_then(doc, "pdf")
    assert [p.status for p in ledger.projects] == [Status.ACCEPTED] and ledger.unmatched_forms == []
    assert [(f.program, f.recognized_as) for f in ledger.other_files] == [(program, "申报书")]
    [finding] = message_findings(Outcome.PROCESSED, PARTS, [new_attachment(doc, "pdf")], campaign=CFG.campaign)
    assert finding.code is Code.OTHER_PROGRAM and f"是{program}的申报书" in finding.message


def test_trademark_table_does_not_replace_the_patent_projects() -> None:
    """The reported case: a 高价值商标品牌培育计划 汇总表 after 云龙区's patent table leaves its projects 受理."""
    data = summary_table_xlsx("云龙区", [sample_row(0), sample_row(1)])
    ours = parse_document(data, "云龙区汇总表.xlsx", "xlsx")
    rows = [sample_row(5), sample_row(6)]
    trademark = parse_document(summary_table_xlsx("云龙区", rows, title_text=OTHERS["高价值商标品牌培育计划"][0]),
                               "云龙区高价值商标汇总表.xlsx", "xlsx")
    assert isinstance(ours, SummaryTable) and isinstance(trademark, OtherDocument)
    m1 = make_message(1, attach_doc(ours, "xlsx"))
    ledger = build_ledger([m1, make_message(2, attach_doc(trademark, "xlsx"))], CFG)
    assert [p.values["牵头申报单位"] for p in ledger.projects] == [sample_row(0)["牵头申报单位"],
                                                              sample_row(1)["牵头申报单位"]]


def test_title_names_the_program_before_the_file_name() -> None:
    """The title decides; only a table without a title is known by its file name."""
    data, _ = table_file("2024年徐州市高价值专利培育计划项目申报汇总表")
    assert isinstance(parse_document(data, "质押融资汇总表.xlsx", "xlsx"), SummaryTable)
    untitled = summary_table_xlsx("云龙区", [sample_row(0)], title=False)
    doc = parse_document(untitled, "2024年质押融资项目汇总表.xlsx", "xlsx")
    assert isinstance(doc, OtherDocument) and doc.program == "质押融资"
    assert isinstance(parse_document(untitled, "云龙区汇总表.xlsx", "xlsx"), SummaryTable)


def test_unnamed_table_without_patent_columns_is_not_ours() -> None:
    """A table naming no program is ours only when its header has a patent column."""
    names = ["序号", "项目名称", "牵头申报单位", "统一社会信用代码", "申请资助金额", "联系人"]
    data = summary_table_xlsx("云龙区", [sample_row(0)], title=False, columns=names)
    doc = parse_document(data, "名单.xlsx", "xlsx")
    assert isinstance(doc, OtherDocument) and doc.kind == DocKind.OTHER_PROGRAM and doc.program is None
    [finding] = message_findings(Outcome.PROCESSED, PARTS, [new_attachment(doc, "xlsx")], campaign=CFG.campaign)
    assert finding.code is Code.OTHER_PROGRAM and "未注明所属项目" in finding.message
    with_patents = summary_table_xlsx("云龙区", [sample_row(0)], title=False, columns=[*names, "有效专利数"])
    assert isinstance(parse_document(with_patents, "名单.xlsx", "xlsx"), SummaryTable)


@pytest.mark.parametrize("kind", ["table", "form"])
def test_our_program_of_another_year_is_wrong_campaign(kind: str) -> None:
    """A 2023 高价值专利培育计划 table or form is WRONG_CAMPAIGN (fix), listed and not merged."""
    if kind == "table":
        data, name = table_file("2023年徐州市高价值专利培育计划项目申报汇总表")
        sniffed = "xlsx"
    else:
        data = form_file(("2023年徐州市知识产权计划项目申报书", "（高价值专利培育计划新建项目）"))
        name, sniffed = "徐州恒达智能装备有限公司申报书.pdf", "pdf"
    doc = parse_document(data, name, sniffed)
    assert doc is not None and doc.kind in (DocKind.SUMMARY_TABLE, DocKind.APPLICATION_FORM) and doc.year == 2023
    [finding] = message_findings(Outcome.PROCESSED, PARTS, [new_attachment(doc, sniffed)], campaign=CFG.campaign)
    assert finding.code is Code.WRONG_CAMPAIGN and finding.severity == "fix" and "2023年" in finding.message
    ledger = ours_then(doc, sniffed)
    assert [p.status for p in ledger.projects] == [Status.ACCEPTED] and ledger.unmatched_forms == []
    assert [f.note for f in ledger.other_files] == ["为2023年材料，与本次2024年申报不符，未予受理"]


def test_campaign_year_from_the_number_prefix() -> None:
    """Without a year in campaign.name, the 受理编号 prefix (XZ2025) gives the campaign's year."""
    cfg = make_config(campaign={"name": "徐州市高价值专利培育计划", "number_prefix": "XZ2025"})
    data, name = table_file("2024年徐州市高价值专利培育计划项目申报汇总表")
    doc = parse_document(data, name, "xlsx")
    [finding] = message_findings(Outcome.PROCESSED, PARTS, [new_attachment(doc, "xlsx")], campaign=cfg.campaign)
    assert finding.code is Code.WRONG_CAMPAIGN and "2025年" in finding.message
    assert build_ledger([make_message(1, attach_doc(doc, "xlsx"))], cfg).projects == []


def test_current_year_and_no_year_are_ours() -> None:
    """A 2024 table and a table whose title names no year both merge."""
    for title in ("2024年徐州市高价值专利培育计划项目申报汇总表", "高价值专利培育计划项目申报汇总表"):
        data, name = table_file(title)
        doc = parse_document(data, name, "xlsx")
        assert isinstance(doc, SummaryTable)
        assert message_findings(Outcome.PROCESSED, PARTS, [new_attachment(doc, "xlsx")], campaign=CFG.campaign) == ()
        assert len(build_ledger([make_message(1, attach_doc(doc, "xlsx"))], CFG).projects) == 2


def test_whole_mailbox_through_the_worker(imap_account, smtp_server, tmp_path) -> None:
    """On Dovecot: our table and form, a 商标 table, a scanned 合作协议 named after the applicant and a stamped
    table in one mail; the project is 受理 with the scan as its 合作协议, the rest listed, OTHER_PROGRAM noted."""
    from support import SENDERS, on_time
    from support import make_config as full_config

    from intake.compose import compose
    from intake.store import Store
    from intake.worker import Worker
    from samples.forms import scanned_pdf
    from samples.projects import sample_project

    p = sample_project(0)
    applicant = p.row["牵头申报单位"]
    files = [
        ("云龙区汇总表.xlsx", summary_table_xlsx("云龙区", [p.row])),
        (f"{applicant}申报书.pdf", form_pdf(p.form, attached=("信用承诺书",))),
        ("商标汇总表.xlsx", table_file(OTHERS["高价值商标品牌培育计划"][0])[0]),
        (f"{applicant}合作协议.pdf", scanned_pdf()),
        ("云龙区汇总表（盖章）.pdf", scanned_pdf()),
    ]
    imap_account.append(compose(sender=SENDERS["云龙区"], subject="申报材料", attachments=files, arrival=on_time(5),
                                message_id="<whole@example.cn>"), on_time(5))
    cfg = full_config(tmp_path / "var", imap=imap_account.mailbox_settings(),
                      smtp={"host": smtp_server.host, "port": smtp_server.port})
    with Store(cfg.paths.data_dir / "intake.db") as store:
        worker = Worker(cfg, store)
        worker.poll()
        ledger = worker.ledger()
        [message] = store.messages()
    [project] = ledger.projects
    assert project.status is Status.ACCEPTED and project.attachments == ("合作协议", "信用承诺书")
    assert project.form is not None and project.form.filename == f"{applicant}申报书.pdf"
    assert [(f.filename, f.program) for f in ledger.other_files] == [("商标汇总表.xlsx", "高价值商标品牌培育计划")]
    assert ledger.stamped_tables == {"云龙区"}
    assert [f.code for f in message.findings] == [Code.OTHER_PROGRAM]
    assert [a.kind for a in message.attachments] == ["summary_table", "application_form", "other_program",
                                                     "agreement", "stamped_table"]
    assert len(smtp_server.messages) == 1
