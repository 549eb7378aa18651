"""sniff: file types from content, the name only breaking OLE2 ties."""

from __future__ import annotations

import pytest

from parsers.sniff import sniff
from tests.make_mail_data import PDF, minimal_xlsx, rar4_stored, seven_zip, zip_of

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504


def ole_with(*streams: str) -> bytes:
    """An OLE2 header followed by directory entry names as UTF-16LE, NUL-terminated."""
    return OLE + b"".join(s.encode("utf-16-le") + b"\0\0" + b"\0" * 40 for s in streams)


@pytest.mark.parametrize(("data", "name", "expected"), [
    (PDF, "a.xlsx", "pdf"),
    (b"\r\n<junk from a scanner>\r\n" + PDF, "a", "pdf"),
    (minimal_xlsx(), "a.pdf", "xlsx"),
    (zip_of([("[Content_Types].xml", b""), ("xl/workbook.xml", b""), ("xl/vbaProject.bin", b"")]), "",
     "xlsm"),
    (zip_of([("[Content_Types].xml", b""), ("word/document.xml", b"")]), "a.xlsx", "docx"),
    (zip_of([("申报书.pdf", PDF)]), "a.docx", "zip"),
    (zip_of([("[Content_Types].xml", b""), ("ppt/presentation.xml", b"")]), "a.zip", "unknown"),
    (zip_of([("mimetype", b"application/vnd.oasis.opendocument.text")]), "a.odt", "unknown"),
    (b"PK\x03\x04 truncated", "a.xlsx", "zip"),
    (rar4_stored(b"a.pdf", PDF), "a.pdf", "rar"),
    (seven_zip([("a.pdf", PDF)]), "a.pdf", "7z"),
    (ole_with("Root Entry", "Workbook"), "a.doc", "xls"),
    (ole_with("Root Entry", "WordDocument"), "a.xls", "doc"),
    (ole_with("Root Entry", "Book"), "", "xls"),
    (ole_with("Root Entry", "WordDocument", "Workbook"), "嵌入.xls", "xls"),
    (ole_with("Root Entry", "WordDocument", "Workbook"), "", "doc"),
    (ole_with("Root Entry"), "旧表.xls", "xls"),
    (ole_with("Root Entry"), "旧表.et", "xls"),
    (ole_with("Root Entry"), "a.msg", "unknown"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "a.pdf", "image"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 20, "", "image"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "", "image"),
    ("项目名称,申报单位\n".encode(), "a.csv", "text"),
    ("项目名称,申报单位\n".encode("gbk"), "a.csv", "text"),
    (b"\0\1\2\3binary" * 10, "a.pdf", "unknown"),
    (b"", "a.pdf", "unknown"),
])
def test_sniff(data: bytes, name: str, expected: str):
    """Each content kind is recognized by its bytes whatever its name claims."""
    assert sniff(data, name) == expected


def test_pdf_marker_beyond_the_window_is_not_a_pdf():
    """%PDF- is looked for only in the first 1024 bytes."""
    assert sniff(b"\x01" * 2000 + PDF, "a.pdf") == "unknown"


def test_stored_archive_holding_a_pdf_is_the_archive():
    """A stored zip or rar whose member is a PDF near the start is still the archive."""
    assert sniff(zip_of([("a.pdf", PDF)], 0), "a.zip") == "zip"
    assert sniff(rar4_stored(b"a.pdf", PDF), "a.rar") == "rar"


def test_text_cut_mid_character_is_text():
    """A text whose sniffing window ends inside a multibyte character is still text."""
    data = ("申" * 2000).encode()
    assert sniff(data[:4097], "") == "text"
