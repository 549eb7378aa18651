"""Normalizers shared by the parsers and the merge: names, numbers, yes/no.

Pure functions over strings; property-tested in tests/test_normalize.py.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_SPACES = re.compile(r"\s+")
_BRACKETS = str.maketrans({"(": "", ")": "", "（": "", "）": "", "[": "", "]": "", "【": "", "】": ""})


def fold_name(name: str | None) -> str:
    """A name folded for matching: NFKC (full-width to half-width), no spaces, no brackets.

    ``徐州 某某（集团）有限公司`` and ``徐州某某(集团)有限公司`` fold to the same key.
    """
    if not name:
        return ""
    return _fold_text(str(name))


@functools.lru_cache(maxsize=65536)
def _fold_text(text: str) -> str:
    """``fold_name`` of a text, remembered: every rebuild of the ledger folds each applicant, agency and
    file name several times (matching, identities, rules). Keyed by ``str(name)``, not ``name``: ``1``,
    ``1.0`` and ``True`` are equal keys but fold differently."""
    text = unicodedata.normalize("NFKC", text)
    text = _SPACES.sub("", text)
    return text.translate(_BRACKETS).lower()


# -- header labels ---------------------------------------------------------------

_UNIT = re.compile(r"[(（]\s*(?:单位[:：]?)?\s*(?:件|个|项|人|名|万元|元|%|％)\s*[)）]$")
_BRACKETED = re.compile(r"[(（][^()（）]*[)）]")
_HEADER_NOISE = str.maketrans({c: "" for c in "()（）[]【】:：*＊"})

# canonical column (spec section 3) <- accepted header variants, folded; longest variant wins.
COLUMN_VARIANTS: dict[str, tuple[str, ...]] = {
    "序号": ("序号", "编号"),
    "项目名称": ("项目名称", "项目"),
    "牵头申报单位": ("牵头申报单位", "申报单位", "牵头单位", "申报主体", "单位名称"),
    "统一社会信用代码": ("统一社会信用代码", "社会信用代码", "信用代码"),
    "单位性质": ("单位性质", "单位类型", "主体类型"),
    "部省市属事业单位": ("是否部省市属事业单位", "部省市属事业单位"),
    "项目类别": ("项目类别", "项目类型", "类别"),
    "技术领域": ("技术领域", "所属领域", "产业领域"),
    "合作服务机构": ("合作知识产权服务机构", "知识产权服务机构", "合作服务机构", "服务机构"),
    "有效专利数": ("有效专利数", "有效专利数量", "有效专利不含外观设计"),
    "有效发明专利数": ("有效发明专利数", "有效发明专利数量", "发明专利数"),
    "PCT申请数": ("进入国家阶段pct申请数", "pct专利申请数", "pct申请数", "pct"),
    "申请资助金额": ("申请资助金额", "申请资金", "申请金额", "资助金额"),
    "联系人": ("联系人",),
    "联系电话": ("联系电话", "电话", "手机"),
    "备注": ("备注",),
}
_HEADER_INDEX = {v: k for k, vs in COLUMN_VARIANTS.items() for v in vs}


def fold_header(text: object) -> str:
    """A header cell folded for lookup: NFKC, no whitespace or line breaks, no unit suffix or brackets."""
    if text is None:
        return ""
    folded = _SPACES.sub("", unicodedata.normalize("NFKC", str(text)))
    while True:
        stripped = _UNIT.sub("", folded)
        if stripped == folded:
            break
        folded = stripped
    return unicodedata.normalize("NFKC", folded.translate(_HEADER_NOISE).lower())  # again: R¸ → R ̧ → ŗ


def canonical_column(header: object) -> str | None:
    """The spec's canonical column name for a header cell, or None.

    A bracketed hint that is no unit (``项目类别（新建/升级）``) is dropped when the whole text is unknown.
    """
    found = _HEADER_INDEX.get(fold_header(header))
    if found is None and header is not None:
        found = _HEADER_INDEX.get(fold_header(_BRACKETED.sub("", unicodedata.normalize("NFKC", str(header)))))
    return found


# -- values ------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_NUMBER_UNITS = ("万元", "元", "万", "件", "个", "项", "人", "名", "%")


def parse_number(value: object) -> int | float | None:
    """A figure from a cell: numbers as they are, text like ``"50万元"``, ``"５０"``, ``" 80 "``, ``"1,200"``.

    Integral values come back as ``int`` (``"50.0"`` → 50). Anything else is None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    text = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "")
    for unit in _NUMBER_UNITS:
        text = text.removesuffix(unit).strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        return None
    return parse_number(float(text))


_YES = ("是", "有", "已", "√", "✓", "y", "yes", "true")
_NO = ("否", "无", "未", "没", "不", "×", "✗", "n", "no", "false")


def parse_yes_no(value: object) -> str | None:
    """``是`` or ``否`` from answers like 是/否, 有/无, 已完成/未完成, Y/N, √/×; None when unclear."""
    if isinstance(value, bool):
        return "是" if value else "否"
    text = unicodedata.normalize("NFKC", str(value or "")).strip().lower()
    if not text:
        return None
    if text in _YES or text[0] in "是有已√✓":
        return "是"
    if text in _NO or text[0] in "否无未没不×✗":
        return "否"
    return None


def parse_project_type(value: object) -> str | None:
    """``新建`` or ``升级`` from 新建/新建项目/升级项目…; None when neither (or both)."""
    text = unicodedata.normalize("NFKC", str(value or ""))
    new, upgrade = "新建" in text, "升级" in text
    if new == upgrade:
        return None
    return "新建" if new else "升级"


def clean_text(value: object) -> str | None:
    """Text trimmed, inner line breaks and runs of spaces made one space; None when empty."""
    if value is None:
        return None
    text = _SPACES.sub(" ", str(value).replace("\u3000", " ")).strip()
    return text or None


def looks_like_formula(value: object) -> bool:
    """Text starting with ``= + - @`` that is not a number: data that a spreadsheet would evaluate."""
    return isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and parse_number(value) is None


_TICK, _BOX = "☑√✓✔■▣☒", "□☐"
_TICK_FIRST = re.compile(f"[{_TICK}](是|否)")
_TICK_AFTER = re.compile(f"(是|否)[{_TICK}]")


def parse_checked_yes_no(value: object) -> str | None:
    """``是``/``否`` from a form's answer: plain (as ``parse_yes_no``) or ticked boxes (``☑是 □否``,
    ``是☑ 否□``); None when unclear or no box is ticked."""
    text = unicodedata.normalize("NFKC", str(value or "")).replace(" ", "").strip()
    first, after = set(_TICK_FIRST.findall(text)), set(_TICK_AFTER.findall(text))
    if first and after:  # ``□是☑否``: the empty box says which side the boxes are on
        first, after = (first, set()) if re.search(f"[{_BOX}](是|否)", text) else (set(), after)
    ticked = first or after
    if ticked:
        return ticked.pop() if len(ticked) == 1 else None
    if any(b in text for b in _BOX):
        return None  # boxes, none ticked
    return parse_yes_no(text)
