"""parse_mail: golden messages (tests/data/mail, built by make_mail_data.py) and never raising."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import mail
from parsers.archives import Limits
from parsers.mail import codec_for, decode_bytes, decode_text, is_cloud_link, parse_mail
from parsers.types import MailParts

DATA = Path(__file__).parent / "data" / "mail"
GOLDEN = sorted(DATA.glob("*.eml"))


def summary(parts: MailParts) -> dict:
    """What the expected JSON records of a parse."""
    return {
        "subject": parts.subject,
        "from_addr": parts.from_addr,
        "attachments": [
            {"filename": a.filename, "sniffed": a.sniffed, "container": a.container}
            for a in parts.attachments
        ],
        "problems": [p.code for p in parts.problems],
        "auto": bool(parts.auto_reasons),
        "cloud_links": list(parts.cloud_links),
    }


def test_golden_data_present():
    """The generated messages are committed: every .eml has its expected JSON."""
    assert len(GOLDEN) >= 40
    assert all(p.with_suffix(".expected.json").exists() for p in GOLDEN)


@pytest.mark.parametrize("eml", GOLDEN, ids=lambda p: p.stem)
def test_golden(eml: Path):
    """Each golden message parses to exactly its expected names, types, problems, auto flag and links."""
    expected = json.loads(eml.with_suffix(".expected.json").read_text(encoding="utf-8"))
    assert summary(parse_mail(eml.read_bytes())) == expected


def test_gbk_bytes_under_gb2312_label_keep_every_character():
    """A GB2312 label carrying GBK-only 镕 decodes it instead of dropping it."""
    word = "=?GB2312?B?" + __import__("base64").b64encode("镕".encode("gbk")).decode() + "?="
    assert decode_text(word) == "镕"


@pytest.mark.parametrize("label", ["gb2312", "GBK", "cp936", "x-gbk", "GB_2312-80", "euc-cn", "gb18030"])
def test_gb_labels_widen_to_gb18030(label: str):
    """Every GB label is read with the GB18030 codec, the superset."""
    assert codec_for(label) == "gb18030"


def test_unknown_charset_falls_back_to_utf8_then_gb18030():
    """Bytes under an unknown label are tried as UTF-8, then GB18030."""
    assert decode_bytes("申报".encode("gbk"), "x-unknown") == "申报"
    assert decode_bytes("申报".encode(), "x-unknown") == "申报"


def test_undecodable_bytes_are_replaced_not_dropped():
    """A declared charset that cannot hold the bytes leaves U+FFFD where they were."""
    assert decode_bytes(b"ab\x8acd", "iso-2022-jp") == "ab\ufffdcd"


def test_encoded_word_next_to_plain_text_keeps_the_text():
    """Plain text around an encoded-word (as some clients put in file names) is kept."""
    assert decode_text("=?utf-8?Q?Contract_?=25 04 2020.docx") == "Contract 25 04 2020.docx"


def test_sender_address_is_bare_and_lower_case():
    """From's address is lower-cased without display name; its RFC 2047 name goes to from_name."""
    raw = b"From: =?utf-8?B?5LqR6b6Z5Yy6?= <YLQ-IP@Example.CN>\r\nMessage-ID:\r\n <a@b>\r\n\r\nhi"
    parts = parse_mail(raw)
    assert (parts.from_addr, parts.from_name, parts.message_id) == ("ylq-ip@example.cn", "云龙区", "<a@b>")


def test_unparseable_sender_is_empty():
    """A From without an address gives from_addr ""."""
    assert parse_mail(b"From: nobody\r\n\r\nhi").from_addr == ""


def test_auto_reason_names_the_header():
    """An automatic-mail reason is a short English string naming the sign."""
    parts = parse_mail(b"From: a@b.cn\r\nAuto-Submitted: auto-replied\r\n\r\nhi")
    assert parts.auto_reasons == ("Auto-Submitted: auto-replied",)


def test_oversized_message_keeps_headers_and_reports():
    """A message over the size bound yields its headers and one problem, no attachments."""
    raw = b"From: A@B.cn\r\nSubject: big\r\n\r\n" + b"x" * (mail.MAX_MESSAGE_BYTES + 1)
    parts = parse_mail(raw)
    assert (parts.from_addr, parts.subject, parts.attachments) == ("a@b.cn", "big", ())
    assert [p.code for p in parts.problems] == ["UNREADABLE_FILE"]


