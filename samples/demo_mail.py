"""The demo's sample mail: what four district bureaus send during a call, made by code.

Three waves, each appended to the embedded mailbox before a poll:

1. 5 Nov: 云龙区 sends a zip of its table and forms (one form disagrees with its
   row) and, beside it, its table for another program of the notice (高价值商标品牌培育计划:
   listed, never merged); 鼓楼区 sends a table and only one of two forms, one
   project far below the patent threshold, another an applicant the bureau's
   registry shows with an ongoing city project (新建 excluded); 泉山区 sends a table
   with an upgrade project and a .docx form, sharing an agency with 云龙区, which
   turns 云龙区's project 待审核 after its receipt said 受理: 云龙区 gets a
   状态变更通知; a district's out-of-office auto-reply and a stranger's mail arrive too.
2. 7–8 Nov: corrections: 云龙区's fixed form with a scanned 合作协议 named after
   the applicant (an attachment, not a form); 鼓楼区's missing form; 经开区 sends
   its material, one form a scan, one credit code mistyped.
3. 9 Nov (after the 8 Nov deadline): 泉山区 sends a late addition.

Every file is built here from ``samples`` (nothing read from disk), so the demo
runs on any machine right after ``pip install``. ``demo_registry`` is the sample
registry the demo's config points at.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from intake.compose import compose
from samples.forms import form_docx, form_pdf, scanned_pdf
from samples.projects import SampleProject, credit_code, sample_project
from samples.registry import registry_csv
from samples.tables import summary_table_xlsx, trademark_table_xlsx

CST = timezone(timedelta(hours=8))
ADDRESS = {
    "云龙区": ("yunlong-ip@example.cn", "云龙区市场监督管理局（知识产权局）"),
    "鼓楼区": ("gulou-ip@example.cn", "鼓楼区知识产权局"),
    "泉山区": ("quanshan-ip@example.cn", "泉山区知识产权局"),
    "徐州经济技术开发区": ("xzkfq-ip@example.cn", "徐州经济技术开发区科技局"),
}


TRADEMARK_TABLE = "云龙区2024年高价值商标品牌培育计划项目申报汇总表.xlsx"
TRADEMARK_ROWS = [
    ("彭城老字号品牌培育", "徐州彭城食品有限公司", credit_code(900), 36, 2, 30, "周敏", "0516-83001234", ""),
    ("淮海工程机械商标国际化", "徐州淮海机械股份有限公司", credit_code(901), 58, 5, 40, "陈刚", "0516-83005678",
     ""),
]


@dataclass(frozen=True)
class DemoMail:
    filename: str  # where the demo saves it, e.g. 01-云龙区.eml
    raw: bytes
    arrival: datetime
    wave: int
    label: str  # one line for the progress display


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 11, day, hour, minute, tzinfo=CST)


def _form(p: SampleProject, *, docx: bool = False) -> tuple[str, bytes]:
    name = p.row["牵头申报单位"] + "申报书"
    kind = p.row["项目类别"]
    if docx:
        return name + ".docx", form_docx(p.form, project_type=kind)
    return name + ".pdf", form_pdf(p.form, project_type=kind)


def _table(district: str, projects: list[SampleProject], name: str | None = None) -> tuple[str, bytes]:
    rows = [{**p.row, "序号": n} for n, p in enumerate(projects, start=1)]
    return name or f"{district}2024年高价值专利培育计划申报汇总表.xlsx", summary_table_xlsx(district, rows)


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
    return buf.getvalue()


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def mail(self, district: str | None, subject: str, when: datetime, wave: int, label: str,
             files: list[tuple[str, bytes]] = (), *, sender: tuple[str, str] | None = None,
             headers: list[tuple[str, str]] = (), body: str = "") -> DemoMail:
        self.n += 1
        address, name = sender or ADDRESS[district or ""]
        raw = compose(sender=address, sender_name=name, subject=subject, attachments=files, arrival=when,
                      message_id=f"<demo-{self.n:02d}@{address.split('@')[1]}>", headers=headers, body=body)
        return DemoMail(f"{self.n:02d}-{district or address}.eml", raw, when, wave, label)


def _projects() -> dict[str, list[SampleProject]]:
    yl = [sample_project(i, district="云龙区") for i in range(3)]
    gl = [sample_project(3, district="鼓楼区"),
          sample_project(4, district="鼓楼区").with_values(有效专利数=42, 有效发明专利数=3, PCT申请数=0)]
    qs = [sample_project(5, district="泉山区"),
          sample_project(6, district="泉山区", project_type="升级").with_values(合作服务机构=yl[2].row["合作服务机构"])]
    return {"云龙区": yl, "鼓楼区": gl, "泉山区": qs}


def demo_registry() -> bytes:
    """The bureau's registry for the demo: 鼓楼区's first applicant has an ongoing (在研) city project of
    this program, so its 新建 project is excluded; 泉山区's upgrade applicant has the accepted city project
    an upgrade needs; one provincial 示范中心 of a company that does not apply."""
    p = _projects()
    excluded, upgrade = p["鼓楼区"][0].row, p["泉山区"][1].row
    return registry_csv([
        (excluded["统一社会信用代码"], excluded["牵头申报单位"], "矿山装备高价值专利培育中心", "市级",
         "高价值专利培育计划", 2023, "在研"),
        (upgrade["统一社会信用代码"], upgrade["牵头申报单位"], "功率器件高价值专利培育中心", "市级",
         "高价值专利培育计划", 2020, "已验收"),
        (credit_code(902), "徐州某重工科技有限公司", "工程机械高价值专利培育示范中心", "省级",
         "高价值专利培育计划", 2021, "已验收"),
    ])


def build_demo_mail() -> list[DemoMail]:
    """The sample mail of all three waves, in arrival order."""
    p = _projects()
    yl, gl, qs = p["云龙区"], p["鼓楼区"], p["泉山区"]
    kf = [sample_project(7, district="徐州经济技术开发区"), sample_project(8, district="徐州经济技术开发区")]
    typo = sample_project(10, district="徐州经济技术开发区")
    code = typo.row["统一社会信用代码"]
    kf.append(typo.with_values(统一社会信用代码=code[:-1] + ("X" if code[-1] != "X" else "Y")))  # BAD_CREDIT_CODE
    wrong = yl[1].with_form(申请资助金额=45)  # the form says 45, the table 50: MISMATCH
    c = _Counter()
    return [
        c.mail("云龙区", "云龙区2024年知识产权项目申报材料", _at(5, 9, 12), 1,
               "云龙区: a zip with its table and 3 forms (one form disagrees with the table), and beside it its "
               "table for another program (高价值商标品牌培育计划: listed, not merged)",
               [(TRADEMARK_TABLE, trademark_table_xlsx("云龙区", TRADEMARK_ROWS)),
                ("云龙区申报材料.zip", _zip([_table("云龙区", yl), _form(yl[0]), _form(wrong), _form(yl[2])]))]),
        c.mail("鼓楼区", "鼓楼区申报汇总表及申报书", _at(5, 10, 30), 1,
               "鼓楼区: table + 1 of 2 forms; one project far below the patent threshold, one applicant the "
               "registry shows with an ongoing city project (新建 excluded)",
               [_table("鼓楼区", gl), _form(gl[1])]),
        c.mail("泉山区", "泉山区高价值专利培育计划申报", _at(5, 14, 5), 1,
               "泉山区: table + forms (one .docx, one upgrade project sharing 云龙区's agency: 云龙区's "
               "project turns 待审核, and 云龙区 gets a 状态变更通知)",
               [_table("泉山区", qs), _form(qs[0]), _form(qs[1], docx=True)]),
        c.mail("鼓楼区", "自动回复：关于报送申报材料的通知", _at(5, 16, 0), 1,
               "鼓楼区's out-of-office auto-reply (gets no reply)",
               headers=[("Auto-Submitted", "auto-replied"), ("X-Autoreply", "yes")],
               body="您好，我已休假，11月6日返回，急事请致电。"),
        c.mail(None, "合作咨询", _at(6, 8, 45), 1, "a stranger's mail (recorded as unknown_sender, no reply)",
               sender=("sales@example.com", "某咨询公司"), body="贵局好，我司可提供专利申报辅导服务。"),
        c.mail("云龙区", "更正：云翔新材料申报书及合作协议", _at(7, 11, 20), 2,
               "云龙区: the corrected form, and a scanned 合作协议 named after the applicant (not a form)",
               [(yl[1].row["牵头申报单位"] + "合作协议.pdf", scanned_pdf()), _form(yl[1])]),
        c.mail("鼓楼区", "补交申报书", _at(7, 15, 0), 2, "鼓楼区: the missing form", [_form(gl[0])]),
        c.mail("徐州经济技术开发区", "经开区申报材料", _at(8, 17, 40), 2,
               "经开区: table + 3 forms, one a scan, one with a mistyped credit code",
               [_table("徐州经济技术开发区", kf), _form(kf[0]), _form(kf[2]),
                (kf[1].row["牵头申报单位"] + "申报书.pdf", scanned_pdf())]),
        c.mail("泉山区", "补充申报项目", _at(9, 8, 30), 3, "泉山区: a late addition (after 8 Nov 23:59)",
               [_table("泉山区", [*qs, sample_project(9, district="泉山区")])]),
    ]
