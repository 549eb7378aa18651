"""What a file is, from its bytes: the name is only a tie-breaker.

``sniff(data, filename)`` returns one of ``pdf``, ``xlsx``, ``xlsm``, ``xls``,
``docx``, ``doc``, ``zip``, ``rar``, ``7z``, ``text``, ``image`` or ``unknown``.
An Office Open XML package that is neither a workbook nor a Word document
(pptx, xlsb, odt …) is ``unknown``, never ``zip``: it is a document, not an
archive to open.
"""

from __future__ import annotations

import io
import zipfile

PDF_WINDOW = 1024  # %PDF- may follow a short junk prefix (some scanners, some mail gateways)
TEXT_WINDOW = 4096

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_OLE_STREAMS = {"xls": ("Workbook", "Book"), "doc": ("WordDocument",)}


def sniff(data: bytes, filename: str = "") -> str:
    """The type of ``data`` found from its content; ``filename`` only breaks OLE2 ties."""
    if not data:
        return "unknown"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    if data.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if data.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if data.startswith(_OLE):
        return _ole_kind(data, filename)
    if data.startswith(_IMAGES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    if b"%PDF-" in data[:PDF_WINDOW]:  # after the magics: a stored archive may hold a PDF near its start
        return "pdf"
    return "text" if _looks_like_text(data[:TEXT_WINDOW]) else "unknown"


def _zip_kind(data: bytes) -> str:
    """xlsx, xlsm or docx by the package's parts; a plain zip otherwise."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except Exception:  # noqa: BLE001 - a damaged zip is still a zip; expanding it reports why
        return "zip"
    if "xl/workbook.xml" in names:
        return "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    if "word/document.xml" in names:
        return "docx"
    if "[Content_Types].xml" in names or "mimetype" in names:
        return "unknown"
    return "zip"


def _ole_kind(data: bytes, filename: str) -> str:
    """xls or doc by the directory's stream names (UTF-16LE); the extension when both or neither."""
    found = [kind for kind, streams in _OLE_STREAMS.items()
             if any(s.encode("utf-16-le") + b"\x00\x00" in data for s in streams)]
    by_name = _extension_kind(filename)
    if len(found) == 1:
        return found[0]
    if by_name in (found or ["xls", "doc"]):
        return by_name
    return found[-1] if found else "unknown"


def _extension_kind(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {"xls": "xls", "et": "xls", "doc": "doc", "wps": "doc"}.get(ext, "")


def _looks_like_text(head: bytes) -> bool:
    """No NUL bytes, decodes as UTF-8 or GB18030 (a cut multibyte tail forgiven), few control chars."""
    if b"\x00" in head:
        return False
    for codec in ("utf-8", "gb18030"):
        try:
            text = head.decode(codec)
        except UnicodeDecodeError as e:
            if e.start < len(head) - 4:
                continue
            text = head[: e.start].decode(codec)
        controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n\f\x1b")
        return controls * 20 <= len(text)
    return False
