"""Application forms (申报书, spec section 4) from PDF (pdfplumber) and .docx (python-docx) bytes.

The document becomes lines of text (a .docx table row becomes ``label：value``
lines), and each line is matched against the form's labels after folding
spaces, full-width forms, brackets and unit suffixes, so ``项 目 名 称：…``,
``项目名称:…``, a two-column table row ``项目名称 …`` and a label with its value
on the next line all read the same.

- 新建/升级 comes from the title (``（高价值专利培育计划新建项目）``).
- In section 二 (the cooperating agency), 单位名称/机构名称 is the agency's
  name and 统一社会信用代码 the agency's own code (``机构统一社会信用代码``),
  kept apart from the applicant's.
- The first value found for a field wins; pages are read one at a time and
  reading stops once every field the form type needs is found (``pages_read``).
- No text on the pages read: a scan (``ScannedFormError``). Encrypted, truncated
  or corrupt files: ``ParseError`` with the reason. No OCR is attempted (no
  Tesseract dependency); scans go to staff review.
- Not a form (no 申报书 title and fewer than ``MIN_FIELDS`` labels): ``None``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from parsers.normalize import clean_text, fold_header, parse_number, parse_yes_no
from parsers.types import ApplicationForm, ParseError, ScannedFormError

MAX_PAGES, MAX_LINE, MIN_FIELDS, SCAN_PAGES = 30, 500, 3, 3
TITLE = "申报书"
AGENCY_CODE = "机构统一社会信用代码"

# field <- label variants (folded with fold_header: no spaces, brackets or unit suffix, lower case)
LABELS: dict[str, tuple[str, ...]] = {
    "项目名称": ("项目名称",),
    "牵头申报单位": ("牵头申报单位盖章", "申报单位盖章", "牵头申报单位", "申报单位", "单位名称"),
    "统一社会信用代码": ("统一社会信用代码",),
    "单位性质": ("单位性质",),
    "部省市属事业单位": ("是否部省市属事业单位",),
    "所属地区": ("所属地区", "所属区县"),
    "合作服务机构": ("合作服务机构盖章", "知识产权服务机构", "机构名称", "合作服务机构"),
    "有效专利数": ("有效专利数不含外观设计", "有效专利数"),
    "有效发明专利数": ("有效发明专利数",),
    "PCT申请数": ("进入国家阶段pct专利申请数",),
    "知识产权工程师人数": ("取得知识产权工程师证书人数",),
    "专利密集型产品备案": ("是否完成专利密集型产品备案",),
    "严重失信行为": ("是否存在严重失信行为",),
    "非正常专利申请": ("是否存在非正常专利申请行为",),
    "机构从业人员数": ("从业人员数",),
    "机构专利代理人数": ("相关技术领域专利代理人及检索分析人员数",),
    "机构服务收入": ("2023年知识产权服务收入",),
    "申请资助金额": ("申请市级资助", "申请资助金额"),
    "已通过市级验收": ("是否已通过市级高价值专利培育计划项目验收",),
    "承担省级项目": ("是否承担省级高价值专利培育计划项目",),
    "联系人": ("联系人",),
    "联系电话": ("联系电话",),
}
UPGRADE_ONLY = ("已通过市级验收", "承担省级项目")
NUMERIC = frozenset({"有效专利数", "有效发明专利数", "PCT申请数", "知识产权工程师人数", "机构从业人员数",
                     "机构专利代理人数", "机构服务收入", "申请资助金额"})
YES_NO = frozenset({"部省市属事业单位", "专利密集型产品备案", "严重失信行为", "非正常专利申请", "已通过市级验收",
                    "承担省级项目"})
# In section 二 these labels name the agency, not the applicant.
AGENCY_SECTION = {"单位名称": "合作服务机构", "统一社会信用代码": AGENCY_CODE}
_BY_LABEL = sorted(((v, f) for f, vs in LABELS.items() for v in vs), key=lambda p: -len(p[0]))
_COLON = re.compile(r"[:：]")
_SECTION = re.compile(r"^([一二三四五六七八九十]+)[、.．]")


def parse_form(data: bytes, filename: str, sniffed: str) -> ApplicationForm | None:
    """The form's fields, ``None`` when the document is readable but no application form."""
    reader = _Reader()
    pages = _docx_pages(data, filename) if sniffed == "docx" else _pdf_pages(data, filename)
    pages_read = 0
    for text in pages:
        pages_read += 1
        reader.feed(text)
        if reader.complete():
            break
    if not reader.saw_text:
        raise ScannedFormError(filename, "申报书 PDF 没有文字层（可能是扫描件），请发送由 Word 直接导出的 PDF")
    if not reader.titled and len(reader.fields) < MIN_FIELDS:
        return None
    return ApplicationForm(filename, reader.project_type, reader.values(), pages_read)


