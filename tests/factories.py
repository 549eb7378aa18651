"""Builders for configs, summary rows, forms and stored messages, shared by the tests.

Defaults describe a project that passes every rule: a 新建 enterprise project
with a valid credit code, 100 patents, a qualified agency and a complete form.
Override what a test is about, nothing else.
"""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from intake.config import Config, parse_config
from intake.models import Finding, Outcome, StoredAttachment, StoredMessage
from intake.rules import credit_check_char
from parsers.types import ApplicationForm, SummaryRow, SummaryTable

DEADLINE = datetime.fromisoformat("2024-11-08T23:59:59+08:00")
BEFORE = datetime.fromisoformat("2024-11-01T09:00:00+08:00")  # uid n arrives n minutes later

DISTRICTS = [
    ("云龙区", "ylq@example.cn"),
    ("鼓楼区", "glq@example.cn"),
    ("泉山区", "qsq@example.cn"),
    ("徐州经济技术开发区", "jkq@example.cn"),
]
SENDER = dict(DISTRICTS)

BASE_CONFIG: dict[str, Any] = {
    "mailbox": {
        "host": "127.0.0.1", "port": 10143, "ssl": False, "user": "xzip2019@163.com",
        "password_env": "INTAKE_TEST_IMAP_PASSWORD", "folder": "INBOX", "processed_folder": "",
        "imap_id": True,
    },
    "smtp": {
        "host": "127.0.0.1", "port": 10025, "ssl": False, "starttls": False, "user": "",
        "password_env": "INTAKE_TEST_SMTP_PASSWORD", "sender": "徐州市知识产权局 <xzip2019@163.com>",
    },
    "schedule": {"interval_minutes": 5},
    "campaign": {"name": "2024年徐州市高价值专利培育计划", "deadline": DEADLINE, "timezone": "Asia/Shanghai"},
    "paths": {"data_dir": "var"},
    "districts": [
        {"name": name, "senders": [sender], "city_share": 0.5, "quota": 3} for name, sender in DISTRICTS
    ],
}


def make_config(**overrides: Any) -> Config:
    """A valid config with the four districts (city share 0.5, quota 3).

    Each override names a top-level table: a dict is merged into it
    (``rules={"cap_new": 60}``), anything else replaces it (``districts=[...]``).
    """
    raw = copy.deepcopy(BASE_CONFIG)
    for table, value in overrides.items():
        if isinstance(value, dict):
            raw[table] = {**raw.get(table, {}), **value}
        else:
            raw[table] = value
    return parse_config(raw, Path("."), need_secrets=False)


def make_credit_code(seed: int) -> str:
    """A valid GB 32100-2015 code, distinct for each seed (91 = enterprise, 320300 = Xuzhou)."""
    body = f"91320300MA{seed:07d}"
    return body + credit_check_char(body)


def make_values(n: int = 1, **fields: Any) -> dict[str, Any]:
    """Canonical row values of a passing 新建 enterprise project, applicant 徐州{n}号科技有限公司."""
    values: dict[str, Any] = {
        "序号": n,
        "项目名称": f"高价值专利培育项目{n}",
        "牵头申报单位": f"徐州{n}号科技有限公司",
        "统一社会信用代码": make_credit_code(n),
        "单位性质": "企业",
        "部省市属事业单位": "否",
        "项目类别": "新建",
        "技术领域": "工程机械",
        "合作服务机构": f"徐州{n}号知识产权代理有限公司",
        "有效专利数": 100,
        "有效发明专利数": 12,
        "PCT申请数": 1,
        "申请资助金额": 50,
        "联系人": "张三",
        "联系电话": "0516-12345678",
        "备注": None,
    }
    values.update(fields)
    return values


def make_row(n: int = 1, **fields: Any) -> SummaryRow:
    """A summary row (``make_values``), at sheet row ``n + 3``."""
    return SummaryRow(row_number=n + 3, values=make_values(n, **fields))


