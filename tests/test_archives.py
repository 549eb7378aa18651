"""expand: archives opened one level deep, limits judged before anything is extracted."""

from __future__ import annotations

import io
import zipfile

import pytest

from parsers import archives
from parsers.archives import Limits, expand, read_bounded, zip_member_name
from parsers.types import Attachment
from tests.make_mail_data import (
    PDF,
    minimal_xlsx,
    rar4_stored,
    seven_zip,
    zip_declaring,
    zip_encrypted_flag,
    zip_gbk_names,
    zip_of,
)

SMALL = Limits(max_members=3, max_total=1000, max_ratio=10, ratio_floor=0)


def archive(data: bytes, sniffed: str = "zip", name: str = "材料.zip") -> Attachment:
    return Attachment(name, data, "application/zip", sniffed)


def expand_counting(att: Attachment, limits: Limits = archives.DEFAULT_LIMITS) -> tuple[list, list, list]:
    """expand, recording every member whose data was read."""
    opened: list[str] = []
    members, problems = expand(att, limits, on_open=opened.append)
    return members, problems, opened


def incompressible(n: int) -> bytes:
    return bytes((i * 7919 + i // 3) % 251 for i in range(n))


def test_members_listed_with_container_and_sniffed_type():
    """A zip's files come back named as written, sniffed from content, container = the archive."""
    members, problems = expand(archive(zip_of([("申报书.pdf", PDF), ("表.dat", minimal_xlsx())])))
    assert [(m.filename, m.sniffed, m.container) for m in members] == [
        ("申报书.pdf", "pdf", "材料.zip"), ("表.dat", "xlsx", "材料.zip")]
    assert problems == []


def test_gbk_names_without_utf8_flag():
    """Member names in GBK without the UTF-8 flag are decoded as GB18030, not cp437 mojibake."""
    members, _ = expand(archive(zip_gbk_names([("云龙区申报书.pdf", PDF)])))
    assert [m.filename for m in members] == ["云龙区申报书.pdf"]


def test_undecodable_name_stays_cp437():
    """A name valid neither as UTF-8 nor GB18030 keeps zipfile's cp437 reading."""
    info = zipfile.ZipInfo("Çabc.txt")  # byte 0x80 in cp437
    assert zip_member_name(info) == "Çabc.txt"


def test_info_zip_unicode_path_extra_field_wins():
    """The Info-ZIP Unicode Path extra field (0x7075) gives the UTF-8 name."""
    info = zipfile.ZipInfo("????.pdf")
    name = "申报书.pdf".encode()
    info.extra = b"\x75\x70" + (5 + len(name)).to_bytes(2, "little") + b"\x01" + b"\0\0\0\0" + name
    assert zip_member_name(info) == "申报书.pdf"


def test_directories_are_skipped():
    """Directory entries are not members."""
    members, _ = expand(archive(zip_of([("目录/", b""), ("目录/a.pdf", PDF)])))
    assert [m.filename for m in members] == ["目录/a.pdf"]


def test_nested_zip_is_not_opened():
    """A zip inside the zip is passed on as a member sniffed zip, its contents unread."""
    members, _ = expand(archive(zip_of([("inner.zip", zip_of([("a.pdf", PDF)]))])))
    assert [(m.filename, m.sniffed) for m in members] == [("inner.zip", "zip")]


def test_too_many_members_rejected_unread():
    """More members than the limit rejects the archive before any member is read."""
    att = archive(zip_of([(f"{i}.txt", b"x") for i in range(4)], zipfile.ZIP_STORED))
    members, problems, opened = expand_counting(att, SMALL)
    assert (members, opened) == ([], [])
    assert [(p.code, p.filename) for p in problems] == [("UNREADABLE_FILE", "材料.zip")]
    assert "超过3个" in problems[0].reason


def test_exactly_the_member_limit_is_accepted():
    """As many members as the limit is allowed (the limit is "more than")."""
    att = archive(zip_of([(f"{i}.txt", b"x") for i in range(3)], zipfile.ZIP_STORED))
    members, problems = expand(att, SMALL)
    assert len(members) == 3 and problems == []


def test_total_size_over_limit_rejected_unread():
    """Declared uncompressed total over the limit rejects the archive before any member is read."""
    files = [("a.bin", incompressible(600)), ("b.bin", incompressible(600))]
    att = archive(zip_of(files, zipfile.ZIP_STORED))
    members, problems, opened = expand_counting(att, SMALL)
    assert (members, opened) == ([], [])
    assert "解压后超过" in problems[0].reason


def test_ratio_over_limit_rejected_unread():
    """A member compressing more than the ratio limit rejects the archive before any member is read."""
    att = archive(zip_of([("zeros.txt", b"\0" * 900)]))
    members, problems, opened = expand_counting(att, SMALL)
    assert (members, opened) == ([], [])
    assert "压缩比" in problems[0].reason


def test_small_outputs_are_not_judged_by_ratio():
    """Below the ratio floor a highly compressible file (a page of spaces) is accepted."""
    members, problems = expand(archive(zip_of([("blank.txt", b" " * 4096)])))
    assert len(members) == 1 and problems == []


def test_default_size_limit_judged_from_directory_alone():
    """210 MB declared in stored members is refused by the spec's limits; the absent data is never read."""
    members, problems, opened = expand_counting(archive(zip_declaring([70 * 1024 * 1024] * 3)))
    assert (members, opened) == ([], [])
    assert "200 MB" in problems[0].reason


def test_default_member_limit():
    """501 members are refused by the spec's limits without reading one."""
    att = archive(zip_of([(f"{i}.txt", b"x") for i in range(501)], zipfile.ZIP_STORED))
    assert expand_counting(att)[2] == [] and "500" in expand(att)[1][0].reason


def test_default_ratio_limit():
    """2 MB of zeros (about 1000:1) is refused by the spec's limits without reading it."""
    members, problems, opened = expand_counting(archive(zip_of([("z.pdf", b"\0" * (2 * 1024 * 1024))])))
    assert (members, opened) == ([], [])
    assert "100:1" in problems[0].reason


def test_bounded_reader_refuses_more_than_the_cap():
    """A stream yielding more than its cap is refused (a directory that lied about the size)."""
    with pytest.raises(archives.ArchiveError):
        read_bounded(io.BytesIO(b"x" * 101), 100)
    assert read_bounded(io.BytesIO(b"x" * 100), 100) == b"x" * 100


def test_member_larger_than_declared_is_not_accepted():
    """A member whose directory understates its size never yields more than declared."""
    data = bytearray(zip_of([("a.txt", b"y" * 500)], zipfile.ZIP_STORED))
    for sig, at in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        pos = data.find(sig)
        data[pos + at : pos + at + 4] = (10).to_bytes(4, "little")
    members, problems = expand(archive(bytes(data)))
    assert members == [] and [p.code for p in problems] == ["UNREADABLE_FILE"]


def test_encrypted_member_is_a_problem_others_extracted():
    """An encrypted member becomes a problem under its own name; the other members are read."""
    att = archive(zip_encrypted_flag([("密.pdf", PDF), ("公开.pdf", PDF)], "密.pdf"))
    members, problems = expand(att)
    assert [m.filename for m in members] == ["公开.pdf"]
    assert [(p.code, p.filename) for p in problems] == [("UNREADABLE_FILE", "密.pdf")]
    assert "密码" in problems[0].reason


def test_corrupt_zip_is_unreadable():
    """A truncated zip is one UNREADABLE_FILE problem naming the archive."""
    _, problems = expand(archive(zip_of([("a.pdf", PDF)])[:40]))
    assert [(p.code, p.filename) for p in problems] == [("UNREADABLE_FILE", "材料.zip")]


def test_non_archives_are_left_alone():
    """A PDF is not expanded."""
    assert expand(Attachment("a.pdf", PDF, "application/pdf", "pdf")) == ([], [])


def test_seven_zip_members():
    """A 7z (py7zr) yields its members with names and sniffed types."""
    members, problems = expand(archive(seven_zip([("申报书.pdf", PDF)]), "7z", "材料.7z"))
    assert [(m.filename, m.sniffed, m.container) for m in members] == [("申报书.pdf", "pdf", "材料.7z")]
    assert problems == []


def test_seven_zip_limits_judged_before_reading():
    """A 7z beyond the member limit is refused without reading a member."""
    att = archive(seven_zip([(f"{i}.txt", b"x") for i in range(4)]), "7z", "材料.7z")
    members, problems, opened = expand_counting(att, SMALL)
    assert (members, opened) == ([], []) and "超过3个" in problems[0].reason


def test_seven_zip_member_beyond_its_declared_size_is_refused():
    """py7zr's output for a member is cut off at the size its header declared (a lying header)."""
    data = seven_zip([("a.pdf", PDF * 100)])
    with archives._open_7z(data) as reader:
        lying = archives.Entry("a.pdf", 50, None, False, "a.pdf")
        members = archives._SevenZipMembers(reader.open_member.__self__.sz, [lying])
        with pytest.raises(archives.ArchiveError):
            members.open(lying)


def test_encrypted_seven_zip_is_unreadable():
    """A password-protected 7z is one UNREADABLE_FILE problem about the password."""
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password="secret") as sz:
        sz.writestr(PDF, "a.pdf")
    _, problems = expand(archive(buf.getvalue(), "7z", "材料.7z"))
    assert len(problems) == 1 and "密码" in problems[0].reason


def test_stored_rar_member_read():
    """A RAR whose member is stored is read (rarfile needs no tool for stored data)."""
    members, problems = expand(archive(rar4_stored(b"form.pdf", PDF), "rar", "材料.rar"))
    assert [(m.filename, m.sniffed) for m in members] == [("form.pdf", "pdf")] and problems == []


@pytest.fixture
def no_rar_tools(monkeypatch):
    """rarfile configured as on a machine without unrar, unar, bsdtar or 7z."""
    import rarfile

    for name in ("UNRAR_TOOL", "UNAR_TOOL", "BSDTAR_TOOL", "SEVENZIP_TOOL", "SEVENZIP2_TOOL"):
        if hasattr(rarfile, name):
            monkeypatch.setattr(rarfile, name, "/nonexistent/tool")
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)
    yield
    monkeypatch.undo()
    rarfile.CURRENT_SETUP = None


def test_compressed_rar_without_tool_says_so(no_rar_tools):
    """A compressed RAR on a machine without an unrar tool is refused with the ask-for-ZIP reason."""
    raw = rar4_stored(b"form.pdf", b"not really compressed data", method=0x33)
    _, problems = expand(archive(raw, "rar", "材料.rar"))
    assert [p.reason for p in problems] == [archives.NO_RAR_TOOL]
