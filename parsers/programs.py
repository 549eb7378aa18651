"""Which of the notice's programs, which year, and which kind of attachment a title or file name names.

The notice 徐知通〔2024〕12号 covers eight programs and all of them reach the same
mailbox. A title such as ``2024年徐州市高价值商标品牌培育计划项目申报汇总表`` or
``2024年贯彻实施《电子商务平台知识产权保护管理》国家标准项目申报汇总表`` names its
program; ``named_program`` finds it (the longest name wins, so the e-commerce
standard is not read as 知识产权保护). ``named_year`` finds ``2024年`` in a title.
``attachment_named`` tells a 合作协议, a 信用承诺书 or a summary table (汇总表) from
its file name or heading. Pure functions over text.
"""

from __future__ import annotations

import re
import unicodedata

OUR_PROGRAM = "高价值专利培育计划"
#: The notice's eight programs (附件1–8), as the ledger names them.
PROGRAMS = (
    "知识产权保护", "维权援助体系建设", "质押融资", "企业专利投保", "电子商务平台知识产权保护管理国家标准",
    "高价值专利培育计划", "高价值商标品牌培育计划", "企业知识产权战略推进计划",
)
# program <- spellings seen in titles and file names (folded: no spaces, brackets or quotes)
_ALIASES: dict[str, tuple[str, ...]] = {
    "知识产权保护": ("知识产权保护",),
    "维权援助体系建设": ("维权援助体系建设", "维权援助"),
    "质押融资": ("质押融资",),
    "企业专利投保": ("企业专利投保", "专利投保", "专利保险"),
    "电子商务平台知识产权保护管理国家标准": ("电子商务平台知识产权保护管理", "电子商务平台"),
    "高价值专利培育计划": ("高价值专利培育", "高价值专利"),
    "高价值商标品牌培育计划": ("高价值商标品牌培育", "商标品牌培育", "高价值商标"),
    "企业知识产权战略推进计划": ("企业知识产权战略推进", "知识产权战略推进"),
}
_BY_LENGTH = sorted(((a, p) for p, aliases in _ALIASES.items() for a in aliases), key=lambda ap: -len(ap[0]))
_NOISE = re.compile(r"[\s《》〈〉“”\"'‘’()（）\[\]【】_\-—·.、,，]")
_YEAR = re.compile(r"(20\d\d)\s*年")
_YEAR_IN_NAME = re.compile(r"(?<!\d)(20\d\d)(?!\d)")

AGREEMENT, PLEDGE, SUMMARY = "合作协议", "信用承诺书", "汇总表"
_ATTACHMENT_WORDS = ((AGREEMENT, ("合作协议",)), (PLEDGE, ("信用承诺书", "承诺书")), (SUMMARY, ("汇总表",)))
# A heading line that is only the document's name: ``合作协议``, ``附件2：信用承诺书``, ``项目合作协议书``;
# or a title ending so: ``2024年高价值专利培育计划项目合作协议``.
_HEADING = re.compile(r"^(?:附件\d{0,2}[:：.、]?)?(?:项目)?(合作协议书?|信用承诺书|承诺书)$")
_TITLED = re.compile(r"^(?:附件\d{0,2}[:：.、]?)?\S{0,30}?(合作协议书?|信用承诺书|承诺书)$")
_VERBS = ("签订", "签署", "提供", "附上", "达成", "须", "应", "和", "及", "、")


def fold(text: object) -> str:
    """Text folded for matching names: NFKC, no spaces, brackets, quotes or separators."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", str(text or "")))


def named_program(text: object) -> str | None:
    """The notice's program a title or file name names, or None."""
    folded = fold(text)
    if not folded:
        return None
    for alias, program in _BY_LENGTH:
        if alias in folded:
            return program
    return None


def named_year(text: object) -> int | None:
    """The year a title names (``2023年…``), or None."""
    match = _YEAR.search(unicodedata.normalize("NFKC", str(text or "")))
    return int(match.group(1)) if match else None


def year_in_name(filename: str) -> int | None:
    """A year in a file name, with or without 年 (``2023汇总表.xlsx``), or None."""
    text = unicodedata.normalize("NFKC", filename)
    return named_year(text) or (int(m.group(1)) if (m := _YEAR_IN_NAME.search(text)) else None)


def attachment_named(text: object) -> str | None:
    """合作协议, 信用承诺书 or 汇总表 when a file name (or title) says so, else None."""
    folded = fold(text)
    for label, words in _ATTACHMENT_WORDS:
        if any(w in folded for w in words):
            return label
    return None


def says_form(filename: str) -> bool:
    """A file name that calls the file a 申报书 (or 申请书)."""
    folded = fold(filename)
    return "申报书" in folded or "申请书" in folded


def heading_attachment(line: str) -> str | None:
    """合作协议 or 信用承诺书 when a line is that document's heading (the whole line), else None."""
    folded = fold(line)
    if len(folded) > 40 or any(v in folded for v in _VERBS):
        return None
    match = _HEADING.match(folded) or _TITLED.match(folded)
    if not match:
        return None
    return AGREEMENT if match.group(1).startswith("合作协议") else PLEDGE


def campaign_year(*texts: str) -> int | None:
    """The campaign's year: the first of ``texts`` (campaign name, number prefix) that names one."""
    for text in texts:
        year = named_year(text) or year_in_name(text)
        if year:
            return year
    return None
