"""Application forms (申报书, spec section 4) from PDF (PDFium + pdfplumber) and .docx (python-docx) bytes.

A document becomes a stream of items in reading order: text lines, and table
rows as lists of cells. Labels are matched after folding spaces, full-width
forms, brackets, notes such as （盖章） and unit suffixes, so ``项 目 名 称：…``,
``项目名称:…``, a two-column table row and a label with its value on the next
line all read the same; one line may hold several ``label：value`` pairs.

- 新建/升级 comes from the title (``（高价值专利培育计划新建项目）``), else from a
  项目类别 line.
- After a heading naming the cooperating agency (``二、合作服务机构基本情况``),
  单位名称/机构名称 is the agency's name and 统一社会信用代码 the agency's own
  code (``机构统一社会信用代码``); the applicant's fields are not taken there.
- The first value found for a field wins. Pages are read one at a time, each
  page's characters parsed once (text lines and, when the page has ruling
  lines, its tables come from the same parsed characters); reading stops once
  every field the form type needs is found (``pages_read``).
- No text on the first pages but images: a scan. With the ``ocr`` extra
  installed it is read by OCR (``parsers.ocr``) through the same reader, page
  by page until the fields are complete, and the form is marked
  ``source="ocr"``; without it, or when OCR finds no form, it stays a scan
  (``ScannedFormError``) for staff review. Encrypted, truncated, corrupt or oversized files:
  ``ParseError`` with the reason; no other exception leaves ``parse_form``.
- Not a form (no 申报书 title with a field, and fewer than ``MIN_FIELDS``
  labelled fields): ``None``.

Resource limits: input size, pages read, characters per page, text fed, a
time budget checked between pages, and for .docx the zip's member count and
uncompressed size (checked before python-docx inflates anything). PDFium
inflates a content stream in one piece; the input cap bounds it but a crafted
compression bomb inside a small PDF is not detected here.
"""

from __future__ import annotations

import io
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from parsers.normalize import clean_text, fold_header, parse_checked_yes_no, parse_number, parse_project_type
from parsers.programs import AGREEMENT, heading_attachment, named_program, named_year
from parsers.types import ApplicationForm, DocKind, OtherDocument, ParseError, ScannedFormError

MAX_BYTES = 50 * 1024 * 1024
MAX_PAGES, SCAN_PAGES, MIN_FIELDS = 30, 3, 3
HEAD_LINES = 3  # lines at the top of a page that may head an attached document
HEAD_CHARS = 80  # characters drawn first on a page that are read for such a heading
MAX_LINE, MAX_PAGE_CHARS, MAX_TEXT = 500, 60_000, 2_000_000
TIME_BUDGET = 30.0  # seconds; a normal 10-page form takes well under one
ZIP_MEMBERS, ZIP_TOTAL, ZIP_RATIO = 2_000, 200 * 1024 * 1024, 200
AGENCY_CODE = "机构统一社会信用代码"
OCR_ENABLED = True  # tests turn OCR off here to pin down the behaviour without the ``ocr`` extra
OCR_SOURCE, SCAN_OCR_PAGES = "ocr", 10  # a scan's fields are read by OCR from its first pages at most
OCR_BUDGET = 20.0  # seconds of OCR per scan; the parser child's own limit is the hard one
TOO_MANY_CHARS = "PDF 页面内容异常（文字过多），无法读取"
SCANNED_REASON = ("申报书 PDF 没有文字层（是扫描件或图片），无法自动读取；"
                  "请发送由 Word 直接导出的 PDF，不要扫描")