def test_too_many_parts_stops_with_a_problem():
    """A message with more MIME parts than the bound keeps no attachments and says why."""
    body = b'--B\r\nContent-Type: application/pdf; name="a.pdf"\r\n\r\n%PDF-1\r\n' * 1001
    raw = b'From: a@b.cn\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n' + body + b"--B--\r\n"
    parts = parse_mail(raw)
    assert parts.attachments == () and [p.code for p in parts.problems] == ["UNREADABLE_FILE"]


def test_archives_in_one_message_share_one_size_budget():
    """The second archive of a message is judged on what the first left of the size limit."""
    raw = (DATA / "zip_gbk_names.eml").read_bytes()
    one = parse_mail(raw, Limits(max_total=10_000))
    assert len(one.attachments) == 3 and not one.problems
    assert [p.code for p in parse_mail(raw, Limits(max_total=100)).problems] == ["UNREADABLE_FILE"]


@pytest.mark.parametrize("url", [
    "https://mail.163.com/", "https://www.163.com/news", "https://mail.qq.com/cgi-bin/frame_html",
    "https://example.com/ftn/download", "http://[::1", "https://evil.example/large-attachment-download/x",
])
def test_plain_links_are_not_cloud_attachments(url: str):
    """Links to 163/QQ that are not large-attachment downloads (or are malformed) do not count."""
    assert not is_cloud_link(url)


@pytest.mark.parametrize("url", [
    "https://dashi.163.com/html/cloud-attachment-download/index.html?key=abc",
    "http://fs.163.com/fs/display/?p=X-NETEASE-HUGE-ATTACHMENT&file=abc",
    "https://exmail.qq.com/cgi-bin/ftnExs_download?k=abc",
])
def test_other_cloud_pages_count(url: str):
    """NetEase Dashi, the old fs.163.com pages and Tencent Exmail downloads are cloud attachments."""
    assert is_cloud_link(url)


def _mutate(raw: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(raw)
    for pos, cut, insert in edits:
        at = pos % (len(data) + 1)
        data[at : at + cut] = insert
    return bytes(data)


_JUNK = st.sampled_from([b"", b"\x00", b"\xff\xfe", b"=?gbk?B?", b"?=", b"\r\n", b"--BOUND", b"\r\n\r\n",
                         b'"', b";", b"filename*0*=", b"%", b"PK\x03\x04",
                         b"Content-Type: message/rfc822\r\n"])
_EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 64), _JUNK | st.binary(max_size=16)),
                  min_size=1, max_size=6)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(GOLDEN) - 1), edits=_EDITS)
def test_mutated_messages_never_raise(index: int, edits: list[tuple[int, int, bytes]]):
    """A damaged message (cut, spliced, junk-inserted) is parsed without reaching the last-resort handler."""
    raw = _mutate(GOLDEN[index].read_bytes(), edits)
    parts = parse_mail(raw)
    assert mail.UNPARSEABLE not in [p.reason for p in parts.problems]


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise(raw: bytes):
    """Arbitrary bytes are parsed without reaching the last-resort handler."""
    assert mail.UNPARSEABLE not in [p.reason for p in parse_mail(raw).problems]


@pytest.mark.parametrize(("name", "sniffed", "ctype", "expected"), [
    ("../../etc/passwd", "text", "text/plain", "passwd"),
    ("C:\\x\\y.pdf", "pdf", "", "y.pdf"),
    ("申报\x00书\u202e.pdf", "pdf", "", "申报书.pdf"),
    ("..", "pdf", "application/pdf", "附件3.pdf"),
    (None, "unknown", "application/octet-stream", "附件3.bin"),
    ("", "", "", "附件3"),
])
def test_display_names_are_safe_and_never_empty(name, sniffed, ctype, expected):
    """Directories and control characters are stripped; an empty result becomes 附件N with an extension."""
    assert mail.display_name(name, 3, sniffed, ctype) == expected
