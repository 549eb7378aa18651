"""Realistic sample projects: one source of truth for a project's summary row and its form.

Used by ``intake demo`` and by the tests. ``sample_project(i)`` gives project
number ``i`` as a summary-table row (spec section 3 canonical columns) and the
matching form fields (section 4), consistent with each other and eligible
under the guide's default rules (a 新建 enterprise project with a qualified
agency of its own), so a test changes exactly what it wants to be wrong.
The files themselves are written by ``samples.tables`` and
``samples.forms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from intake.rules import credit_check_char

COMPANIES = (
    "徐州恒达智能装备有限公司", "徐州云翔新材料科技有限公司", "江苏汉邦生物医药股份有限公司",
    "徐州博远矿山机械有限公司", "徐州清源环保科技有限公司", "江苏楚韵新能源科技有限公司",
    "徐州鑫诺电子科技有限公司", "徐州泓泰工程机械有限公司", "江苏彭城数字科技有限公司",
    "徐州华瑞医疗器械有限公司", "徐州天工精密制造有限公司", "江苏淮海储能技术有限公司",
)
AGENCIES = (
    "徐州汇智知识产权代理有限公司", "江苏创新专利代理事务所（普通合伙）", "徐州正诚知识产权服务有限公司",
    "南京瑞恒知识产权代理有限公司", "徐州知联专利代理事务所", "江苏衡信知识产权服务有限公司",
    "徐州科信专利事务所有限公司", "苏州华恒知识产权代理有限公司", "徐州明远知识产权运营有限公司",
    "江苏金智知识产权服务有限公司", "徐州卓越专利代理有限公司", "无锡智诚知识产权代理有限公司",
)
PROJECTS = (
    "高端液压元件高价值专利培育", "石墨烯复合材料专利组合培育", "创新药物制剂专利布局",
    "智能矿山装备核心专利培育", "工业废水处理技术专利培育", "储能电池管理系统专利组合",
    "功率半导体器件专利培育", "大吨位起重机关键技术专利", "工业互联网平台专利布局",
    "医用影像设备专利组合培育", "精密减速器核心专利培育", "新型储能材料专利培育",
)
FIELDS = ("高端装备制造", "新材料", "生物医药", "高端装备制造", "节能环保", "新能源",
          "电子信息", "工程机械", "数字经济", "生物医药", "高端装备制造", "新能源")
PEOPLE = ("张伟", "王芳", "李强", "刘洋", "陈静", "杨磊", "赵敏", "黄杰", "周婷", "吴昊", "徐丽", "孙涛")


def credit_code(seed: int, *, prefix: str = "91320300") -> str:
    """A valid GB 32100-2015 code (registration authority 9, type 1 enterprise, Xuzhou 320300)."""
    body = prefix + f"{(seed * 7919 + 104729) % 10**9:09d}"
    body = body.replace("I", "1").replace("O", "0")[:17]
    return body + credit_check_char(body)


@dataclass(frozen=True)
class SampleProject:
    """A summary row and its form's fields; ``with_values`` changes both the same way."""

    row: dict[str, Any]
    form: dict[str, Any] = field(default_factory=dict)

    def with_values(self, **changes: Any) -> SampleProject:
        """The project with these canonical values changed in the row and, where present, the form."""
        return replace(self, row={**self.row, **changes},
                       form={**self.form, **{k: v for k, v in changes.items() if k in self.form}})

    def with_row(self, **changes: Any) -> SampleProject:
        """Only the summary row changed (the form then disagrees: ``MISMATCH``)."""
        return replace(self, row={**self.row, **changes})

    def with_form(self, **changes: Any) -> SampleProject:
        """Only the form changed (for form-only rules such as ``NO_IP_ENGINEER``)."""
        return replace(self, form={**self.form, **changes})


def sample_project(i: int, *, district: str = "云龙区", project_type: str = "新建") -> SampleProject:
    """Project ``i`` (0-based): eligible with the default rules, agency not shared with ``j != i``."""
    n = len(COMPANIES)
    applicant, agency = COMPANIES[i % n], AGENCIES[i % n]
    if i >= n:
        applicant, agency = f"{applicant[:-4]}{i // n + 1}号有限公司", f"{agency[:-4]}{i // n + 1}号分公司"
    row = {
        "序号": i + 1,
        "项目名称": PROJECTS[i % n] + ("" if i < n else f"（{i // n + 1}）"),
        "牵头申报单位": applicant,
        "统一社会信用代码": credit_code(i),
        "单位性质": "企业",
        "部省市属事业单位": "否",
        "项目类别": project_type,
        "技术领域": FIELDS[i % n],
        "合作服务机构": agency,
        "有效专利数": 85 + i,
        "有效发明专利数": 12 + i % 5,
        "PCT申请数": i % 3,
        "申请资助金额": 50 if project_type == "新建" else 40,
        "联系人": PEOPLE[i % n],
        "联系电话": f"0516-8{(i * 1234567) % 10**7:07d}",
        "备注": "",
    }
    form = {
        "项目名称": row["项目名称"],
        "牵头申报单位": applicant,
        "统一社会信用代码": row["统一社会信用代码"],
        "单位性质": "企业",
        "部省市属事业单位": "否",
        "所属地区": district,
        "合作服务机构": agency,
        "机构统一社会信用代码": credit_code(i + 500, prefix="91320300"),
        "有效专利数": row["有效专利数"],
        "有效发明专利数": row["有效发明专利数"],
        "PCT申请数": row["PCT申请数"],
        "知识产权工程师人数": 2 + i % 3,
        "专利密集型产品备案": "是",
        "严重失信行为": "否",
        "非正常专利申请": "否",
        "机构从业人员数": 20 + i,
        "机构专利代理人数": 6 + i % 4,
        "机构服务收入": 320 + 10 * i,
        "申请资助金额": row["申请资助金额"],
        "联系人": row["联系人"],
        "联系电话": row["联系电话"],
    }
    if project_type == "升级":
        form |= {"已通过市级验收": "是", "承担省级项目": "否"}
    return SampleProject(row, form)
