"""Archives sent as attachments, opened one level deep (spec section 2).

``expand(att)`` returns the archive's files as attachments (``container`` set
to the archive's name) and the problems found. A zip inside a zip is passed on
as a member sniffed ``zip``: it is not opened.

The limits (members, total uncompressed size, compression ratio) are judged
from the archive's directory BEFORE any member is decompressed; beyond them
the whole archive is one ``UNREADABLE_FILE`` problem and nothing is extracted.
Members are then read through a bounded reader, so an archive whose directory
lies about sizes still cannot exceed the limits. A tiny member with a huge
ratio (a 4 KB file of spaces) is no bomb: ratios count only from
``Limits.ratio_floor`` bytes of output.

Zip member names without the UTF-8 flag are decoded as UTF-8 when valid, else
GB18030 (Chinese Windows writes GBK), else left as zipfile's cp437.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

from parsers.sniff import sniff
from parsers.types import Attachment, Problem

UNREADABLE = "UNREADABLE_FILE"
MB = 1024 * 1024
CHUNK = 64 * 1024

NO_RAR_TOOL = "服务器无法解压RAR文件，请改用ZIP格式或直接附上文件"
NO_7Z_LIBRARY = "服务器无法解压7Z文件，请改用ZIP格式或直接附上文件"
LYING_SIZE = "压缩包内文件的实际大小与记录不符，疑似恶意文件，已拒收"
ENCRYPTED = "压缩包设有密码，无法读取，请发送未加密的文件"
CORRUPT = "压缩包已损坏，无法打开，请重新压缩后发送"


@dataclass(frozen=True)
class Limits:
    """The spec's archive limits; tests pass small numbers."""

    max_members: int = 500
    max_total: int = 200 * MB
    max_ratio: float = 100.0
    ratio_floor: int = 1 * MB  # ratios of smaller outputs are not judged


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Entry:
    """One file in an archive's directory, as the directory declares it."""

    name: str
    size: int
    packed: int | None  # None: not known per member (solid 7z)
    encrypted: bool
    key: object  # what the archive's reader needs to open it


class ArchiveError(Exception):
    """The archive cannot be expanded; ``reason`` is plain Chinese."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Reader:
    """An opened archive: its file entries, a way to open one, its packed size when known."""

    entries: list[Entry]
    open_member: Callable[[Entry], IO[bytes]]
    packed_total: int


def expand(
    att: Attachment, limits: Limits = DEFAULT_LIMITS, on_open: Callable[[str], None] | None = None
) -> tuple[list[Attachment], list[Problem]]:
    """The members of a zip, rar or 7z attachment and the problems met; ([], []) for other files.

    ``on_open`` is called with each member's name just before its data is read (tests count it).
    """
    opener = _OPENERS.get(att.sniffed)
    if opener is None:
        return [], []
    try:
        with opener(att.data) as reader:
            check_limits(reader.entries, reader.packed_total, limits)
            return _extract(att.filename, reader, limits, on_open or _ignore)
    except ArchiveError as e:
        return [], [Problem(UNREADABLE, att.filename, e.reason)]


def check_limits(entries: list[Entry], packed_total: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise ``ArchiveError`` when the directory alone shows the archive is beyond the limits."""
    if len(entries) > limits.max_members:
        raise ArchiveError(f"压缩包内文件超过{limits.max_members}个，已拒收，请分开发送或直接附上文件")
    total = sum(e.size for e in entries)
    if total > limits.max_total:
        raise ArchiveError(f"压缩包解压后超过{_mb(limits.max_total)}，已拒收，请分开发送")
    pairs = [(e.size, e.packed) for e in entries if e.packed is not None] + [(total, packed_total)]
    if any(size >= limits.ratio_floor and size > limits.max_ratio * max(packed, 1) for size, packed in pairs):
        raise ArchiveError(f"压缩包压缩比异常（超过{limits.max_ratio:g}:1），疑似恶意文件，已拒收")