# field <- label variants, folded with fold_header (no spaces, brackets or unit suffix, lower case)
LABELS: dict[str, tuple[str, ...]] = {
    "项目名称": ("项目名称",),
    "牵头申报单位": ("牵头申报单位盖章", "申报单位盖章", "牵头申报单位", "申报单位", "单位名称",
                   "甲方", "承诺单位盖章", "承诺单位"),  # the last three: a 合作协议's or 信用承诺书's applicant
    "统一社会信用代码": ("统一社会信用代码",),
    "单位性质": ("单位性质",),
    "部省市属事业单位": ("是否部省市属事业单位",),
    "所属地区": ("所属地区", "所属区县"),
    "合作服务机构": ("合作服务机构盖章", "知识产权服务机构", "机构名称", "合作服务机构", "乙方"),
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
TYPE_LABELS = ("项目类别", "项目类型")  # not a field: 新建/升级 when the title does not say
UPGRADE_ONLY = ("已通过市级验收", "承担省级项目")
NUMERIC = frozenset({"有效专利数", "有效发明专利数", "PCT申请数", "知识产权工程师人数", "机构从业人员数",
                     "机构专利代理人数", "机构服务收入", "申请资助金额"})
YES_NO = frozenset({"部省市属事业单位", "专利密集型产品备案", "严重失信行为", "非正常专利申请",
                    "已通过市级验收", "承担省级项目"})
AGENCY_FIELDS = frozenset({"合作服务机构", AGENCY_CODE, "机构从业人员数", "机构专利代理人数",
                           "机构服务收入"})
# In the agency's section these labels name the agency, not the applicant.
IN_AGENCY = {"单位名称": "合作服务机构", "统一社会信用代码": AGENCY_CODE}
NEEDED = (*LABELS, AGENCY_CODE)

_VARIANTS = {v: f for f, vs in LABELS.items() for v in vs} | {v: "" for v in TYPE_LABELS}
_BY_LENGTH = sorted(_VARIANTS, key=len, reverse=True)
_LONGEST = 3 * max(map(len, _VARIANTS)) + 12  # raw label length with spaces and a bracketed note
_COLON = re.compile(r"[:：]")
_NOTE = re.compile(r"[(（][^()（）]{0,12}[)）]")
_NUMERAL = "一二三四五六七八九十"
_ENUM = re.compile(  # 1.  （1）  一、  before a label
    rf"^\s*(?:\d{{1,2}}\s*[.、．]|[(（]\s*[\d{_NUMERAL}]{{1,2}}\s*[)）]|[{_NUMERAL}]{{1,2}}\s*、)")
_HEADING = re.compile(rf"^\s*(?:[{_NUMERAL}]{{1,3}}\s*[、.．]|[(（]\s*[{_NUMERAL}]{{1,3}}\s*[)）])")
_CJK = "\u3000-\u9fff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])\s*\n\s*(?=[{_CJK}])")

Item = str | Sequence[str | None]  # a text line, or a table row's cells


def parse_form(data: bytes, filename: str, sniffed: str, pdf: Any = None) -> ApplicationForm | OtherDocument | None:
    """The form's fields, ``None`` when the document is readable but no application form.

    A document whose first page is headed 合作协议 / 信用承诺书, or whose title says 汇总表, is
    that document (``OtherDocument``). Once a form's fields are complete, the remaining pages are
    only looked at for the headings of attached documents (a 合作协议 or 信用承诺书 bound in).
    ``pdf``: the file already opened (``pdfium_pages.Document``), shared with the seal check.
    """
    if len(data) > MAX_BYTES:
        raise ParseError(filename, f"文件过大（超过 {MAX_BYTES // 1024 // 1024} MB），无法读取")
    reader = _Reader(any_line_heads=sniffed == "docx")
    pages = _docx_pages(data, filename) if sniffed == "docx" else _pdf_pages(data, filename, reader.complete, pdf)
    pages_read = 0
    try:
        for items in pages:
            if reader.complete():
                reader.feed_headings(items)
                continue
            pages_read += 1
            reader.feed(items)
    except ScannedFormError as e:
        return _scanned_form(data, filename, e)
    finally:
        pages.close()
    return reader.document(filename, pages_read)


def _read(reader: _Reader, pages: Iterator[list[Item]], ocr: bool = False) -> int:
    """Feed pages until the form's fields are complete; the number of pages read.

    ``ocr``: OCR costs about a second a page, so reading also stops at the first page that adds
    no field once some were found (the fields of a form stand on consecutive pages; what follows
    is prose), and when ``OCR_BUDGET`` seconds are spent."""
    pages_read = 0
    started = time.monotonic()
    try:
        for items in pages:
            pages_read += 1
            before = len(reader.fields)
            reader.feed(items)
            if reader.complete():
                break
            if ocr and ((before and len(reader.fields) == before) or time.monotonic() - started > OCR_BUDGET):
                break
    finally:
        pages.close()
    return pages_read


def _scanned_form(data: bytes, filename: str, scanned: ScannedFormError) -> ApplicationForm | OtherDocument:
    """A scanned PDF read by OCR; ``scanned`` is raised again when OCR cannot tell what it is."""
    document = read_scan(data, filename, "pdf")
    if document is None:
        raise scanned
    return document


