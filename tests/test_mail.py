"""parse_mail: golden messages (tests/data/mail, built by make_mail_data.py) and never raising."""

from __future__ import annotations

import json
from pathlib import Path

import hostile
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


# -- automatic mail: spec section 2, one case per header, both directions ------------------------

AUTO_SIGNS = [
    "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated", "Precedence: bulk", "Precedence: junk",
    "Precedence: list", "Precedence: BULK", "X-Autoreply: yes", "X-Autorespond: on vacation",
    "List-Id: <news.example.cn>", "Return-Path: <>",
]
NOT_SIGNS = [
    "Auto-Submitted: no", "Auto-Submitted: No (a person)", "Precedence: normal", "Precedence: first-class",
    "List-Unsubscribe: <mailto:leave@example.cn>", "List-Post: <mailto:list@example.cn>",
    "List-Help: <https://example.cn/help>", "List-Archive: <https://example.cn/archive>",
    "X-Auto-Response-Suppress: All", "X-Auto-Response-Suppress: DR, OOF, AutoReply",
    "Return-Path: <ylq-ip@example.cn>",
]


@pytest.mark.parametrize("header", AUTO_SIGNS)
def test_each_spec_sign_makes_mail_automatic(header: str):
    """Each header of spec section 2 alone makes a district's message automatic, the reason naming it."""
    parts = parse_mail(f"From: ylq-ip@example.cn\r\n{header}\r\nSubject: s\r\n\r\nhi".encode())
    assert len(parts.auto_reasons) == 1 and parts.auto_reasons[0].split(":")[0] == header.split(":")[0]


@pytest.mark.parametrize("header", NOT_SIGNS)
def test_headers_the_spec_does_not_list_leave_mail_personal(header: str):
    """List-Unsubscribe and the other List-* headers, X-Auto-Response-Suppress, Auto-Submitted: no and an ordinary
    Precedence or Return-Path do not make a district's real submission automatic."""
    parts = parse_mail(f"From: ylq-ip@example.cn\r\n{header}\r\nSubject: s\r\n\r\nhi".encode())
    assert parts.auto_reasons == ()


@pytest.mark.parametrize(("sender", "automatic"), [
    ("MAILER-DAEMON@163.com", True), ("Mail Delivery <mailer-daemon@qq.com>", True), ("postmaster@example.cn", True),
    ("daemon@example.cn", False), ("postmaster-office@example.cn", False), ("ylq-ip@example.cn", False),
])
def test_robot_senders_are_automatic(sender: str, automatic: bool):
    """MAILER-DAEMON@ and postmaster@ senders are automatic mail; look-alike addresses are not."""
    assert bool(parse_mail(f"From: {sender}\r\nSubject: s\r\n\r\nhi".encode()).auto_reasons) is automatic


def test_district_submission_through_a_list_gateway_is_processed():
    """A district's real submission that a gateway stamped with List-Unsubscribe and Outlook with
    X-Auto-Response-Suppress is classified as a submission, not auto_reply."""
    from datetime import UTC, datetime

    from intake.classify import classify
    from intake.models import Outcome

    raw = (b"From: ylq-ip@example.cn\r\nList-Unsubscribe: <mailto:u@example.cn>\r\nList-Post: NO\r\n"
           b"X-Auto-Response-Suppress: All\r\nSubject: s\r\n\r\nhi")
    when = datetime(2024, 11, 5, tzinfo=UTC)
    assert classify(parse_mail(raw), "云龙区", when, datetime(2024, 11, 8, tzinfo=UTC), False) is Outcome.PROCESSED


# -- hostile MIME ---------------------------------------------------------------------------------


def test_deeply_nested_multiparts_keep_the_sender_and_say_why():
    """1,000 nested multiparts: the body is not read, but the headers are (district known), with one
    message-level UNREADABLE_FILE naming the nesting."""
    parts = parse_mail(hostile.nested_multipart(1000))
    assert (parts.from_addr, parts.subject, parts.message_id) == ("ylq-ip@example.cn", "申报材料", "<deep@example.cn>")
    assert parts.attachments == ()
    assert [(p.code, p.reason) for p in parts.problems] == [("UNREADABLE_FILE", mail.DEEP)]