class _Reader:
    """Fields from lines of text, page by page."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.project_type: str | None = None
        self.titled = self.saw_text = self.in_agency = False
        self._pending: str | None = None  # a label whose value is on the next line

    def feed(self, text: str) -> None:
        for raw in text.splitlines():
            line = raw[:MAX_LINE].strip()  # labels are folded (NFKC) for matching; values keep their text
            if line:
                self.saw_text = True
                self._line(line)

    def _line(self, line: str) -> None:
        folded = fold_header(line)
        if TITLE in folded:
            self.titled = True
        if self.project_type is None and "培育计划" in folded and folded.endswith("项目"):
            self.project_type = "新建" if "新建" in folded else "升级" if "升级" in folded else None
        section = _SECTION.match(line)
        if section:
            self.in_agency = section.group(1) == "二" or "服务机构" in folded
        field, value = _split(line, self.in_agency)
        if field is None:
            if self._pending and not self._is_heading(line):
                self._set(self._pending, line)
            self._pending = None
            return
        self._pending = None
        if value:
            self._set(field, value)
        else:
            self._pending = field

    @staticmethod
    def _is_heading(line: str) -> bool:
        return bool(_SECTION.match(line))

    def _set(self, field: str, value: str) -> None:
        if field not in self.fields and clean_text(value):
            self.fields[field] = value

    def complete(self) -> bool:
        needed = [f for f in LABELS if f not in UPGRADE_ONLY or self.project_type == "升级"]
        return self.project_type is not None and all(f in self.fields for f in needed)

    def values(self) -> dict[str, Any]:
        return {f: _value(f, v) for f, v in self.fields.items()}


def _split(line: str, in_agency: bool) -> tuple[str | None, str]:
    """(field, value) when the line starts with a known label; value may be '' (on the next line)."""
    colon = _COLON.search(line)
    if colon:
        label = fold_header(line[: colon.start()])
        field = _field(label, in_agency)
        if field is not None:
            return field, line[colon.end():].strip()
    folded = fold_header(line)
    for variant, _ in _BY_LABEL:
        if folded.startswith(variant):
            field = _field(variant, in_agency)
            return field, _after(line, variant).strip(" :：\t") if field else ""
    return None, ""


def _field(label: str, in_agency: bool) -> str | None:
    if in_agency and label in AGENCY_SECTION:
        return AGENCY_SECTION[label]
    for variant, field in _BY_LABEL:
        if label == variant:
            return field
    return None


def _after(line: str, folded_label: str) -> str:
    """The text after the characters of ``line`` that fold to ``folded_label`` (spaces, brackets skipped)."""
    count = 0
    for i, ch in enumerate(line):
        if count >= len(folded_label):
            rest = line[i:].lstrip(" )）]】")
            unit = re.match(r"\s*[(（][^)）]{0,12}[)）]", rest)  # (万元) after a label that folds without it
            return rest[unit.end():] if unit else rest
        count += len(fold_header(ch))
    return ""


def _value(field: str, text: str) -> Any:
    if field in NUMERIC:
        n = parse_number(text)
        return n if n is not None else clean_text(text)
    if field in YES_NO:
        return parse_yes_no(text) or clean_text(text)
    value = clean_text(text)
    if field in ("统一社会信用代码", AGENCY_CODE) and value:
        return value.replace(" ", "").upper()
    return value


# -- documents to pages of text ------------------------------------------------------------


def _pdf_pages(data: bytes, filename: str) -> Iterator[str]:
    import pdfplumber

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as e:
        raise _pdf_error(filename, e) from e
    try:
        for number, page in enumerate(pdf.pages[:MAX_PAGES]):
            try:
                text = page.extract_text() or ""
            except Exception as e:
                raise _pdf_error(filename, e) from e
            finally:
                page.close()
            if not text.strip() and number >= SCAN_PAGES:
                return
            yield text
    except ParseError:
        raise
    except Exception as e:
        raise _pdf_error(filename, e) from e
    finally:
        pdf.close()


def _pdf_error(filename: str, e: Exception) -> ParseError:
    text = f"{type(e).__name__} {e}".lower()
    if "password" in text or "encrypt" in text:
        return ParseError(filename, "PDF 文件已加密，请取消密码后重新发送")
    return ParseError(filename, f"PDF 文件已损坏或不完整，无法打开（{type(e).__name__}）")


def _docx_pages(data: bytes, filename: str) -> Iterator[str]:
    """The whole .docx as one page, in body order: paragraphs, and table rows as ``label：value`` lines."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        for child in document.element.body.iterchildren():
            tag = str(child.tag).rsplit("}", 1)[-1]
            if tag == "p":
                lines.append(Paragraph(child, document).text)
            elif tag == "tbl":
                lines += _table_lines(Table(child, document))
    except Exception as e:
        raise ParseError(filename, f"Word 文件已损坏或格式不正确，无法打开（{type(e).__name__}）") from e
    yield "\n".join(lines)


def _table_lines(table: Any) -> list[str]:
    """Each row's cells paired as ``label：value`` (a merged cell repeats its text: kept once)."""
    lines = []
    for row in table.rows:
        cells = [c.text.strip() for c in row.cells]
        unique = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
        lines += [f"{unique[i]}：{unique[i + 1]}" if i + 1 < len(unique) else unique[i]
                  for i in range(0, len(unique), 2)]
    return lines