def read_scan(data: bytes, filename: str, sniffed: str) -> ApplicationForm | OtherDocument | None:
    """A scan (a PDF without text layer, or an image file) read by OCR (``parsers.ocr``) through the
    same reader, so its title decides what it is (a form of ours or another program's, a 合作协议, a
    信用承诺书, a stamped 汇总表), marked ``source="ocr"``. ``None`` without the ``ocr`` extra, when
    OCR fails (a hostile image, the child's memory limit) or when it finds nothing it knows: the
    caller falls back to the file name."""
    from parsers import ocr

    if not OCR_ENABLED or not ocr.available():
        return None
    reader = _Reader()
    try:
        pages = (list(map(_mend_labels, items)) for items in ocr.document_pages(data, sniffed, SCAN_OCR_PAGES))
        pages_read = _read(reader, pages, ocr=True)
    except Exception:  # noqa: BLE001 - whatever OCR raises, the scan is read as without OCR
        return None
    document = reader.document(filename, pages_read)
    if document is not None:
        document.source = OCR_SOURCE
    return document


# -- fields from lines and rows -----------------------------------------------------------------


class _Reader:
    """Fields from a stream of text lines and table rows, page by page."""

    def __init__(self, any_line_heads: bool = False) -> None:
        self.fields: dict[str, str] = {}
        self.title_type: str | None = None
        self.label_type: str | None = None
        self.titled = self.in_agency = False
        self.fed = 0
        self._pending: str | None = None  # a field whose value is on the next line
        self._last: str | None = None  # the field set last
        self.page = -1
        self.titles: list[str] = []  # title lines of the first page (program, year, 汇总表)
        self.first_heading: str | None = None  # 合作协议 / 信用承诺书 heading the first page
        self.attachments: dict[str, None] = {}  # documents headed inside the file after its first page, in order
        self._heads_left = 0  # lines of the current page that may still be a heading
        self._any_line_heads = any_line_heads  # a Word file has no pages: any line may head a document

    @property
    def project_type(self) -> str | None:
        return self.title_type or self.label_type

    def feed(self, items: Sequence[Item]) -> None:
        self.page += 1
        self._heads_left = HEAD_LINES
        for item in items:
            if self.fed > MAX_TEXT:
                return
            if isinstance(item, str):
                self._text(item)
            else:
                self._row(item)

    def _text(self, text: str) -> None:
        for raw in text.splitlines():
            line = raw[:MAX_LINE].strip()
            if line:
                self.fed += len(line)
                self._line(line)

    def feed_headings(self, items: Sequence[Item]) -> None:
        """A page after the form's fields: only its first lines, for an attached document's heading."""
        self.page += 1
        for item in items[:HEAD_LINES]:
            if isinstance(item, str):
                self._attachment_heading(item, force=True)

    def _attachment_heading(self, line: str, force: bool = False) -> None:
        if not (force or self._heads_left > 0 or (self._any_line_heads and self.fields)):
            return
        self._heads_left -= 1
        found = heading_attachment(line)
        if found is None:
            return
        if self.page == 0 and not self.titled and not self.fields:
            self.first_heading = self.first_heading or found
        else:
            self.attachments.setdefault(found)

    def _line(self, line: str) -> None:
        folded = fold_header(line)
        self._attachment_heading(line)
        self._title(folded)
        pairs = _pairs(line)
        if not pairs:
            if self._pending and not _HEADING.match(line):
                self._set(self._pending, line)
            self._pending = None
            self._heading(line, folded)
            return
        self._pending = None
        for label, value in pairs:
            field = self._field(label)
            if field is not None and clean_text(value):
                self._set(field, value)
            elif field is not None and len(pairs) == 1:
                self._pending = field

    def _row(self, cells: Sequence[str | None]) -> None:
        """A table row: a label cell takes the next cell as its value; other cells are read as lines."""
        texts = [_cell_text(c) for c in cells]
        texts = [t for i, t in enumerate(texts) if t and (i == 0 or t != texts[i - 1])]  # merged cells repeat
        if len(texts) < 2:
            self._text("\n".join(texts))
            return
        self._pending = None
        i = 0
        while i < len(texts):
            field = self._field(texts[i])
            value = texts[i + 1] if i + 1 < len(texts) else None
            if field is None:
                self._text(texts[i])
                i += 1
            elif value is None or self._field(value) is not None:
                self._heading(texts[i], fold_header(texts[i]))  # a label with no value: a section cell
                i += 1
            else:
                self._set(field, value)
                i += 2

    def _title(self, folded: str) -> None:
        if len(folded) > 60:
            return
        if self.page == 0 and len(self.titles) < 8 and not _COLON.search(folded) and (
                "申报书" in folded or "汇总表" in folded or named_program(folded)):
            self.titles.append(folded)
        if "申报书" in folded:
            self.titled = True
        if self.title_type is None and "培育计划" in folded and folded.endswith("项目"):
            self.title_type = parse_project_type(folded)

    def _heading(self, line: str, folded: str) -> None:
        """Track whether we are in the cooperating agency's section."""
        numbered = bool(_HEADING.match(line))
        names_agency = "机构" in folded and len(folded) <= 30
        if numbered:
            self.in_agency = names_agency or "合作" in folded
        elif names_agency and folded.endswith(("情况", "信息", "概况", "简介", "服务机构")):
            self.in_agency = True

    def _field(self, label: str) -> str | None:
        """The field a label names here ("" for 项目类别), or None."""
        field = _label_field(label)
        if field is None or not self.in_agency:
            return field
        folded = _fold_label(label)
        agency = IN_AGENCY.get(folded) or IN_AGENCY.get(_fold_label(_NOTE.sub("", label)))
        if agency:
            return agency
        return field if field in AGENCY_FIELDS else None

    def _set(self, field: str, value: str) -> None:
        if not clean_text(value):
            return
        if field == "":
            self.label_type = self.label_type or parse_project_type(value)
            return
        if field == "统一社会信用代码" and field in self.fields and self._last == "合作服务机构":
            field = AGENCY_CODE  # no section heading, but the code follows the agency's name
        if field not in self.fields:
            self.fields[field] = value
        self._last = field

    def complete(self) -> bool:
        needed = [f for f in NEEDED if f not in UPGRADE_ONLY or self.project_type == "升级"]
        return self.project_type is not None and all(f in self.fields for f in needed)

    def is_form(self) -> bool:
        return (self.titled and bool(self.fields)) or len(self.fields) >= MIN_FIELDS

    def values(self) -> dict[str, Any]:
        return {f: _value(f, v) for f, v in self.fields.items()}

    def program_and_year(self) -> tuple[str | None, int | None]:
        program = next((p for t in self.titles if (p := named_program(t))), None)
        return program, next((y for t in self.titles if (y := named_year(t))), None)

    def document(self, filename: str, pages_read: int) -> ApplicationForm | OtherDocument | None:
        """What the pages read make: a stamped table, an attached document, a form, or nothing."""
        program, year = self.program_and_year()
        values = self.values()
        applicant, code = values.get("牵头申报单位"), values.get("统一社会信用代码")
        if any("汇总表" in t for t in self.titles) and not self.titled:
            return OtherDocument(filename, DocKind.STAMPED_TABLE, "盖章汇总表", program, year)
        if self.first_heading:
            kind = DocKind.AGREEMENT if self.first_heading == AGREEMENT else DocKind.PLEDGE
            return OtherDocument(filename, kind, self.first_heading, program, year, applicant, code)
        if not self.is_form():
            return None
        return ApplicationForm(filename, self.project_type, values, pages_read, program=program, year=year,
                               attachments=list(self.attachments))


