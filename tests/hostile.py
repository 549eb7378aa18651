"""Hostile files and messages, generated: bombs that pass every size check a parser makes up front.

Shared by tests/test_parsepool.py, tests/test_mail.py and benchmarks/bench_hostile.py. Each
generator takes a scale, so tests use small ones (against a small child limit) and the benchmark
big ones (against the default limit).
"""

from __future__ import annotations

import io
import random
import zipfile
import zlib

# -- PDF ------------------------------------------------------------------------------------------


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF with a correct xref table from numbered object bodies (object i+1 = objects[i])."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % o for o in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    packed = zlib.compress(data, 9)
    return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(packed), extra) + packed + b"\nendstream"


def pdf_text_bomb(chars: int = 2_000_000) -> bytes:
    """One page whose (compressed) content stream shows ``chars`` characters: pdfminer makes an
    object per character before any per-page bound can look at them."""
    line = b"(" + b"A" * 50 + b") Tj "
    content = b"BT /F1 1 Tf 10 700 Td " + line * (chars // 50) + b"ET"
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def pdf_deep_nesting(depth: int = 100_000) -> bytes:
    """A page whose resources hold an array nested ``depth`` deep."""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources 5 0 R >>",
        _stream(b"BT ET"),
        b"<< /Deep " + b"[" * depth + b"]" * depth + b" >>",
    ])


# -- Office files ---------------------------------------------------------------------------------

_CONTENT_TYPES_XLSX = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
    b'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
    b'"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
    b'2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    b'<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.'
    b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    b'</Relationships>'
)
_SHEET = (
    b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
    b'2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>'
)


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return out.getvalue()


def xlsx_shared_strings_bomb(strings: int = 5_000_000) -> bytes:
    """An .xlsx under the unpacked-size check whose shared-string table (read whole by openpyxl) holds
    ``strings`` distinct strings."""
    rng = random.Random(7)
    body = b"".join(b"<si><t>%d</t></si>" % rng.randrange(10**9) for _ in range(strings))
    shared = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
              b'spreadsheetml/2006/main" count="%d" uniqueCount="%d">' % (strings, strings) + body + b"</sst>")
    return _zip([
        ("[Content_Types].xml", _CONTENT_TYPES_XLSX), ("_rels/.rels", _RELS), ("xl/workbook.xml", _WORKBOOK),
        ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS), ("xl/worksheets/sheet1.xml", _SHEET),
        ("xl/sharedStrings.xml", shared),
    ])


_CONTENT_TYPES_DOCX = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
    b'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main'
    b'+xml"/></Types>'
)
_DOCX_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def docx_paragraph_bomb(paragraphs: int = 3_000_000) -> bytes:
    """A .docx under the forms parser's zip checks whose document (parsed whole by python-docx)
    holds ``paragraphs`` short paragraphs."""
    rng = random.Random(11)
    body = b"".join(b"<w:p><w:r><w:t>%d</w:t></w:r></w:p>" % rng.randrange(10**6) for _ in range(paragraphs))
    document = (b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                b'wordprocessingml/2006/main"><w:body>' + body + b"</w:body></w:document>")
    return _zip([("[Content_Types].xml", _CONTENT_TYPES_DOCX), ("_rels/.rels", _DOCX_RELS),
                 ("word/document.xml", document)])


def zip_bomb(megabytes: int = 1024) -> bytes:
    """A zip whose one member inflates ``megabytes`` of zeros (ratio ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z, z.open("汇总表.xlsx", "w", force_zip64=True) as f:
        block = bytes(1024 * 1024)
        for _ in range(megabytes):
            f.write(block)
    return out.getvalue()


# -- MIME ------------------------------------------------------------------------------------------

SENDER = b"ylq-ip@example.cn"


def nested_multipart(depth: int = 1000, sender: bytes = SENDER) -> bytes:
    """A district's message whose body is ``depth`` multiparts nested in one another."""
    head = (b"From: " + sender + b"\r\nTo: xzip2019@163.com\r\nSubject: =?utf-8?b?55Sz5oql5p2Q5paZ?=\r\n"
            b"Message-ID: <deep@example.cn>\r\nMIME-Version: 1.0\r\n")
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nhello" + closing


def many_headers(count: int = 20_000, sender: bytes = SENDER) -> bytes:
    """A district's message with ``count`` extra header fields before its From."""
    filler = b"".join(b"X-Filler-%d: value %d\r\n" % (i, i) for i in range(count))
    return (filler + b"From: " + sender + b"\r\nSubject: many headers\r\nMessage-ID: <many@example.cn>\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n")


def message_with(files: list[tuple[str, str, bytes]], sender: bytes = SENDER, subject: bytes = b"hostile") -> bytes:
    """A district's message carrying ``files`` as base64 attachments ((filename, content type, bytes))."""
    import base64

    parts = [b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"]
    for name, ctype, data in files:
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
        parts.append(b'--B\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename="%s"\r\n'
                     b"Content-Transfer-Encoding: base64\r\n\r\n" % (ctype.encode(), name.encode()) + encoded)
    return (b"From: " + sender + b"\r\nTo: xzip2019@163.com\r\nSubject: " + subject + b"\r\nMessage-ID: <"
            + subject + b"@example.cn>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + b"".join(parts) + b"--B--\r\n")