FORM_EXTRAS: dict[str, Any] = {
    "所属地区": "云龙区",
    "知识产权工程师人数": 2,
    "专利密集型产品备案": "是",
    "严重失信行为": "否",
    "非正常专利申请": "否",
    "机构从业人员数": 20,
    "机构专利代理人数": 6,
    "机构服务收入": 350,
    "已通过市级验收": "是",
    "承担省级项目": "否",
}
FORM_FIELDS = (
    "项目名称", "牵头申报单位", "统一社会信用代码", "单位性质", "部省市属事业单位", "合作服务机构",
    "有效专利数", "有效发明专利数", "PCT申请数", "申请资助金额", "联系人", "联系电话",
)


def make_form(
    row: SummaryRow | None = None, project_type: str | None = None,
    attachments: tuple[str, ...] = ("合作协议", "信用承诺书"), **fields: Any
) -> ApplicationForm:
    """The form that goes with ``row`` (default ``make_row()``): same values, passing form-only fields,
    with the 合作协议 and 信用承诺书 bound in as pages (``attachments``).

    A field set to ``None`` is left out of the form, as when the parser did not find it.
    """
    row = row or make_row()
    values = {name: row.values.get(name) for name in FORM_FIELDS}
    values.update(FORM_EXTRAS)
    values.update(fields)
    values = {k: v for k, v in values.items() if v is not None}
    name = row.values.get("牵头申报单位") or "申报单位"
    return ApplicationForm(
        filename=f"{name}申报书.pdf",
        project_type=project_type or row.values.get("项目类别"),
        fields=values,
        pages_read=12,
        attachments=list(attachments),
    )


def make_table(
    *rows: SummaryRow, filename: str = "申报汇总表.xlsx", district: str | None = None
) -> SummaryTable:
    """A summary table holding ``rows``."""
    return SummaryTable(
        filename=filename, sheet="Sheet1", header_row=3, district=district,
        columns={k: k for k in make_values()}, missing_columns=[], rows=list(rows),
    )


_ids = itertools.count(1)


def attach_table(table: SummaryTable, id: int | None = None) -> StoredAttachment:
    """A stored attachment holding a parsed summary table."""
    return _attachment(table.filename, "xlsx", "summary_table", id, parsed=table.to_dict())


def attach_form(
    form: ApplicationForm, id: int | None = None, filename: str | None = None
) -> StoredAttachment:
    """A stored attachment holding a parsed application form."""
    return _attachment(filename or form.filename, "pdf", "application_form", id, parsed=form.to_dict())


def attach_failed(
    filename: str, code: str = "SCANNED_FORM", reason: str = "PDF没有文字层（扫描件）", sniffed: str = "pdf",
    id: int | None = None,
) -> StoredAttachment:
    """A stored attachment the parsers could not read (scan, encrypted or corrupt)."""
    return _attachment(filename, sniffed, "error", id, error_code=code, error_reason=reason)


def _attachment(filename: str, sniffed: str, kind: str, id: int | None, **extra: Any) -> StoredAttachment:
    id = next(_ids) if id is None else id
    return StoredAttachment(
        id=id, filename=filename, sha256=f"{id:064x}", size=1000, sniffed=sniffed, kind=kind,
        path=f"archive/{id:064x}", **extra,
    )


def make_message(
    uid: int,
    *attachments: StoredAttachment,
    district: str | None = "云龙区",
    outcome: Outcome = Outcome.PROCESSED,
    arrival: datetime | None = None,
    sender: str | None = None,
    findings: tuple[Finding, ...] = (),
    id: int | None = None,
) -> StoredMessage:
    """A stored message from ``district`` (its configured sender) arriving ``uid`` minutes after BEFORE."""
    return StoredMessage(
        id=uid if id is None else id,
        uid=uid,
        message_id=f"<m{uid}@example.cn>",
        sender=sender or SENDER.get(district or "", "someone@example.org"),
        district=district,
        subject=f"申报材料{uid}",
        arrival=arrival or BEFORE + timedelta(minutes=uid),
        outcome=outcome,
        findings=findings,
        attachments=attachments,
    )


def attach_doc(doc: Any, sniffed: str = "pdf", id: int | None = None) -> StoredAttachment:
    """A stored attachment holding what ``parse_document`` returned (any parsed document)."""
    return _attachment(doc.filename, sniffed, doc.kind, id, parsed=doc.to_dict())