def _mend_labels(item: Item) -> Item:
    """An OCR line or row with a misread label character mended (``是否存在严董失信行为`` names
    严重失信行为): a label of five or more characters that differs from a known one in one place."""
    if isinstance(item, str):
        return _mend_label(item)
    return [_mend_label(c) if c else c for c in item]


def _mend_label(text: str) -> str:
    colon = _COLON.search(text)
    label, rest = (text[: colon.start()], text[colon.start():]) if colon else (text, "")
    if len(label) > _LONGEST or _label_field(label) is not None:
        return text
    folded = _fold_label(_NOTE.sub("", label))
    if len(folded) < 5:
        return text
    for variant in _BY_LENGTH:
        if len(variant) == len(folded) and sum(a != b for a, b in zip(variant, folded, strict=True)) == 1:
            return variant + rest
    return text


def _fold_label(text: str) -> str:
    return fold_header(_ENUM.sub("", text))


def _label_field(text: str) -> str | None:
    """The field (or "" for 项目类别) a whole label names, allowing notes like （盖章） and a numbering."""
    if len(text) > _LONGEST:
        return None
    field = _VARIANTS.get(_fold_label(text))
    if field is None and ("(" in text or "（" in text):
        field = _VARIANTS.get(_fold_label(_NOTE.sub("", text)))
    return field


