"""Application forms (申报书) as offices produce them: for the demo, the golden data and the tests.

``form_pdf(fields)`` writes a PDF with reportlab and the built-in CJK font
``STSong-Light`` (no font file needed, not embedded; pdfplumber and PDFium read
its text back exactly, punctuation, digits and Latin included; a TTF such as
WenQuanYi Micro Hei, embedded as a subset the way Word exports, is used only
when ``font="ttf"`` is asked for and installed). Layouts seen
in real forms:

- ``lines``: ``label：value``, 联系人 and 联系电话 on one line;
- ``table``: ruled two-column cells without colons, 联系人/联系电话 in one
  four-cell row, long values wrapping inside their cell;
- ``spaced``: labels spaced out character by character (``项 目 名 称：``);
- ``next_line``: the value on the line below its label.

``pages`` ≥ 3 gives the usual shape: a cover page (title, 项目名称, 申报单位,
合作服务机构, 所属地区, 申报日期), section 一 (the applicant) on page 2,
section 二 (the agency, whose 单位名称 and 统一社会信用代码 are its own) on page 3,
then narrative pages (项目实施方案) up to ``pages``. Fewer pages put the fields
on page 1. ``form_docx`` writes the same as a Word file; ``scanned_pdf`` pages
holding only an image. Values are written as given (``str(value)``), so a
test passes ``"８５件"`` or ``"☑是 □否"`` to get that variant.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from samples.projects import sample_project

FONT = "STSong-Light"
TTF = ("WQY", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
TITLE = "2024年徐州市知识产权计划项目申报书"
SUBTITLE = {"新建": "（高价值专利培育计划新建项目）", "升级": "（高价值专利培育计划升级项目）"}
APPLICANT_HEADING, AGENCY_HEADING = "一、申报单位基本情况", "二、合作服务机构基本情况"

# (field, label as printed) in form order.
APPLICANT = (
    ("项目名称", "项目名称"), ("牵头申报单位", "牵头申报单位（盖章）"),
    ("统一社会信用代码", "统一社会信用代码"),
    ("单位性质", "单位性质"), ("部省市属事业单位", "是否部省市属事业单位"), ("所属地区", "所属地区"),
    ("有效专利数", "有效专利数（不含外观设计）"), ("有效发明专利数", "有效发明专利数"),
    ("PCT申请数", "进入国家阶段PCT专利申请数"), ("知识产权工程师人数", "取得知识产权工程师证书人数"),
    ("专利密集型产品备案", "是否完成专利密集型产品备案"), ("严重失信行为", "是否存在严重失信行为"),
    ("非正常专利申请", "是否存在非正常专利申请行为"),
    ("已通过市级验收", "是否已通过市级高价值专利培育计划项目验收"),
    ("承担省级项目", "是否承担省级高价值专利培育计划项目"),
    ("申请资助金额", "申请市级资助（万元）"), ("联系人", "联系人"), ("联系电话", "联系电话"),
)
AGENCY = (
    ("合作服务机构", "合作服务机构（盖章）"), ("机构统一社会信用代码", "统一社会信用代码"),
    ("机构从业人员数", "从业人员数"), ("机构专利代理人数", "相关技术领域专利代理人及检索分析人员数"),
    ("机构服务收入", "2023年知识产权服务收入（万元）"),
)
COVER = (("项目名称", "项目名称"), ("牵头申报单位", "申报单位（盖章）"),
         ("合作服务机构", "合作服务机构（盖章）"), ("所属地区", "所属地区"))
NARRATIVE = ("三、项目背景与基础", "四、培育目标与主要任务", "五、实施计划与进度安排",
             "六、经费预算与保障措施")
PAIRED = ("联系人", "联系电话")  # printed on one line / in one table row
ATTACHED = ("合作协议", "信用承诺书")  # the documents the guide requires besides the form, bound in after it


def sample_form_fields(i: int, *, project_type: str = "新建", district: str = "云龙区",
                       **overrides: Any) -> dict[str, Any]:
    """Form fields of sample project ``i``: the same applicant and credit code as its summary row."""
    return {**sample_project(i, district=district, project_type=project_type).form, **overrides}


def _font(kind: str = "cid") -> str:
    if kind == "ttf" and os.path.exists(TTF[1]):
        from reportlab.pdfbase.ttfonts import TTFont

        if TTF[0] not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(TTF[0], TTF[1], subfontIndex=0))
        return TTF[0]
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _section(fields: Mapping[str, Any], section: tuple, *, agency_label: str | None = None) -> list[tuple]:
    """(label, value) pairs present in ``fields``; 联系人 and 联系电话 joined into one 4-tuple."""
    out: list[tuple] = []
    for field, label in section:
        if field not in fields:
            continue
        if field == "合作服务机构" and agency_label:
            label = agency_label
        if field == PAIRED[1] and out and out[-1][0] == PAIRED[0]:
            out[-1] = (*out[-1], label, _text(fields[field]))
        else:
            out.append((label, _text(fields[field])))
    return out


def form_lines(fields: Mapping[str, Any], *, project_type: str = "新建", layout: str = "lines",
               colon: str = "：", pages: int = 1, titles: tuple[str, ...] = ()) -> list[list[str | tuple]]:
    """The form's pages of lines: strings (title, headings, text) or label/value tuples; ``titles``
    replace the title and subtitle (another program's form, another year's)."""
    head = list(titles) if titles else [TITLE, SUBTITLE.get(project_type, "")]
    one = [APPLICANT_HEADING, *_section(fields, APPLICANT)]
    multi = pages >= 3
    two = [AGENCY_HEADING, *_section(fields, AGENCY, agency_label="单位名称" if multi else None)]
    if not multi:
        return [[*head, "", *one, "", *two]]
    cover = [*head, "", *_section(fields, COVER), ("申报日期", "2024年11月5日")]
    return [cover, one, two]


def _render(line: str | tuple, layout: str, colon: str) -> list[str]:
    """A text line (or lines) for the non-table layouts."""
    if isinstance(line, str):
        return [line]
    pairs = [line[k: k + 2] for k in range(0, len(line), 2)]
    if layout == "spaced":
        return ["　　".join(" ".join(label) + colon + value for label, value in pairs)]
    if layout == "next_line":
        return [s for label, value in pairs for s in (label + colon, value)]
    return ["　　".join(label + colon + value for label, value in pairs)]


def form_pdf(fields: Mapping[str, Any], *, project_type: str = "新建", layout: str = "lines", pages: int = 1,
             colon: str = "：", font: str = "cid", attached: tuple[str, ...] = ATTACHED,
             titles: tuple[str, ...] = ()) -> bytes:
    """A text-layer PDF form of at least ``pages`` pages; narrative pages follow the fields, then one page
    per ``attached`` document (合作协议, 信用承诺书), headed by its name."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    name = _font(font)
    content = form_lines(fields, project_type=project_type, layout=layout, colon=colon, pages=pages, titles=titles)
    for number, lines in enumerate(content):
        if number:
            c.showPage()
        _draw_page(c, name, lines, layout, colon)
    for n in range(len(content), pages):
        c.showPage()
        _narrative(c, name, n)
    for document in attached:
        c.showPage()
        _draw_page(c, name, attachment_lines(document, fields), "lines", "：")
    c.showPage()
    c.save()
    return buf.getvalue()


