"""Which document is this file? One entry point for the intake worker.

``parse_document(data, filename, sniffed)`` looks at the bytes (the sniffed
type, never the file name alone) and hands them to the parser that can read
them: spreadsheets to ``parsers.spreadsheet``, PDF and Word files to
``parsers.forms``. It returns a ``SummaryTable``, an ``ApplicationForm``, an
``OtherDocument`` or ``None`` (a readable file that is none of them), or
raises ``ParseError``.

The notice's other programs share the mailbox (``parsers.programs``): a table
or form whose title (else file name) names another program than ``program``
is an ``other_program`` document, never a table or form of ours. A table
naming no program is ours only when its header has a patent column.

Where the bytes cannot tell, the file name does, and only there:

- a PDF or image named 汇总表 is the district's stamped summary table;
- a scan (no text layer) named 合作协议 / 承诺书 is that document, one naming
  another program is that program's; any other scan raises
  ``ScannedFormError`` as before (the merge takes it for a 申报书 only when
  its name says 申报书 or 申请书);
- an image is read by OCR like a scanned PDF (with the ``ocr`` extra); when
  OCR cannot tell, an image named 合作协议 / 承诺书 is that document.
"""

from __future__ import annotations

from typing import Any

from parsers.programs import AGREEMENT, OUR_PROGRAM, PLEDGE, SUMMARY, attachment_named, named_program, year_in_name
from parsers.types import (
    ApplicationForm,
    DocKind,
    OtherDocument,
    ParsedDocument,
    ParseError,
    ScannedFormError,
    SummaryTable,
)

SPREADSHEETS = frozenset({"xlsx", "xlsm", "xls"})
FORMS = frozenset({"pdf", "docx"})
PICTURES = frozenset({"pdf", "image"})  # what a stamped scan can be
SEALED = frozenset({DocKind.APPLICATION_FORM, DocKind.STAMPED_TABLE})  # checked for a seal
LEGACY_WORD = "doc"
PATENT_COLUMNS = frozenset({"有效专利数", "有效发明专利数", "PCT申请数"})
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_KIND = {AGREEMENT: DocKind.AGREEMENT, PLEDGE: DocKind.PLEDGE}


def encrypted_office(data: bytes) -> bool:
    """An Office file saved with a password: an OLE2 container holding an ``EncryptedPackage`` stream."""
    return data.startswith(_OLE) and _ENCRYPTED_PACKAGE in data


def parse_document(data: bytes, filename: str, sniffed: str, program: str = OUR_PROGRAM) -> ParsedDocument:
    """Parse one attachment by its sniffed type; ``None`` when it is no document this intake knows.

    A form or stamped table (PDF or image), read or scanned, is also checked for a red seal
    (``parsers.seal``): ``seal`` on the document, or on the ``ScannedFormError`` of a scan. A PDF is opened
    once (``parsers.pdfium_pages``) for the form reader and the seal check."""
    pdf = _open_pdf(data) if sniffed == "pdf" else None
    try:
        try:
            doc = _parse(data, filename, sniffed, program, pdf)
        except ScannedFormError as e:
            e.seal = _seal(data, sniffed, pdf)
            raise
        if isinstance(doc, ApplicationForm | OtherDocument) and doc.kind in SEALED:
            doc.seal = _seal(data, sniffed, pdf)
        return doc
    finally:
        if pdf is not None:
            pdf.close()


def _open_pdf(data: bytes) -> Any:
    """The PDF opened by PDFium, ``None`` when it cannot be (the form reader then says why)."""
    from parsers.pdfium_pages import open_document

    return open_document(data)


def _seal(data: bytes, sniffed: str, pdf: Any = None) -> bool | None:
    """Whether a red seal shows (information for staff); ``None``: not checked (a Word file, or no
    numpy)."""
    if sniffed not in PICTURES:
        return None
    from parsers import seal

    return seal.detect(data, sniffed, pdf)


def _parse(data: bytes, filename: str, sniffed: str, program: str, pdf: Any = None) -> ParsedDocument:
    # Imported here: pdfplumber and openpyxl cost a second at start-up that
    # ``intake status`` and ``intake check`` should not pay.
    if sniffed in SPREADSHEETS:
        from parsers.spreadsheet import parse_summary_table

        return _table_of(parse_summary_table(data, filename, sniffed), program)
    if sniffed in PICTURES and attachment_named(filename) == SUMMARY:
        return _by_name(filename, DocKind.STAMPED_TABLE, "盖章汇总表", program, scanned=sniffed == "image")
    if sniffed in FORMS:
        from parsers.forms import parse_form

        try:
            return _form_of(parse_form(data, filename, sniffed, pdf), program)
        except ScannedFormError:
            named = _scan_by_name(filename, program)
            if named is None:
                raise
            return named
    if sniffed == "image":
        return _image(data, filename, program)
    if encrypted_office(data):
        raise ParseError(filename, "文件已加密（设置了打开密码），请取消密码后重新发送")
    if sniffed == LEGACY_WORD:
        raise ParseError(filename, "旧版 Word（.doc）文件无法读取，请另存为 .docx 或 PDF 后重新发送")
    return None


def _image(data: bytes, filename: str, program: str) -> ParsedDocument:
    """A picture: what OCR reads in it (a form, 合作协议, 信用承诺书, 汇总表, another program's file),
    else what its file name says (``None`` when neither knows it)."""
    from parsers.forms import read_scan

    read = read_scan(data, filename, "image")
    if read is not None:
        return _form_of(read, program)
    return _scan_by_name(filename, program, forms=False)


def _table_of(table: SummaryTable | None, program: str) -> ParsedDocument:
    """Ours, or another program's table: named in its title (else file name), or no patent column."""
    if table is None:
        return None
    if table.program and table.program != program:
        return OtherDocument(table.filename, DocKind.OTHER_PROGRAM, "汇总表", table.program, table.year)
    if table.program is None and table.columns and not PATENT_COLUMNS & set(table.columns):
        return OtherDocument(table.filename, DocKind.OTHER_PROGRAM, "汇总表", None, table.year)
    return table


def _form_of(doc: ApplicationForm | OtherDocument | None, program: str) -> ParsedDocument:
    if doc is None or doc.program is None or doc.program == program:
        return doc
    if isinstance(doc, ApplicationForm):
        return OtherDocument(doc.filename, DocKind.OTHER_PROGRAM, "申报书", doc.program, doc.year,
                             doc.fields.get("牵头申报单位"), doc.fields.get("统一社会信用代码"))
    if doc.kind == DocKind.STAMPED_TABLE:
        return OtherDocument(doc.filename, DocKind.OTHER_PROGRAM, doc.recognized_as, doc.program, doc.year)
    return doc


def _scan_by_name(filename: str, program: str, forms: bool = True) -> OtherDocument | None:
    """A scan known by its file name: 合作协议 / 信用承诺书, or a file of another program."""
    label = attachment_named(filename)
    if label in _KIND:
        return _by_name(filename, _KIND[label], label, program, scanned=True)
    named = named_program(filename)
    if forms and named and named != program:
        return OtherDocument(filename, DocKind.OTHER_PROGRAM, "扫描件", named, year_in_name(filename), scanned=True)
    return None


def _by_name(filename: str, kind: DocKind, label: str, program: str, *, scanned: bool) -> OtherDocument:
    named = named_program(filename)
    if named and named != program:
        return OtherDocument(filename, DocKind.OTHER_PROGRAM, label, named, year_in_name(filename), scanned=scanned)
    return OtherDocument(filename, kind, label, named, year_in_name(filename), scanned=scanned)