def _extract(
    archive: str, reader: _Reader, limits: Limits, on_open: Callable[[str], None]
) -> tuple[list[Attachment], list[Problem]]:
    """Read every member within what is left of the size budget; encrypted members become problems."""
    members: list[Attachment] = []
    problems: list[Problem] = []
    budget = limits.max_total
    for entry in reader.entries:
        if entry.encrypted:
            reason = f"压缩包“{archive}”中的此文件设有密码，无法读取，请发送未加密的文件"
            problems.append(Problem(UNREADABLE, entry.name, reason))
            continue
        on_open(entry.name)
        data = _read_member(reader, entry, min(budget, _bound(entry, limits)))
        budget -= len(data)
        sniffed = sniff(data, entry.name)
        members.append(Attachment(entry.name, data, "application/octet-stream", sniffed, archive))
    return members, problems


def _ignore(_name: str) -> None:
    pass


def _bound(entry: Entry, limits: Limits) -> int:
    """The most bytes this member may produce: its declared size (a bomb lies upwards)."""
    if entry.packed is not None and entry.size >= limits.ratio_floor:
        return min(entry.size, int(limits.max_ratio * max(entry.packed, 1)))
    return max(entry.size, 0)


def _read_member(reader: _Reader, entry: Entry, cap: int) -> bytes:
    """Read at most ``cap`` bytes; one byte more means the directory lied: reject the archive."""
    try:
        with reader.open_member(entry) as stream:
            data = read_bounded(stream, cap)
    except ArchiveError:
        raise
    except Exception as e:  # every library's error means the same to a district office
        raise ArchiveError(_read_failure(e)) from e
    return data


def read_bounded(stream: IO[bytes], cap: int) -> bytes:
    """All of ``stream`` if it holds at most ``cap`` bytes, else ``ArchiveError``."""
    buf = io.BytesIO()
    while chunk := stream.read(min(CHUNK, cap + 1 - buf.tell())):
        buf.write(chunk)
        if buf.tell() > cap:
            raise ArchiveError(LYING_SIZE)
    return buf.getvalue()


def _read_failure(e: Exception) -> str:
    if _is_missing_tool(e):
        return NO_RAR_TOOL
    if "password" in str(e).lower() or "encrypt" in str(e).lower():
        return ENCRYPTED
    return "压缩包已损坏，无法解压，请重新压缩后发送"


def _mb(n: int) -> str:
    return f"{n // MB} MB" if n >= MB else f"{n} 字节"


# -- zip ------------------------------------------------------------------


class _Opened:
    """Context manager closing the library object behind a ``_Reader``."""

    def __init__(self, handle: object, reader: _Reader) -> None:
        self.handle, self.reader = handle, reader

    def __enter__(self) -> _Reader:
        return self.reader

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.handle, "close", None)
        if close is not None:
            close()


def _open_zip(data: bytes) -> _Opened:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except Exception as e:  # BadZipFile, struct.error, bad offsets, huge counts …
        raise ArchiveError(CORRUPT) from e
    entries = [Entry(zip_member_name(i), i.file_size, i.compress_size, bool(i.flag_bits & 1), i)
               for i in infos]
    reader = _Reader(entries, lambda e: zf.open(e.key), len(data))  # type: ignore[arg-type]
    return _Opened(zf, reader)


