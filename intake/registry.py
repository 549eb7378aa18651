"""The bureau's own records of past and current projects (``rules.registry``, spec 10.3).

An ``.xlsx`` or ``.csv`` the bureau keeps, read by its header row wherever it
stands (title rows above it are skipped; header texts are folded like the
summary table's: spaces, line breaks, brackets and full-width forms do not
matter). Columns, canonical name ← accepted headers:

| 统一社会信用代码 | 统一社会信用代码, 社会信用代码, 信用代码 |
| 单位名称 | 单位名称, 第一申报单位, 牵头申报单位, 申报单位, 承担单位 |
| 项目名称 | 项目名称 |
| 级别 | 级别, 项目级别 — 省级 / 市级 / 区级 |
| 项目类型 | 项目类型, 项目类别, 计划类别 |
| 立项年份 | 立项年份, 立项年度, 年份, 年度 |
| 状态 | 状态, 项目状态 — 在研 / 已验收 / 终止 |

An .xlsx is read with pandas (``read_excel``, every cell as text), a .csv with
the csv module (title rows above the header make its rows ragged, which
``read_csv`` refuses); ``Registry.join`` is a pandas merge of the ledger's applicants with it: by
credit code, and by folded name for applicants whose code finds no record.
A registry that cannot be read is a ``ConfigError`` naming ``rules.registry``
(the program stops at start, like any config error).
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intake.errors import ConfigError
from parsers.normalize import fold_header, fold_name
from parsers.programs import OUR_PROGRAM, named_program

KEY = "rules.registry"
HEADER_SCAN = 20
COLUMNS: dict[str, tuple[str, ...]] = {
    "统一社会信用代码": ("统一社会信用代码", "社会信用代码", "信用代码"),
    "单位名称": ("单位名称", "第一申报单位", "牵头申报单位", "申报单位", "承担单位"),
    "项目名称": ("项目名称",),
    "级别": ("级别", "项目级别"),
    "项目类型": ("项目类型", "项目类别", "计划类别"),
    "立项年份": ("立项年份", "立项年度", "年份", "年度"),
    "状态": ("状态", "项目状态"),
}
REQUIRED = ("单位名称", "级别", "项目类型", "状态")
LEVELS, STATUSES = ("省级", "市级", "区级"), ("在研", "已验收", "终止")
_HEADERS = {fold_header(v): c for c, vs in COLUMNS.items() for v in vs}
_FIELDS = {"统一社会信用代码": "code", "单位名称": "name", "项目名称": "project", "级别": "level",
           "项目类型": "type", "立项年份": "year", "状态": "status"}


@dataclass(frozen=True)
class RegistryRecord:
    """One project of the registry, with what the rules ask of it."""

    code: str
    name: str
    project: str
    level: str  # 省级 / 市级 / 区级 (as written when it is none of them)
    type: str
    year: int | None
    status: str  # 在研 / 已验收 / 终止 (as written when none of them)
    this_program: bool = False  # 项目类型 (else 项目名称) names the campaign's program

    @property
    def provincial_centre(self) -> bool:
        """A provincial 示范中心 (省高价值专利培育示范中心)."""
        return self.level == "省级" and "示范中心" in self.type + self.project

    @property
    def local(self) -> bool:
        return self.level in ("市级", "区级")


@dataclass(frozen=True)
class Registry:
    """The registry as read; ``repr`` names the file and its content hash (so a changed file changes the
    config's fingerprint), never the records."""

    path: Path
    sha256: str
    records: tuple[RegistryRecord, ...] = field(repr=False, compare=False)

    def join(self, applicants: Sequence[tuple[str, str]]) -> list[tuple[RegistryRecord, ...]]:
        """Each applicant's records, given (credit code, name) pairs: by code, else by folded name."""
        import pandas as pd

        records = pd.DataFrame({
            "record": range(len(self.records)),
            "code": [r.code for r in self.records],
            "name": [fold_name(r.name) for r in self.records],
        })
        wanted = pd.DataFrame({
            "applicant": range(len(applicants)),
            "code": [_code(c) for c, _ in applicants],
            "name": [fold_name(n) for _, n in applicants],
        })
        by_code = wanted[wanted.code != ""].merge(records[records.code != ""], on="code")[["applicant", "record"]]
        rest = wanted[~wanted.applicant.isin(by_code.applicant) & (wanted.name != "")]
        by_name = rest.merge(records[records.name != ""], on="name")[["applicant", "record"]]
        matched = pd.concat([by_code, by_name]).sort_values(["applicant", "record"])
        out: list[tuple[RegistryRecord, ...]] = [() for _ in applicants]
        for applicant, group in matched.groupby("applicant"):
            out[int(applicant)] = tuple(self.records[int(i)] for i in group.record)
        return out


def load_registry(path: Path, program: str = OUR_PROGRAM) -> Registry:
    """Read the registry at ``path``; ``ConfigError`` naming ``rules.registry`` when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{KEY}: cannot read {path} ({e.strerror or e})") from None
    try:
        grid = _grid(data, path)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - pandas and its readers raise many types on a damaged file; all mean the same
        raise ConfigError(f"{KEY}: {path} is not a readable .xlsx or .csv file ({type(e).__name__})") from None
    records = _records(grid, path, program)
    return Registry(path, hashlib.sha256(data).hexdigest()[:16], records)


def _grid(data: bytes, path: Path) -> list[list[Any]]:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        frame = pd.read_excel(io.BytesIO(data), header=None, dtype=str, engine="openpyxl")
    elif suffix == ".csv":  # the csv module: title rows above the header make the rows ragged
        return [list(row) for row in csv.reader(io.StringIO(_decode(data, path)))]
    else:
        raise ConfigError(f"{KEY}: {path} must be an .xlsx or .csv file")
    return frame.where(frame.notna(), None).values.tolist()


def _decode(data: bytes, path: Path) -> str:
    """A CSV saved by Excel: UTF-8 (with or without BOM) or GB18030 (Chinese Windows)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ConfigError(f"{KEY}: {path} is neither UTF-8 nor GB18030 text")


def _header(grid: list[list[Any]], path: Path) -> tuple[int, dict[int, str]]:
    for r, row in enumerate(grid[:HEADER_SCAN]):
        found = {i: _HEADERS[h] for i, cell in enumerate(row) if (h := fold_header(cell)) in _HEADERS}
        if set(REQUIRED) <= set(found.values()):
            return r, found
    wanted = "、".join(REQUIRED)
    raise ConfigError(f"{KEY}: {path} has no header row with the columns {wanted} (and 统一社会信用代码)")


def _records(grid: list[list[Any]], path: Path, program: str) -> tuple[RegistryRecord, ...]:
    top, columns = _header(grid, path)
    out = []
    for row in grid[top + 1:]:
        values = {_FIELDS[c]: _text(row[i]) if i < len(row) else "" for i, c in columns.items()}
        if not values.get("name") and not values.get("code"):
            continue
        values["code"] = _code(values.get("code"))
        values["year"] = _year(values.get("year"))
        named = named_program(values.get("type")) or named_program(values.get("project"))
        out.append(RegistryRecord(
            code=values["code"], name=values.get("name", ""), project=values.get("project", ""),
            level=_one_of(values.get("level", ""), LEVELS), type=values.get("type", ""),
            year=values["year"], status=_one_of(values.get("status", ""), STATUSES),
            this_program=named == program and "示范中心" not in values.get("type", "") + values.get("project", ""),
        ))
    return tuple(out)


def _text(value: Any) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(value)).split()) if value is not None else ""


def _code(value: Any) -> str:
    return "".join(unicodedata.normalize("NFKC", str(value or "")).split()).upper()


def _year(value: Any) -> int | None:
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())[:4]
    return int(digits) if len(digits) == 4 else None


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    """The allowed word the value contains (``市级项目`` → 市级, ``已验收（优秀）`` → 已验收), else the value."""
    return next((a for a in allowed if a in value), value)
