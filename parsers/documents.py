"""Which document is this file? One entry point for the intake worker.

``parse_document(data, filename, sniffed)`` looks at the bytes (the sniffed
type, never the file name alone) and hands them to the parser that can read
them: spreadsheets to ``parsers.spreadsheet``, PDF and Word files to
``parsers.forms``. It returns a ``SummaryTable``, an ``ApplicationForm`` or
``None`` (a readable file that is neither), or raises ``ParseError``.
A PDF form, read or scanned, is also checked for a red seal (``parsers.seal``;
``seal`` on the form or on the ``ScannedFormError``).
"""

from __future__ import annotations

from parsers.types import ParsedDocument, ParseError, ScannedFormError

SPREADSHEETS = frozenset({"xlsx", "xlsm", "xls"})
FORMS = frozenset({"pdf", "docx"})
LEGACY_WORD = "doc"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def encrypted_office(data: bytes) -> bool:
    """An Office file saved with a password: an OLE2 container holding an ``EncryptedPackage`` stream."""
    return data.startswith(_OLE) and _ENCRYPTED_PACKAGE in data


def parse_document(data: bytes, filename: str, sniffed: str) -> ParsedDocument:
    """Parse one attachment by its sniffed type; ``None`` when it is no document of ours."""
    # Imported here: pdfplumber and openpyxl cost a second at start-up that
    # ``intake status`` and ``intake check`` should not pay.
    if sniffed in SPREADSHEETS:
        from parsers.spreadsheet import parse_summary_table

        return parse_summary_table(data, filename, sniffed)
    if sniffed in FORMS:
        from parsers.forms import parse_form

        try:
            form = parse_form(data, filename, sniffed)
        except ScannedFormError as e:
            e.seal = _seal(data, sniffed)
            raise
        if form is not None:
            form.seal = _seal(data, sniffed)
        return form
    if encrypted_office(data):
        raise ParseError(filename, "文件已加密（设置了打开密码），请取消密码后重新发送")
    if sniffed == LEGACY_WORD:
        raise ParseError(filename, "旧版 Word（.doc）文件无法读取，请另存为 .docx 或 PDF 后重新发送")
    return None


def _seal(data: bytes, sniffed: str) -> bool | None:
    """A red seal on a PDF (information for staff, ``parsers.seal``); ``None``: not checked (Word files,
    or no ``ocr`` extra)."""
    if sniffed != "pdf":
        return None
    from parsers import seal

    return seal.detect(data, sniffed)
