"""Application forms (申报书) as offices produce them: for the demo and the tests.

``form_pdf(fields)`` writes a PDF with reportlab and the built-in CJK font
``STSong-Light`` (no font file needed; pdfplumber reads its text back
exactly). Layouts seen in real forms: ``lines`` (``label：value``),
``table`` (two-column cells, no colon), ``spaced`` (labels spaced out
character by character) and ``next_line`` (the value on the line below its
label). ``pages`` adds narrative pages (项目实施方案) after the fields, as a
real form has. ``form_docx`` writes the same as a Word file; ``scanned_pdf`` a
page with no text layer.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
TITLE = "2024年徐州市知识产权计划项目申报书"
SUBTITLE = {"新建": "（高价值专利培育计划新建项目）", "升级": "（高价值专利培育计划升级项目）"}

# (field, label as printed) in form order; section 二 is the agency's.
APPLICANT = (
    ("项目名称", "项目名称"), ("牵头申报单位", "牵头申报单位（盖章）"), ("统一社会信用代码", "统一社会信用代码"),
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
NARRATIVE = ("一、项目背景与基础", "二、培育目标与主要任务", "三、实施计划与进度安排", "四、经费预算与保障措施")


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def form_lines(fields: Mapping[str, Any], *, project_type: str = "新建", layout: str = "lines",
               colon: str = "：") -> list[str | tuple[str, str]]:
    """The form's lines: strings, or (label, value) pairs for the table layout."""
    out: list[str | tuple[str, str]] = [TITLE, SUBTITLE.get(project_type, ""), "", "一、申报单位基本情况"]
    for section in (APPLICANT, AGENCY):
        if section is AGENCY:
            out += ["", "二、合作服务机构基本情况"]
        for field, label in section:
            if field not in fields:
                continue
            value = "" if fields[field] is None else str(fields[field])
            if layout == "table":
                out.append((label, value))
            elif layout == "spaced":
                out.append(" ".join(label) + colon + value)
            elif layout == "next_line":
                out += [label + colon, value]
            else:
                out.append(label + colon + value)
    return out


def form_pdf(fields: Mapping[str, Any], *, project_type: str = "新建", layout: str = "lines", pages: int = 1,
             colon: str = "：") -> bytes:
    """A text-layer PDF form; ``pages`` > 1 adds narrative pages after the fields."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    font, (width, height) = _font(), A4
    y = height - 72
    for line in form_lines(fields, project_type=project_type, layout=layout, colon=colon):
        if y < 72:
            c.showPage()
            y = height - 72
        c.setFont(font, 16 if line == TITLE else 11)
        if isinstance(line, tuple):
            c.rect(60, y - 5, 250, 18)
            c.rect(310, y - 5, width - 370, 18)
            c.drawString(64, y, line[0])
            c.drawString(314, y, line[1])
            y -= 18
        else:
            c.drawString(72 if line != TITLE else 140, y, line)
            y -= 22
    for n in range(1, pages):
        c.showPage()
        c.setFont(font, 11)
        y = height - 72
        c.drawString(72, y, NARRATIVE[(n - 1) % len(NARRATIVE)])
        for k in range(30):
            y -= 20
            c.drawString(72, y, f"第{n}部分第{k + 1}条：围绕核心技术开展专利布局，提升专利质量与运用效益。")
    c.showPage()
    c.save()
    return buf.getvalue()


def form_docx(fields: Mapping[str, Any], *, project_type: str = "新建", layout: str = "table") -> bytes:
    """The form as a Word file: field tables (``table``) or ``label：value`` paragraphs (``lines``)."""
    import docx

    document = docx.Document()
    document.add_heading(TITLE, level=1)
    document.add_paragraph(SUBTITLE.get(project_type, ""))
    for heading, section in (("一、申报单位基本情况", APPLICANT), ("二、合作服务机构基本情况", AGENCY)):
        document.add_paragraph(heading)
        present = [(label, fields[f]) for f, label in section if f in fields]
        if layout == "table":
            table = document.add_table(rows=len(present), cols=2)
            for row, (label, value) in zip(table.rows, present, strict=True):
                row.cells[0].text, row.cells[1].text = label, "" if value is None else str(value)
        else:
            for label, value in present:
                document.add_paragraph(f"{label}：{'' if value is None else value}")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def scanned_pdf() -> bytes:
    """A one-page PDF holding only an image, as a scanner makes it (no text layer)."""
    from reportlab.lib.utils import ImageReader

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.drawImage(ImageReader(io.BytesIO(_gray_png())), 72, 300, width=450, height=450)
    c.showPage()
    c.save()
    return buf.getvalue()


def _gray_png(size: int = 64) -> bytes:
    """A small gray PNG made with zlib alone (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes((x * y) % 200 + 30 for x in range(size)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
