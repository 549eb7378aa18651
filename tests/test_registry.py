"""The bureau's registry (rules.registry, spec 10.3): read by header from .xlsx/.csv, joined, refused clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import attach_form, attach_table, make_config, make_form, make_message, make_row, make_table
from openpyxl import Workbook
from registry_data import UNIVERSITY_CODE, registry_csv, registry_xlsx, sample_registry_rows

from intake.errors import ConfigError
from intake.merge import build_ledger
from intake.models import Code, Status
from intake.registry import load_registry
from parsers.types import SummaryRow
from samples.projects import sample_project


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def xlsx(rows: list[list]) -> bytes:
    import io

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["registry.xlsx", "registry.csv"])
def test_sample_registry_reads_the_same_from_xlsx_and_csv(tmp_path: Path, name: str) -> None:
    """The sample registry reads to one record per row, whichever format (title row above the xlsx header)."""
    data = registry_xlsx() if name.endswith("xlsx") else registry_csv()
    registry = load_registry(write(tmp_path, name, data))
    assert [(r.code, r.name, r.level, r.status) for r in registry.records] == [
        (row[0], row[1], row[3], row[6]) for row in sample_registry_rows()]
    assert [r.this_program for r in registry.records] == [True, True, False, False, False, True]
    assert registry.records[2].provincial_centre and not registry.records[0].provincial_centre
    assert registry.records[0].year == 2021


def test_header_variants_gb18030_and_loose_values(tmp_path: Path) -> None:
    """Header texts vary (spaces, brackets, 第一申报单位, 立项年度); a GB18030 CSV; 市级项目 / 已验收（优秀） fold."""
    text = ("说明：市局存档\n"
            "信用 代码,第一申报单位,项目名称,项目级别,计划类别,立项 年度,项目状态\n"
            f"{sample_project(0).row['统一社会信用代码']},徐州恒达智能装备有限公司,液压,市级项目,高价值专利培育计划,"
            "2022年,已验收（优秀）\n")
    registry = load_registry(write(tmp_path, "r.csv", text.encode("gb18030")))
    [r] = registry.records
    assert (r.level, r.status, r.year, r.this_program) == ("市级", "已验收", 2022, True)


@pytest.mark.parametrize(("name", "data", "words"), [
    ("r.xlsx", b"PK\x03\x04garbage", "not a readable .xlsx or .csv"),
    ("r.csv", "单位名称,联系人\n某公司,张三\n".encode(), "no header row"),
    ("r.xls", b"\xd0\xcf\x11\xe0", "must be an .xlsx or .csv"),
    ("r.csv", b"\xff\xfe\x00\xd8garbage\x81", "neither UTF-8 nor GB18030"),
])
def test_unreadable_registry_is_a_config_error(tmp_path: Path, name: str, data: bytes, words: str) -> None:
    """A registry that cannot be read is one ConfigError naming rules.registry."""
    with pytest.raises(ConfigError, match=r"rules\.registry") as e:
        load_registry(write(tmp_path, name, data))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_registry_file(tmp_path: Path) -> None:
    """A registry path that does not exist stops the config load."""
    with pytest.raises(ConfigError, match=r"rules\.registry: cannot read"):
        make_config(rules={"registry": str(tmp_path / "nope.xlsx")})


def test_cli_stops_at_start_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`intake` with an unreadable registry exits with the config code and one line naming rules.registry."""
    from support import config_toml
    from support import make_config as full_config

    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "x")
    cfg = full_config(tmp_path / "var", imap={"host": "127.0.0.1", "port": 1, "user": "x@163.com",
                                                "password_env": "INTAKE_IMAP_PASSWORD"},
                      smtp={"host": "127.0.0.1", "port": 9})
    bad = write(tmp_path, "registry.xlsx", b"not a workbook")
    path = tmp_path / "config.toml"
    path.write_text(config_toml(cfg) + f'\n[rules]\nregistry = "{bad}"\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "intake.cli", "export", "--config", str(path)], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "INTAKE_IMAP_PASSWORD": "x"})
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    assert "rules.registry" in r.stderr and "Traceback" not in r.stderr


def test_join_by_code_else_name(tmp_path: Path) -> None:
    """An applicant matches records by credit code; only when its code finds none, by folded name."""
    rows = [["统一社会信用代码", "单位名称", "级别", "项目类型", "状态"],
            ["91320300MA0000001X", "甲公司", "市级", "高价值专利培育计划", "在研"],
            ["", "乙 公司（集团）", "区级", "高价值专利培育计划", "在研"],
            ["91320300MA0000003X", "丙公司", "市级", "高价值专利培育计划", "已验收"]]
    registry = load_registry(write(tmp_path, "r.xlsx", xlsx(rows)))
    found = registry.join([("91320300ma0000001x", "别名"), ("", "乙公司(集团)"), ("91320300MA0000009X", "丙公司"),
                           ("91320300MA0000003X", "甲公司"), ("", "")])
    assert [[r.name for r in records] for records in found] == [["甲公司"], ["乙 公司(集团)"], ["丙公司"],
                                                                 ["丙公司"], []]


def test_registry_rules_in_the_ledger(tmp_path: Path) -> None:
    """With the sample registry, the ledger shows its exclusions: an ongoing district project, a 示范中心, an 升级
    confirmed, a 高校 sent to staff."""
    path = write(tmp_path, "registry.xlsx", registry_xlsx())
    cfg = make_config(rules={"registry": str(path)})
    upgrade = sample_project(6, project_type="升级")
    projects = [sample_project(8), sample_project(11), upgrade, sample_project(0)]
    rows = [SummaryRow(n + 4, {**p.row, "序号": n + 1}) for n, p in enumerate(projects)]
    university = make_row(9, 牵头申报单位="中国矿业大学", 统一社会信用代码=UNIVERSITY_CODE, 单位性质="高校")
    rows.append(university)
    forms = [attach_form(make_form(r)) for r in rows]
    one_district = [{"name": "云龙区", "senders": ["ylq@example.cn"], "city_share": 0.5, "quota": 9}]
    ledger = build_ledger([make_message(1, attach_table(make_table(*rows)), *forms)],
                          make_config(rules={"registry": str(path)}, districts=one_district))
    found = {p.values["牵头申报单位"]: sorted(f.code for f in p.findings) for p in ledger.projects}
    assert found == {
        projects[0].row["牵头申报单位"]: [Code.REGISTRY_EXCLUDED],
        projects[1].row["牵头申报单位"]: [Code.REGISTRY_EXCLUDED],
        upgrade.row["牵头申报单位"]: [],
        projects[3].row["牵头申报单位"]: [],  # a record of another program (商标) only
        "中国矿业大学": [Code.REGISTRY_CONFLICT],
    }
    assert {p.status for p in ledger.projects if p.findings} == {Status.REJECTED, Status.REVIEW}
    assert cfg.rules.registry_data is not None and "records" not in repr(cfg.rules)


def test_changed_registry_changes_the_config_fingerprint(tmp_path: Path) -> None:
    """The config's repr (what the worker fingerprints to know the ledger is stale) follows the registry's content."""
    path = write(tmp_path, "registry.csv", registry_csv())
    before = repr(make_config(rules={"registry": str(path)}).rules)
    path.write_bytes(registry_csv() + "7,,某公司,x,市级,高价值专利培育计划,2024,在研\n".encode())
    assert repr(make_config(rules={"registry": str(path)}).rules) != before


def test_centre_named_in_the_project_name(tmp_path: Path) -> None:
    """A provincial record whose 项目名称 says 示范中心 is a 示范中心 even when 项目类型 names the program."""
    text = ("统一社会信用代码,单位名称,项目名称,级别,项目类型,立项年份,状态\n"
            ",某重工公司,工程机械高价值专利培育示范中心,省级,高价值专利培育计划,2021,已验收\n")
    [r] = load_registry(write(tmp_path, "r.csv", text.encode("utf-8-sig"))).records
    assert r.provincial_centre and not r.this_program and not r.local
