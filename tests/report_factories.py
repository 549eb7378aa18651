"""Hand-built ledgers, messages and projects for the report tests, the LibreOffice check and the benchmark.

Only ``intake.models`` values, built directly: the reports must not depend on the merge.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from intake.models import (
    Code,
    Finding,
    Ledger,
    Outcome,
    Project,
    ReplyInfo,
    ReplyKind,
    ReplyState,
    Severity,
    Status,
    StoredAttachment,
    StoredMessage,
    UnmatchedForm,
)

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DEADLINE = datetime(2024, 11, 8, 23, 59, 59, tzinfo=SHANGHAI)
QUOTAS = {"云龙区": 3, "鼓楼区": 3, "泉山区": 4, "徐州经济技术开发区": 5}
SENDERS = {"云龙区": "ylq-ip@example.cn", "鼓楼区": "glq-ip@example.cn", "泉山区": "qsq-ip@example.cn",
           "徐州经济技术开发区": "jkq-ip@example.cn"}
FINDING_TEXT = {
    Code.MISSING_FORM: "汇总表中有此项目，但未收到对应的申报书，请补充发送申报书。",
    Code.MISMATCH: "申报书中的申请资助金额（45万元）与汇总表（50万元）不一致，请核对后重新发送。",
    Code.FUNDING_OVER_CAP: "新建项目申请资助金额不得超过50万元，请调整后重新发送汇总表。",
    Code.PATENTS_BELOW_THRESHOLD: "有效专利数和折算有效发明专利数均未达到新建项目的申报条件。",
    Code.AGENCY_OVERLIMIT: "同一合作服务机构参与了多个项目，由市局审核。",
    Code.SCANNED_FORM: "申报书为扫描件，无法提取文字，由市局人工审核。",
    Code.UNRECOGNIZED_FILE: "文件既不是申报汇总表也不是申报书，未予处理。",
    Code.LATE: "本邮件已超过申报截止时间，逾期材料不予受理。",
}


def finding(code: Code | str, message: str | None = None, file: str | None = None) -> Finding:
    return Finding.of(code, message or FINDING_TEXT.get(Code(code), f"{code} 说明"), file)


def attachment(filename: str, kind: str = "application_form", **kw: Any) -> StoredAttachment:
    n = kw.pop("id", zlib.crc32(filename.encode()) % 100_000)
    digest = f"{n:064x}"
    suffix = "." + filename.rpartition(".")[2] if "." in filename else ".bin"
    base: dict[str, Any] = dict(id=n, filename=filename, sha256=digest, size=1024, sniffed=suffix[1:],
                                kind=kind, path=f"archive/{digest[:2]}/{digest}{suffix}")
    return StoredAttachment(**{**base, **kw})


def message(uid: int, district: str | None = "云龙区", **kw: Any) -> StoredMessage:
    base: dict[str, Any] = dict(
        id=uid, uid=uid, message_id=f"<m{uid}@example.cn>",
        sender=SENDERS.get(district or "", "x@example.org"),
        district=district, subject=f"{district or ''}2024年高价值专利培育计划申报材料",
        arrival=datetime(2024, 11, 5, 1, 0, tzinfo=UTC) + timedelta(minutes=uid), outcome=Outcome.PROCESSED,
    )
    return StoredMessage(**{**base, **kw})


def project(number: str, district: str = "云龙区", name: str = "高价值专利培育项目", **kw: Any) -> Project:
    values = {
        "项目名称": name, "牵头申报单位": "徐州某某科技有限公司", "统一社会信用代码": "91320300MA1MXXXX0X",
        "单位性质": "企业", "技术领域": "高端装备制造", "合作服务机构": "徐州某知识产权代理有限公司",
        "有效专利数": 86, "有效发明专利数": 12, "PCT申请数": 1, "申请资助金额": 50,
    }
    values.update(kw.pop("values", {}))
    findings = kw.pop("findings", [])
    base: dict[str, Any] = dict(
        number=number, district=district, key=values["统一社会信用代码"], values=values, project_type="新建",
        findings=findings, status=status_of(findings), converted_invention=14.0, city_share=0.5,
        city_amount=25.0, district_amount=25.0, arrival=datetime(2024, 11, 5, 1, 1, tzinfo=UTC),
        source_uids=[1],
    )
    return Project(**{**base, **kw})


def status_of(findings: list[Finding]) -> Status:
    severities = {f.severity for f in findings}
    for severity, status in ((Severity.REJECT, Status.REJECTED), (Severity.FIX, Status.NEEDS_FIX),
                             (Severity.REVIEW, Status.REVIEW)):
        if severity in severities:
            return status
    return Status.ACCEPTED


# -- a realistic sample: four districts, mixed statuses ----------------------

APPLICANTS = [
    ("徐工集团工程机械股份有限公司", "工程机械智能控制高价值专利培育", "高端装备制造", "企业"),
    ("中国矿业大学", "矿山安全监测高价值专利培育", "安全应急装备", "高校"),
    ("江苏师范大学", "新型光电材料高价值专利培育", "新材料", "高校"),
    ("徐州重型机械有限公司", "大吨位起重机关键技术专利培育", "高端装备制造", "企业"),
    ("江苏中能硅业科技发展有限公司", "高纯多晶硅制备专利培育", "新能源", "企业"),
    ("徐州医科大学", "麻醉药物靶点高价值专利培育", "生物医药", "高校"),
    ("江苏恩华药业股份有限公司", "中枢神经药物高价值专利培育", "生物医药", "企业"),
    ("徐州海伦哲专用车辆股份有限公司", "电力应急保障车专利培育", "专用车辆", "企业"),
    ("江苏天明机械集团有限公司", "智能液压支架专利培育", "矿山装备", "企业"),
    ("徐州市检验检测中心", "智能检测仪器高价值专利培育", "检验检测", "科研院所"),
    ("江苏维维乐康食品有限公司", "功能性植物蛋白专利培育", "食品加工", "企业"),
    ("徐州工业职业技术学院", "工业机器人集成应用专利培育", "智能制造", "高校"),
]
AGENCIES = ["徐州市淮海知识产权代理有限公司", "江苏汉彭知识产权代理事务所", "南京苏科专利代理有限责任公司",
            "徐州创荣知识产权代理事务所", "北京集佳知识产权代理有限公司徐州分公司"]
FINDING_MIX: list[list[Code]] = [[], [], [Code.MISMATCH], [], [Code.AGENCY_OVERLIMIT], [Code.MISSING_FORM],
                                 [], [Code.PATENTS_BELOW_THRESHOLD, Code.MISMATCH], [Code.SCANNED_FORM], [],
                                 [Code.FUNDING_OVER_CAP], []]


def sample_ledger(n_projects: int = 12, n_messages: int = 8, seed: int = 2024) -> tuple[
    Ledger, list[StoredMessage], dict[int, ReplyInfo]
]:
    """A ledger spread over the four districts, its messages and their replies."""
    rng = random.Random(seed)
    districts = list(QUOTAS)
    messages = [_sample_message(uid, districts[(uid - 1) % len(districts)], rng)
                for uid in range(1, n_messages + 1)]
    projects = [_sample_project(i, districts[i % len(districts)], messages, rng) for i in range(n_projects)]
    replies = {m.id: ReplyInfo(m.id, ReplyKind.LATE if m.outcome is Outcome.LATE else ReplyKind.RECEIPT,
                               ReplyState.SENT, m.arrival + timedelta(minutes=5)) for m in messages}
    unmatched = [UnmatchedForm(messages[0].district or "", "多余的申报书.pdf", messages[0].uid)]
    return Ledger(projects, unmatched, dict(QUOTAS)), messages, replies


def _sample_message(uid: int, district: str, rng: random.Random) -> StoredMessage:
    files = (attachment(f"{district}申报汇总表.xlsx", "summary_table", id=uid * 10),
             attachment("多余的申报书.pdf", id=uid * 10 + 1),
             attachment("说明.docx", "unrecognized", id=uid * 10 + 2))
    late = uid % 7 == 0
    findings = (finding(Code.LATE),) if late else (finding(Code.UNRECOGNIZED_FILE, file="说明.docx"),)
    arrival = datetime(2024, 11, 1, 2, 0, tzinfo=UTC) + timedelta(minutes=7 * uid + rng.randint(0, 6))
    return message(uid, district, arrival=arrival, attachments=files, findings=findings,
                   outcome=Outcome.LATE if late else Outcome.PROCESSED)


def _sample_project(i: int, district: str, messages: list[StoredMessage], rng: random.Random) -> Project:
    applicant, name, field_, nature = APPLICANTS[i % len(APPLICANTS)]
    codes = FINDING_MIX[i % len(FINDING_MIX)]
    amount = rng.choice([30, 40, 45, 50, 55]) if Code.FUNDING_OVER_CAP not in codes else 60
    number = f"XZ2024-{district.removesuffix('区')[:4]}-{i + 1:03d}"
    source = [m.uid for m in messages if m.district == district][:2] or [messages[0].uid]
    form = None if Code.MISSING_FORM in codes else attachment(f"{applicant}申报书.pdf", id=100_000 + i)
    values = {"项目名称": name if i < len(APPLICANTS) else f"{name}（{i}）", "牵头申报单位": applicant,
              "统一社会信用代码": f"913203{i:012d}", "单位性质": nature, "技术领域": field_,
              "合作服务机构": AGENCIES[i % len(AGENCIES)], "有效专利数": rng.randint(40, 200),
              "有效发明专利数": rng.randint(5, 60), "PCT申请数": rng.randint(0, 6), "申请资助金额": amount}
    return project(number, district, values=values, findings=[finding(c) for c in codes],
                   converted_invention=float(values["有效发明专利数"] + 2 * values["PCT申请数"]),
                   city_amount=amount * 0.5, district_amount=amount * 0.5, source_uids=source, form=form,
                   project_type="升级" if i % 5 == 4 else "新建",
                   arrival=max(m.arrival for m in messages if m.uid in source))