def _pairs(line: str) -> list[tuple[str, str]]:
    """``label：value`` pairs in a line (several when a later colon follows a known label); else a
    label at the start of the line followed by whitespace (a table row read as text) or nothing."""
    marks = list(_COLON.finditer(line))
    if not marks:
        return _prefix_pair(line)
    pairs = []
    label, start = line[: marks[0].start()], marks[0].end()
    for mark in marks[1:]:
        cut = _label_start(line[start: mark.start()])
        if cut is not None:
            pairs.append((label, line[start: start + cut]))
            label, start = line[start + cut: mark.start()], mark.end()
    pairs.append((label, line[start:]))
    if _label_field(pairs[0][0]) is None and len(pairs) == 1:
        return _prefix_pair(line)
    return pairs


def _label_start(chunk: str) -> int | None:
    """Where a known label ends ``chunk`` (the longest one), or None."""
    for i in range(max(0, len(chunk) - _LONGEST), len(chunk)):
        if (i == 0 or not chunk[i - 1].isascii() or not chunk[i].isalnum()) and _label_field(chunk[i:]):
            return i
    return None


def _prefix_pair(line: str) -> list[tuple[str, str]]:
    """A known label at the start of the line, its value after whitespace: ``项目名称 高端液压…``."""
    if _label_field(line) is not None:
        return [(line, "")]
    folded = []
    ends = []  # raw index after each folded character
    for i, ch in enumerate(line[:_LONGEST]):
        for c in fold_header(ch):
            folded.append(c)
            ends.append(i + 1)
    text = "".join(folded)
    for variant in _BY_LENGTH:
        if text.startswith(variant):
            rest = line[ends[len(variant) - 1]:].lstrip(")）]】")
            note = _NOTE.match(rest)
            rest = rest[note.end():] if note else rest
            if rest[:1].isspace() or rest[:1] in ":：":
                return [(line[: len(line) - len(rest)], rest.strip(" :：\t"))]
            return []
    return []


def _cell_text(cell: str | None) -> str:
    """A table cell's text, a line break inside Chinese text joined without a space."""
    if not cell:
        return ""
    return _CJK_BREAK.sub("", str(cell)[: MAX_LINE * 4]).strip()


def _value(field: str, text: str) -> Any:
    if field in NUMERIC:
        n = parse_number(text)
        return n if n is not None else clean_text(text)
    if field in YES_NO:
        return parse_checked_yes_no(text) or clean_text(text)
    value = clean_text(text)
    if field in ("统一社会信用代码", AGENCY_CODE) and value:
        return "".join(unicodedata.normalize("NFKC", value).split()).upper()
    return value


# -- PDF pages ------------------------------------------------------------------------------------


def _pdf_pages(
    data: bytes, filename: str, light: Callable[[], bool] = lambda: False, shared: Any = None
) -> Iterator[list[Item]]:
    """Each page's items; a scan or an empty document raises once the first pages had no text.

    While ``light()`` is true a page gives only its top text lines (a heading), without tables. Pages are
    read through PDFium (``parsers.pdfium_pages``); a page it does not read as pdfplumber would (rotated,
    text not upright) is read by pdfplumber.
    """
    from parsers.pdfium_pages import borrowed

    if b"%%EOF" not in data[-4096:]:  # Acrobat wants it in the last 1 KB; a cut-off mail part lacks it
        raise ParseError(filename, "PDF 文件不完整（可能在传输中被截断），请重新发送完整的文件")
    started = time.monotonic()
    try:
        with borrowed(data, shared) as pdf:
            if not len(pdf):
                raise ParseError(filename, "PDF 文件没有页面，可能已损坏")
            text_seen = images_seen = False
            for number in range(min(len(pdf), MAX_PAGES)):
                if time.monotonic() - started > TIME_BUDGET:
                    raise ParseError(filename, "PDF 文件结构异常，读取超时，请重新导出后发送")
                page = pdf.page(number)
                items, images = _head_items(page) if light() else _page_items(page, data, number, filename)
                text_seen, images_seen = text_seen or bool(items), images_seen or images
                if not text_seen and number + 1 >= SCAN_PAGES:
                    break
                yield items
            if not text_seen and images_seen:
                raise ScannedFormError(filename, SCANNED_REASON)
            if not text_seen:
                raise ParseError(filename, "PDF 文件中没有可读取的文字，可能已损坏，请重新导出后发送")
    except ParseError:
        raise
    except Exception as e:  # PDFium cannot open it (encrypted, damaged) or a page breaks the reader
        raise _pdf_error(filename, data, e) from e


