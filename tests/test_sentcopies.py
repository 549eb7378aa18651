"""Which replies a Sent folder holds, decided from header fields alone (``intake.sentcopies``): whole values,
unfolded and decoded, never a part of a longer value."""

from __future__ import annotations

from intake.mailer import build_reply
from intake.sentcopies import ReplyKeys, SentCopies, header_fields, reply_keys

RECEIPT = ReplyKeys("<r1@163.com>", "<d1@example.cn>", "receipt")


def sent(*lines: str) -> bytes:
    """A header block as a server returns ``BODY[HEADER.FIELDS (...)]``: CRLF lines, an empty line last."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def found(block: bytes, keys: ReplyKeys = RECEIPT) -> bool:
    copies = SentCopies([keys])
    copies.add_headers(block)
    return copies.holds(keys)


def test_a_reply_is_found_by_its_message_id_or_by_original_and_outcome() -> None:
    """Either key finds the reply: its own Message-ID, or In-Reply-To with the same X-Intake-Outcome."""
    assert found(sent("Message-ID: <r1@163.com>"))
    assert found(sent("Message-ID: <new@163.com>", "In-Reply-To: <d1@example.cn>", "X-Intake-Outcome: receipt"))
    assert not found(sent("Message-ID: <new@163.com>", "In-Reply-To: <d1@example.cn>", "X-Intake-Outcome: late"))
    assert not found(sent("Message-ID: <new@163.com>", "In-Reply-To: <d1@example.cn>"))
    assert not found(sent("Message-ID: <r2@163.com>", "In-Reply-To: <d2@example.cn>", "X-Intake-Outcome: receipt"))


def test_values_are_compared_whole_never_as_a_part() -> None:
    """A value that merely contains the one looked for is another message (IMAP SEARCH would match it)."""
    assert not found(sent("Message-ID: <xr1@163.com>"))
    assert not found(sent("Message-ID: <r1@163.com.cn>"))
    assert not found(sent("In-Reply-To: <x<d1@example.cn>>", "X-Intake-Outcome: receipt"))
    assert not found(sent("In-Reply-To: <d1@example.cn>", "X-Intake-Outcome: receipt-copy"))
    assert not found(sent("In-Reply-To: <>", "X-Intake-Outcome: receipt"), ReplyKeys("<r9@163.com>", "<", "receipt"))


def test_folded_lower_case_and_spaced_headers_are_read() -> None:
    """Folding, the case of names and values, and white space around a value do not hide a copy."""
    assert found(sent("message-id:", " <R1@163.COM>"))
    assert found(sent("IN-REPLY-TO:\t <d1@example.cn> ", "x-intake-outcome:\r\n\tReceipt"))
    assert header_fields(sent("In-Reply-To: <a@x>", "In-Reply-To: <b@x>"))["in-reply-to"] == ["<a@x>", "<b@x>"]


def test_non_ascii_originals_match_encoded_or_raw() -> None:
    """A Chinese original Message-ID matches whether the copy carries it RFC 2047-encoded (as our replies do)
    or as raw UTF-8; odd bytes and an undecodable encoded word are read without an error."""
    keys = ReplyKeys("<r1@163.com>", "<原件@district.cn>", "receipt")
    encoded = sent("In-Reply-To: =?utf-8?b?POWOn+S7tkBkaXN0cmljdC5jbj4=?=", "X-Intake-Outcome: receipt")
    assert found(encoded, keys)
    assert found(sent("In-Reply-To: <原件@district.cn>", "X-Intake-Outcome: receipt"), keys)
    assert not found(sent("In-Reply-To: <原件2@district.cn>", "X-Intake-Outcome: receipt"), keys)
    assert not found(b"In-Reply-To: \xff\xfe<\x00>\r\nX-Intake-Outcome: =?x-unknown?q?=FF?=\r\n\r\n", keys)
    assert not found(b"no colon here\r\n: empty name\r\n\r\n", keys)


def test_keys_of_a_stored_reply_are_read_from_its_bytes() -> None:
    """An outbox reply is known by its Message-ID and by the original and outcome its own headers carry
    (a Chinese original included); a notice by its Message-ID alone."""
    msg, reply_id = build_reply(sender="徐州市知识产权局 <xzip2019@163.com>", to="a@example.cn", subject="回执",
                                text="t", html="<p>t</p>", in_reply_to="<原件@district.cn>", kind="late",
                                domain="163.com")
    raw = msg.as_bytes()
    assert reply_keys(raw, reply_id, "receipt", True) == ReplyKeys(reply_id, "<原件@district.cn>", "late")
    assert reply_keys(raw, reply_id, "late", False) == ReplyKeys(reply_id)
    assert ReplyKeys(reply_id).answer is None


def test_only_the_replies_asked_about_are_kept() -> None:
    """Copies of other replies are not kept (memory follows the stage's replies, not the folder); a reply
    sent during the stage counts for a later one with the same keys."""
    copies = SentCopies([RECEIPT])
    for i in range(1000):
        copies.add_headers(sent(f"Message-ID: <other{i}@163.com>", f"In-Reply-To: <o{i}@x>",
                                "X-Intake-Outcome: receipt"))
    assert len(copies) == 0 and not copies.holds(RECEIPT)
    again = ReplyKeys("<r2@163.com>", "<d1@example.cn>", "receipt")
    copies.add(RECEIPT)
    assert copies.holds(RECEIPT) and copies.holds(again)
    assert not copies.holds(ReplyKeys("<r3@163.com>", "<d1@example.cn>", "late"))