def attachment_lines(document: str, fields: Mapping[str, Any]) -> list[str | tuple]:
    """A 合作协议 or 信用承诺书 page: its heading, the parties, a sentence of text."""
    applicant, agency = _text(fields.get("牵头申报单位")), _text(fields.get("合作服务机构"))
    if document == "合作协议":
        return ["合作协议", ("甲方（申报单位）", applicant), ("乙方（合作服务机构）", agency),
                "双方就高价值专利培育计划项目的组织机构及人员安排、合作机制及任务分工、",
                "预算经费分配及项目实施保障等事项协商一致，订立本协议。"]
    return ["信用承诺书", ("承诺单位（盖章）", applicant),
            ("统一社会信用代码", _text(fields.get("统一社会信用代码"))),
            "本单位承诺所提交的申报材料真实、准确、完整，如有弄虚作假，愿承担相应责任。"]


def attachment_pdf(document: str, fields: Mapping[str, Any]) -> bytes:
    """A 合作协议 or 信用承诺书 sent as a file of its own (text layer)."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    _draw_page(c, _font(), attachment_lines(document, fields), "lines", "：")
    c.showPage()
    c.save()
    return buf.getvalue()


def _draw_page(c: canvas.Canvas, font: str, lines: list, layout: str, colon: str) -> None:
    width, height = A4
    y = height - 72
    for line in lines:
        if y < 72:
            c.showPage()
            y = height - 72
        if line == TITLE:
            c.setFont(font, 16)
            c.drawCentredString(width / 2, y, line)
            y -= 26
            continue
        c.setFont(font, 11)
        if layout == "table" and isinstance(line, tuple):
            y = _table_row(c, font, line, y)
            continue
        for text in _render(line, layout, colon):
            c.drawString(72, y, text)
            y -= 22


def _table_row(c: canvas.Canvas, font: str, cells: tuple, y: float) -> float:
    """One ruled row: label and value cells (four cells for a paired row), values wrapped to fit."""
    x0, x1 = 60.0, A4[0] - 60
    half = (x1 - x0) / 2 - 80
    widths = [250.0, x1 - x0 - 250] if len(cells) == 2 else [80.0, half, 80.0, half]
    wrapped = [_wrap(text, w - 8, font) for text, w in zip(cells, widths, strict=True)]
    height = 16 * max(len(w) for w in wrapped) + 6
    x = x0
    for lines, w in zip(wrapped, widths, strict=True):
        c.rect(x, y - height + 14, w, height)
        for k, text in enumerate(lines):
            c.drawString(x + 4, y - 16 * k, text)
        x += w
    return y - height


def _wrap(text: str, width: float, font: str) -> list[str]:
    lines, current = [], ""
    for ch in text:
        if current and pdfmetrics.stringWidth(current + ch, font, 11) > width:
            lines.append(current)
            current = ""
        current += ch
    return [*lines, current]


def _narrative(c: canvas.Canvas, font: str, n: int) -> None:
    """A page of the 项目实施方案: plain text with no field labels."""
    y = A4[1] - 72
    c.setFont(font, 12)
    c.drawString(72, y, NARRATIVE[(n - 3) % len(NARRATIVE)])
    c.setFont(font, 11)
    for k in range(32):
        y -= 20
        text = "围绕核心技术开展专利布局，提升专利质量与运用效益，推动成果转化"
        c.drawString(72, y, f"（{k + 1}）{text}，第{n + 1}页。")


def form_docx(fields: Mapping[str, Any], *, project_type: str = "新建", layout: str = "table",
              attached: tuple[str, ...] = ATTACHED) -> bytes:
    """The form as a Word file: ``table`` (a ruled table per section, the agency's under a merged first
    column reading 合作服务机构情况, no numbered headings) or ``lines`` (``label：value`` paragraphs);
    then the ``attached`` documents, each after a page break under its heading."""
    import docx

    document = docx.Document()
    document.add_heading(TITLE, level=1)
    document.add_paragraph(SUBTITLE.get(project_type, ""))
    if layout != "table":
        for heading, section in ((APPLICANT_HEADING, APPLICANT), (AGENCY_HEADING, AGENCY)):
            document.add_paragraph(heading)
            for line in _section(fields, section):
                document.add_paragraph(_render(line, "lines", "：")[0])
    else:
        _docx_table(document, _section(fields, APPLICANT), None)
        _docx_table(document, _section(fields, AGENCY, agency_label="单位名称"), "合作服务机构情况")
    document.add_paragraph("三、项目实施方案")
    document.add_paragraph("围绕核心技术开展专利布局，提升专利质量与运用效益。")
    for name in attached:
        document.add_page_break()
        for line in attachment_lines(name, fields):
            document.add_paragraph(_render(line, "lines", "：")[0])
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def _docx_table(document: Any, rows: list[tuple], side: str | None) -> None:
    """Two (or, for a paired row, four) cells per row; ``side``: a merged first column with that text."""
    offset = 1 if side else 0
    table = document.add_table(rows=len(rows), cols=4 + offset)
    table.style = "Table Grid"
    for row, cells in zip(table.rows, rows, strict=True):
        if len(cells) == 2:
            row.cells[offset].text = cells[0]
            row.cells[offset + 1].merge(row.cells[offset + 3]).text = cells[1]
        else:
            for k, text in enumerate(cells):
                row.cells[offset + k].text = text
    if side and rows:
        table.cell(0, 0).merge(table.cell(len(rows) - 1, 0)).text = side


def scanned_pdf(pages: int = 1) -> bytes:
    """A PDF whose pages hold only an image, as a scanner makes it (no text layer)."""
    from reportlab.lib.utils import ImageReader

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    for _ in range(pages):
        c.drawImage(ImageReader(io.BytesIO(_gray_png())), 72, 300, width=450, height=450)
        c.showPage()
    c.save()
    return buf.getvalue()


def _gray_png(size: int = 64) -> bytes:
    """A small gray PNG made with zlib alone (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + bytes((x * y) % 200 + 30 for x in range(size)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body