def _page_items(page: Any, data: bytes, number: int, filename: str) -> tuple[list[Item], bool]:
    """A page's text lines and table rows in reading order, and whether it shows images."""
    from parsers import pdfium_pages

    try:
        sheet = pdfium_pages.sheet(page, MAX_PAGE_CHARS)
    except pdfium_pages.TooManyChars:
        raise ParseError(filename, TOO_MANY_CHARS) from None
    except pdfium_pages.Unsupported:
        return _plumber_page_items(data, number, filename)
    return _items(sheet)


def _plumber_page_items(data: bytes, number: int, filename: str) -> tuple[list[Item], bool]:
    """A page PDFium's reader leaves to pdfplumber (rotated, or text not upright)."""
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        page = pdf.pages[number]
        if len(page.chars) > MAX_PAGE_CHARS:
            raise ParseError(filename, TOO_MANY_CHARS)
        return _items(page)


def _items(page: Any) -> tuple[list[Item], bool]:
    """Text lines outside tables and table rows, by their top; (items, whether images show) — a pdfplumber
    page or a ``pdfium_pages.Sheet``."""
    if not page.chars:
        return [], bool(page.images)
    placed: list[tuple[float, int, Item]] = []
    tables = page.find_tables() if page.rects or page.lines else []
    boxes = [t.bbox for t in tables]
    for line in page.extract_text_lines(return_chars=False):
        middle = (line["top"] + line["bottom"]) / 2
        if not any(x0 <= line["x0"] <= x1 and top <= middle <= bottom for x0, top, x1, bottom in boxes):
            placed.append((line["top"], len(placed), line["text"]))
    for table in tables:
        for row, cells in zip(table.rows, table.extract(), strict=False):
            placed.append((row.bbox[1], len(placed), cells))
    placed.sort(key=lambda p: (p[0], p[1]))
    return [item for _, _, item in placed], False


def _head_items(page: Any) -> tuple[list[Item], bool]:
    """The first text lines drawn on a page (where an attached document's heading stands): the first
    ``HEAD_CHARS`` characters PDFium finds, in lines by their baseline. A page PDFium cannot read has no
    heading: the form's fields, read already, are not lost for it."""
    from parsers import pdfium_pages

    try:
        return pdfium_pages.head_lines(page, HEAD_CHARS)[:HEAD_LINES], False
    except Exception:  # noqa: BLE001 - see the docstring
        return [], False


def _pdf_error(filename: str, data: bytes, e: Exception) -> ParseError:
    text = f"{type(e).__name__} {e}".lower()
    if "password" in text or "encrypt" in text or b"/Encrypt" in data:
        return ParseError(filename, "PDF 文件已加密（设置了密码），请取消密码后重新发送")
    return ParseError(filename, f"PDF 文件已损坏或格式不正确，无法打开（{type(e).__name__}）")


# -- Word (.docx) ---------------------------------------------------------------------------------


def _docx_pages(data: bytes, filename: str) -> Iterator[list[Item]]:
    """The whole .docx as one page, in body order: paragraphs as lines, table rows as cells."""
    try:
        _check_zip(data, filename)
        items = _docx_items(data)
    except ParseError:
        raise
    except Exception as e:
        raise ParseError(filename, f"Word 文件已损坏或格式不正确，无法打开（{type(e).__name__}）") from e
    yield items


def _check_zip(data: bytes, filename: str) -> None:
    """Refuse zip bombs before python-docx inflates every part."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    inflated = any(i.file_size > 1024 * 1024 and i.file_size > ZIP_RATIO * max(i.compress_size, 1)
                   for i in infos)
    if len(infos) > ZIP_MEMBERS or total > ZIP_TOTAL or inflated:
        raise ParseError(filename, "Word 文件内容异常（解压后过大），无法读取")


def _docx_items(data: bytes) -> list[Item]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    items: list[Item] = []
    for child in document.element.body.iterchildren():
        tag = str(child.tag).rsplit("}", 1)[-1]
        if tag == "p":
            items.append(Paragraph(child, document).text)
        elif tag == "tbl":
            items += _docx_rows(Table(child, document))
    return items


def _docx_rows(table: Any) -> list[Item]:
    """A table's rows as cell texts, a merged cell once (python-docx repeats it)."""
    rows: list[Item] = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(cell.text)
        rows.append(cells)
    return rows