def zip_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as written: UTF-8 flag, Info-ZIP unicode path, else a UTF-8/GB18030 guess."""
    if info.flag_bits & 0x800:
        return info.filename
    unicode_path = _unicode_path_extra(info.extra)
    if unicode_path:
        return unicode_path
    raw = info.filename.encode("cp437")
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unicode_path_extra(extra: bytes) -> str | None:
    """The Info-ZIP Unicode Path extra field (0x7075), which WinRAR and others write."""
    for tag, body in _extra_fields(extra):
        if tag == 0x7075 and len(body) > 5 and body[0] == 1:
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _extra_fields(extra: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        yield tag, extra[pos + 4 : pos + 4 + size]
        pos += 4 + size


# -- rar and 7z -------------------------------------------------------------


def _open_rar(data: bytes) -> _Opened:
    import rarfile

    try:
        rf = rarfile.RarFile(io.BytesIO(data))
        infos = [i for i in rf.infolist() if not i.is_dir()]
    except rarfile.NeedFirstVolume as e:
        raise ArchiveError("分卷压缩包无法单独解压，请改用单个ZIP文件发送") from e
    except rarfile.PasswordRequired as e:
        raise ArchiveError(ENCRYPTED) from e
    except Exception as e:  # whatever the library raises on a damaged archive
        raise ArchiveError(CORRUPT) from e
    entries = [Entry(i.filename, i.file_size, i.compress_size, i.needs_password(), i) for i in infos]
    return _Opened(rf, _Reader(entries, lambda e: rf.open(e.key), len(data)))  # type: ignore[arg-type]


def _open_7z(data: bytes) -> _Opened:
    try:
        import py7zr
    except ImportError as e:
        raise ArchiveError(NO_7Z_LIBRARY) from e
    try:
        sz = py7zr.SevenZipFile(io.BytesIO(data))
        encrypted = sz.needs_password()
        infos = [i for i in sz.list() if not i.is_directory]
    except Exception as e:  # whatever the library raises on a damaged archive
        if "password" in str(e).lower():
            raise ArchiveError(ENCRYPTED) from e
        raise ArchiveError(CORRUPT) from e
    if encrypted:
        raise ArchiveError(ENCRYPTED)
    # 7z compresses members together (solid): the ratio is judged on the whole archive.
    entries = [Entry(i.filename, i.uncompressed, None, False, i.filename) for i in infos]
    return _Opened(sz, _Reader(entries, _SevenZipMembers(sz, entries).open, len(data)))


class _SevenZipMembers:
    """py7zr decompresses in one pass into our writers, each capped at its member's declared size."""

    def __init__(self, sz: Any, entries: list[Entry]) -> None:
        self.sz, self.caps = sz, {e.key: e.size for e in entries}
        self.files: dict[str, _CappedBuffer] | None = None

    def open(self, entry: Entry) -> IO[bytes]:
        if self.files is None:
            self.files = {}
            self.sz.extractall(factory=self)
        written = self.files.get(str(entry.key))
        return io.BytesIO(written.buf.getvalue() if written else b"")

    def create(self, filename: str) -> _CappedBuffer:
        """py7zr's WriterFactory protocol: one writer per member."""
        assert self.files is not None
        self.files[filename] = _CappedBuffer(self.caps.get(filename, 0))
        return self.files[filename]


class _CappedBuffer:
    """py7zr's Py7zIO protocol over a BytesIO that refuses bytes beyond the declared size."""

    def __init__(self, cap: int) -> None:
        self.buf, self.cap = io.BytesIO(), cap

    def write(self, s: bytes | bytearray) -> int:
        if self.buf.tell() + len(s) > self.cap:
            raise ArchiveError(LYING_SIZE)
        return self.buf.write(s)

    def read(self, size: int | None = None) -> bytes:
        return self.buf.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.buf.seek(offset, whence)

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self.buf.getbuffer().nbytes

    def close(self) -> None:
        pass


def _is_missing_tool(e: BaseException) -> bool:
    try:
        import rarfile
    except ImportError:
        return True
    return isinstance(e, rarfile.RarCannotExec)


def with_budget(limits: Limits, spent: int) -> Limits:
    """The limits left for the next archive of a message that already expanded ``spent`` bytes."""
    return replace(limits, max_total=max(limits.max_total - spent, 0))


_OPENERS: dict[str, Callable[[bytes], _Opened]] = {"zip": _open_zip, "rar": _open_rar, "7z": _open_7z}
