"""A sample of the bureau's registry of past and current projects (``rules.registry``), as CSV.

Columns by header, as the bureau keeps them: 统一社会信用代码, 单位名称, 项目名称, 级别
(省级/市级/区级), 项目类型, 立项年份, 状态 (在研/已验收/终止).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

REGISTRY_COLUMNS = ("统一社会信用代码", "单位名称", "项目名称", "级别", "项目类型", "立项年份", "状态")


def registry_csv(rows: Sequence[Sequence[object]]) -> bytes:
    """The registry as UTF-8 CSV with a BOM (how Excel saves ``CSV UTF-8``), header first."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(REGISTRY_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")