def test_deep_nesting_becomes_a_message_finding_for_the_district():
    """The nesting problem reaches the district as a message-level UNREADABLE_FILE finding."""
    from intake.classify import message_findings
    from intake.models import Outcome

    findings = message_findings(Outcome.PROCESSED, parse_mail(hostile.nested_multipart(1000)), [])
    assert [(f.code, f.message) for f in findings if f.code == "UNREADABLE_FILE"] == [("UNREADABLE_FILE", mail.DEEP)]


def test_twenty_thousand_headers_are_read():
    """20,000 header fields before From: the sender, subject and id are still found (in bounded work: one pass
    per header looked up; the benchmark measures the time)."""
    parts = parse_mail(hostile.many_headers(20_000))
    assert (parts.from_addr, parts.message_id, parts.problems) == ("ylq-ip@example.cn", "<many@example.cn>", ())


@pytest.mark.parametrize("value", [
    "=?utf-8?q?<a=0D=0Ab@example.cn>?=", "=?utf-8?b?PGENCmJAZXhhbXBsZS5jbj4=?=", "<a\r\n b@example.cn>",
    "<a\tb@example.cn>", "=?utf-8?q?<a=00=1Bb=E2=80=8B@example.cn>?=",
])
def test_message_id_with_encoded_line_breaks_is_cleaned(value: str):
    """A Message-ID carrying CR/LF, tabs, NUL or invisible characters (raw or inside an encoded-word) is
    cleaned, and the message still parses."""
    parts = parse_mail(f"From: ylq-ip@example.cn\r\nMessage-ID: {value}\r\nSubject: s\r\n\r\nhi".encode())
    assert parts.message_id == "<ab@example.cn>" and parts.from_addr == "ylq-ip@example.cn"


def test_message_id_of_only_junk_is_none():
    """A Message-ID that is nothing but line breaks and spaces is no id at all."""
    assert parse_mail(b"From: a@b.cn\r\nMessage-ID: =?utf-8?q?=0D=0A_?=\r\n\r\nx").message_id is None


def test_headers_alone_make_parts_with_the_reason():
    """parts_from_headers: the sender, subject, id and automatic signs of a header block, no attachments, one
    message-level problem with the reason given."""
    head = (b"From: =?gbk?b?1MbB+sf4?= <YLQ-IP@example.cn>\r\nSubject: =?utf-8?b?55Sz5oql5p2Q5paZ?=\r\n"
            b"Message-ID: <big@example.cn>\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n")
    reason = mail.oversize_reason(90 * 1024 * 1024 + 1, 80 * 1024 * 1024)
    parts = mail.parts_from_headers(head, reason)
    assert (parts.from_addr, parts.from_name, parts.subject, parts.message_id) == (
        "ylq-ip@example.cn", "云龙区", "申报材料", "<big@example.cn>")
    assert parts.attachments == () and parts.auto_reasons == ()
    assert [(p.code, p.reason) for p in parts.problems] == [("UNREADABLE_FILE", reason)]
    assert "91 MB" in reason and "80 MB" in reason


def test_headers_of_an_oversize_message_come_from_the_server(imap_account):
    """Mailbox.headers fetches each message's header block alone (BODY.PEEK[HEADER], not marked seen), so a
    message too big to fetch is still known by its sender."""
    from support import on_time

    from intake.mailbox import Mailbox

    big = hostile.message_with([("汇总表.xlsx", "application/octet-stream", b"x" * 3_000_000)], subject=b"big")
    imap_account.append_many([(big, on_time()), (hostile.many_headers(20_000), on_time())])
    with Mailbox(imap_account.mailbox_config()) as mb:
        uids = mb.uids_from(1)
        heads = mb.headers(uids)
    assert sorted(heads) == uids
    parts = [mail.parts_from_headers(heads[u], "x") for u in uids]
    assert [p.from_addr for p in parts] == ["ylq-ip@example.cn"] * 2
    assert len(heads[uids[0]]) < 1000 and heads[uids[0]].endswith(b"\r\n\r\n")
    assert all("\\Seen" not in f for f in imap_account.server.fetch_flags(imap_account.user).values())
