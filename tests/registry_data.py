"""A sample of the bureau's registry of past projects (``rules.registry``), for the tests.

(The demo ships its own, smaller one with its sample mail.)

Records about the sample projects of ``samples.projects`` (same credit codes and
names), so a demo or a test that loads it sees the registry rules at work:

- project 6 (徐州鑫诺电子科技有限公司, the demo's 升级 project in 泉山区) holds an
  accepted (已验收) 2021 city project of the program: its 升级 is confirmed;
- project 8 (江苏彭城数字科技有限公司, 经开区 in the demo) is carrying out a 2023
  district project of the program (在研): a 新建 application is ``REGISTRY_EXCLUDED``;
- project 11 (江苏淮海储能技术有限公司) was first applicant of a provincial 示范中心:
  excluded whatever it applies for;
- 中国矿业大学 holds a provincial 示范中心 (a 高校: ``REGISTRY_CONFLICT``, staff
  judge the 院系/学科), and two records of other programs or terminated
  projects that change nothing.

``registry_xlsx()`` writes it with a title row above the header, as the bureau
keeps it; ``registry_csv()`` as a UTF-8 CSV with a BOM (how Excel saves one).
"""

from __future__ import annotations

import csv
import io

from samples.projects import sample_project

HEADER = ("序号", "统一社会信用代码", "单位名称", "项目名称", "级别", "项目类型", "立项年份", "状态")
TITLE = "徐州市知识产权项目立项清单（市局存档）"
UNIVERSITY_CODE = "12100000466007393L"  # a 高校's code: a central institution, division 100000


def _row(i: int, project: str, level: str, kind: str, year: int, status: str) -> tuple[str, ...]:
    p = sample_project(i).row
    return (p["统一社会信用代码"], p["牵头申报单位"], project, level, kind, str(year), status)


def sample_registry_rows() -> list[tuple[str, ...]]:
    """The records, without 序号, in the order of ``HEADER[1:]``."""
    return [
        _row(6, "电子元器件高价值专利培育", "市级", "高价值专利培育计划", 2021, "已验收"),
        _row(8, "工业互联网专利培育", "区级", "高价值专利培育计划", 2023, "在研"),
        _row(11, "储能材料高价值专利培育示范中心", "省级", "高价值专利培育示范中心", 2020, "已验收"),
        (UNIVERSITY_CODE, "中国矿业大学", "矿山装备高价值专利培育示范中心", "省级", "高价值专利培育示范中心",
         "2019", "已验收"),
        _row(0, "液压元件商标品牌培育", "市级", "高价值商标品牌培育计划", 2022, "在研"),
        _row(1, "新材料专利导航", "市级", "高价值专利培育计划", 2018, "终止"),
    ]


def registry_xlsx() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "立项清单"
    ws.append([TITLE])
    ws.append(list(HEADER))
    for n, row in enumerate(sample_registry_rows(), start=1):
        ws.append([n, *row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def registry_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADER)
    for n, row in enumerate(sample_registry_rows(), start=1):
        writer.writerow([n, *row])
    return buf.getvalue().encode("utf-8-sig")
