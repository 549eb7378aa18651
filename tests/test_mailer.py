"""Replies as built by ``build_reply`` and sent by ``Mailer`` to a real aiosmtpd server (no mocks)."""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import pytest
from servers import SmtpServer, TlsCert

import intake.mailer as mailer_module
from intake.errors import SendError
from intake.mailer import Mailer, build_reply, message_id_for, reply_bytes

CST = timezone(timedelta(hours=8))
SENDER = "徐州市知识产权局 <xzip2019@163.com>"
TEXT = "云龙区：您的申报材料已收到。\n受理编号 XZ2024-云龙-001，状态：受理。\n"
HTML = "<p>云龙区：您的申报材料已收到。</p><p>受理编号 <b>XZ2024-云龙-001</b></p>"
PASSWORD = "ABCDEFGHIJKLMNOP"  # a 163 授权码 is 16 ASCII letters


def reply(**overrides: object) -> EmailMessage:
    values: dict[str, object] = {
        "sender": SENDER, "to": "yunlong-ip@example.cn", "subject": "回执：云龙区申报材料",
        "text": TEXT, "html": HTML, "in_reply_to": "<orig-1@example.cn>", "kind": "receipt",
        "domain": "163.com", "date": datetime(2024, 11, 5, 10, 30, tzinfo=CST),
    } | overrides
    return build_reply(**values)[0]  # type: ignore[arg-type]


def reparse(msg: EmailMessage) -> EmailMessage:
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def bodies(msg: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in msg.iter_parts()}


# -- build_reply -------------------------------------------------------------


def test_reply_headers_round_trip() -> None:
    """Threading, auto-reply and outcome headers survive serialisation and parsing."""
    msg, message_id = build_reply(sender=SENDER, to="yunlong-ip@example.cn", subject="回执：云龙区申报材料",
                                  text=TEXT, html=HTML, in_reply_to="<orig-1@example.cn>", kind="receipt",
                                  domain="163.com")
    got = reparse(msg)
    assert got["Message-ID"] == message_id and message_id.endswith("@163.com>")
    assert got["In-Reply-To"] == got["References"] == "<orig-1@example.cn>"
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["X-Intake-Outcome"] == "receipt"
    assert got["Subject"] == "回执：云龙区申报材料"
    assert got["To"] == "yunlong-ip@example.cn"
    assert got["Date"].datetime is not None


def test_reply_date_header_is_in_beijing_time() -> None:
    """The Date header reads +0800 whatever the machine's zone and whatever zone the given time is in."""
    when = datetime(2024, 11, 5, 1, 12, tzinfo=UTC)
    msg, _ = build_reply(sender=SENDER, to="yunlong-ip@example.cn", subject="回执", text=TEXT, html=HTML,
                         in_reply_to=None, kind="update", date=when)
    assert msg["Date"].endswith("09:12:00 +0800")
    assert reparse(msg)["Date"].datetime == when
    now, _ = build_reply(sender=SENDER, to="yunlong-ip@example.cn", subject="回执", text=TEXT, html=HTML,
                         in_reply_to=None, kind="receipt")
    assert now["Date"].endswith("+0800")


def test_reply_from_is_rfc2047_chinese_display_name() -> None:
    """From is ASCII on the wire (RFC 2047 UTF-8) and decodes to the Chinese name in old and new parsers."""
    raw = reply().as_bytes()
    from_line = next(line for line in raw.split(b"\n") if line.startswith(b"From:"))
    assert from_line.isascii() and b"=?utf-8?" in from_line.lower()
    assert from_line.endswith(b"<xzip2019@163.com>")
    [address] = reparse(reply())["From"].addresses
    assert (address.display_name, address.addr_spec) == ("徐州市知识产权局", "xzip2019@163.com")
    legacy = email.message_from_bytes(raw)  # compat32, as older clients parse
    assert str(make_header(decode_header(legacy["From"]))) == SENDER


def test_reply_bodies_are_utf8_alternatives() -> None:
    """The reply is multipart/alternative: UTF-8 plain text first, then HTML, both exact."""
    got = reparse(reply())
    assert got.get_content_type() == "multipart/alternative"
    assert [p.get_content_charset() for p in got.iter_parts()] == ["utf-8", "utf-8"]
    assert bodies(got) == {"text/plain": TEXT, "text/html": HTML + "\n"}
    assert reply().as_bytes().isascii()


def test_reply_without_original_message_id() -> None:
    """A message that had no Message-ID gets a reply without In-Reply-To or References."""
    got = reparse(reply(in_reply_to=None))
    assert got["In-Reply-To"] is None and got["References"] is None


def test_reply_bare_original_id_gets_brackets() -> None:
    """An original Message-ID stored without angle brackets is referenced with them."""
    assert reparse(reply(in_reply_to="orig-2@example.cn"))["In-Reply-To"] == "<orig-2@example.cn>"


def test_late_notice_and_explicit_message_id() -> None:
    """A late notice carries X-Intake-Outcome: late and the Message-ID it was given."""
    fixed = message_id_for("outbox:42", "163.com")
    msg, message_id = build_reply(sender=SENDER, to="a@example.cn", subject="逾期通知：材料", text="t",
                                  html="<p>t</p>", in_reply_to=None, kind="late", message_id=fixed)
    assert message_id == fixed == message_id_for("outbox:42", "163.com")
    assert fixed != message_id_for("outbox:43", "163.com")
    assert reparse(msg)["X-Intake-Outcome"] == "late"
    assert reparse(msg)["Message-ID"] == fixed


def test_reply_subject_folded_to_one_line() -> None:
    """Line breaks in a subject (from a hostile original) become spaces, never new headers."""
    got = reparse(reply(subject="回执：a\r\nBcc: victim@example.cn"))
    assert got["Subject"] == "回执：a Bcc: victim@example.cn"
    assert got["Bcc"] is None


def test_reply_rejects_unknown_kind() -> None:
    """Only receipts and late notices exist."""
    with pytest.raises(ValueError):
        reply(kind="digest")


def reference_reply(*, sender: str, to: str, subject: str, text: str, html: str, in_reply_to: str | None,
                    kind: str, message_id: str, date: datetime) -> bytes:
    """The reply as ``EmailMessage`` with ``policy.default`` writes it (how ``build_reply`` made it before it
    wrote the bytes itself): what the fast writer must mean, header by header and body by body."""
    msg = EmailMessage()
    msg["From"] = Address(display_name=parseaddr(sender)[0], addr_spec=parseaddr(sender)[1])
    msg["To"] = Address(display_name=parseaddr(to)[0], addr_spec=parseaddr(to)[1])
    msg["Subject"] = re.sub(r"\s*[\r\n]+\s*", " ", subject).strip()
    msg["Date"] = format_datetime(date.astimezone(CST))
    msg["Message-ID"] = message_id
    if in_reply_to:
        original = in_reply_to.strip() if in_reply_to.strip().startswith("<") else f"<{in_reply_to.strip()}>"
        msg["In-Reply-To"] = original
        msg["References"] = original
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Intake-Outcome"] = kind
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return msg.as_bytes()


@pytest.mark.parametrize("values", [
    {},
    {"subject": "回执：" + "云龙区申报材料（第二批）" * 12, "to": "云龙区知识产权局 <yunlong-ip@example.cn>"},
    {"subject": "Re: " + "a plain ASCII subject that is longer than one line " * 3, "in_reply_to": "bare@example.cn"},
    {"sender": '"Xuzhou, IP Bureau" <xzip2019@163.com>', "to": "Yunlong Office <yunlong-ip@example.cn>"},
    {"sender": "徐州市知识产权局" * 8 + " <xzip2019@163.com>", "in_reply_to": "<原件@example.cn>"},
    {"in_reply_to": "<" + "x" * 120 + "@example.cn>", "text": "", "html": "\r\n\r\n"},
    {"in_reply_to": None, "kind": "late", "text": "a\r\nb\rc\n\n" + "长" * 500, "subject": "  "},
    {"subject": "回执 =?utf-8?q?not-an-encoded-word?= \t tabs\r\n and lines"},
    {"subject": "Re:" + "a,b;c(d)\"e\" f " * 12, "to": '"Yun, Long" <yunlong-ip@example.cn>'},
])
def test_written_reply_means_what_email_message_wrote(values: dict) -> None:
    """The reply written directly parses, header by header and body by body, to exactly what the same reply
    built with ``EmailMessage`` and ``policy.default`` parses to: Chinese and long subjects and names, bare and
    Chinese and long originals, empty and CR/LF bodies. It is ASCII and no line is over 78 characters but
    a long unbreakable Message-ID."""
    args = {"sender": SENDER, "to": "yunlong-ip@example.cn", "subject": "回执：云龙区申报材料", "text": TEXT,
            "html": HTML, "in_reply_to": "<orig-1@example.cn>", "kind": "receipt"} | values
    fixed = {"message_id": "<r1@163.com>", "date": datetime(2024, 11, 5, 10, 30, tzinfo=CST)}
    written, message_id = reply_bytes(**args, **fixed)
    got = email.message_from_bytes(written, policy=policy.default)
    want = email.message_from_bytes(reference_reply(**args, **fixed), policy=policy.default)
    assert message_id == "<r1@163.com>" and written.isascii()

    def fields(msg: EmailMessage) -> list[tuple[str, str]]:  # the boundary is random; names read below
        return [(k, "multipart/alternative" if k == "Content-Type" else str(v)) for k, v in msg.items()
                if k not in ("From", "To", "Subject")]

    assert fields(got) == fields(want)
    assert got["Subject"] == re.sub(r"\s*[\r\n]+\s*", " ", args["subject"]).strip()
    for name in ("From", "To"):  # RFC 2047 joins adjacent encoded words (policy.default's parser adds spaces)
        assert str(make_header(decode_header(email.message_from_bytes(written)[name]))) == \
            str(make_header(decode_header(email.message_from_bytes(reference_reply(**args, **fixed))[name])))
        assert got[name].addresses[0].addr_spec == want[name].addresses[0].addr_spec
    assert got.get_content_type() == "multipart/alternative" and bodies(got) == bodies(want)
    assert [p.get_payload() for p in got.iter_parts()] == [p.get_payload() for p in want.iter_parts()]
    assert not got.defects and all(not p.defects for p in got.iter_parts())
    assert all(len(line) <= 78 for line in written.split(b"\n") if b"x" * 100 not in line)


def test_written_reply_refuses_header_injection() -> None:
    """An original Message-ID holding a line break is refused (it would start a new header), as before."""
    with pytest.raises(ValueError):
        reply_bytes(sender=SENDER, to="a@example.cn", subject="回执", text="t", html="h",
                    in_reply_to="<a@x>\r\nBcc: victim@example.cn", kind="receipt")


# -- Mailer ------------------------------------------------------------------


def test_send_round_trips_headers_and_bodies(smtp_server: SmtpServer) -> None:
    """What the server receives is the reply as built: envelope, headers, Chinese names and bodies."""
    msg = reply(to="云龙区知识产权局 <yunlong-ip@example.cn>")
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send(msg)
    [got] = smtp_server.messages
    assert (got.mail_from, got.rcpt_tos) == ("xzip2019@163.com", ["yunlong-ip@example.cn"])
    for name in ("Message-ID", "In-Reply-To", "References", "Auto-Submitted", "X-Intake-Outcome", "Subject"):
        assert got.message[name] == msg[name], name
    assert got.message["From"].addresses[0].display_name == "徐州市知识产权局"
    assert got.message["To"].addresses[0].display_name == "云龙区知识产权局"
    assert bodies(got.message) == bodies(reparse(msg))


def test_send_stored_bytes_as_worker_does(smtp_server: SmtpServer) -> None:
    """A reply stored as bytes and re-parsed with policy.SMTP goes out unchanged."""
    msg, message_id = build_reply(sender=SENDER, to="a@example.cn", subject="回执：x", text=TEXT, html=HTML,
                                  in_reply_to=None, kind="receipt")
    stored = email.message_from_bytes(msg.as_bytes(), policy=policy.SMTP)
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send(stored)  # type: ignore[arg-type]
    [got] = smtp_server.messages
    assert got.message["Message-ID"] == message_id
    assert got.message["From"].addresses[0].display_name == "徐州市知识产权局"
    assert bodies(got.message)["text/plain"] == TEXT


def test_send_bytes_puts_the_stored_reply_on_the_wire_as_send_would(smtp_server: SmtpServer) -> None:
    """A queued reply sent from its stored bytes (as the worker does, without parsing it again) reaches the
    server byte for byte as ``send`` writes it, line ends made CRLF, to the address in its To."""
    msg, message_id = build_reply(sender=SENDER, to="云龙区知识产权局 <yunlong-ip@example.cn>", subject="回执：x" * 30,
                                  text=TEXT, html=HTML, in_reply_to="<原件@example.cn>", kind="receipt")
    raw = msg.as_bytes()
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send_bytes(raw)
        mailer.send(email.message_from_bytes(raw, policy=policy.SMTP))  # type: ignore[arg-type]
    fast, parsed = smtp_server.messages
    assert fast.raw == parsed.raw == raw.replace(b"\n", b"\r\n")
    assert (fast.mail_from, fast.rcpt_tos) == ("xzip2019@163.com", ["yunlong-ip@example.cn"])
    assert fast.message["Message-ID"] == message_id and fast.message["In-Reply-To"] == "<原件@example.cn>"


def test_send_bytes_leaves_a_bcc_to_send_message(smtp_server: SmtpServer) -> None:
    """Stored bytes with a Bcc go through ``send`` (smtplib drops the Bcc line, the address still gets it)."""
    msg = reply()
    msg["Bcc"] = "archive@example.cn"
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send_bytes(msg.as_bytes())
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["yunlong-ip@example.cn", "archive@example.cn"] and b"archive@" not in got.raw


def test_several_sends_one_session(smtp_server: SmtpServer) -> None:
    """One Mailer sends many replies, each with its own Message-ID."""
    with Mailer(smtp_server.smtp_config()) as mailer:
        for i in range(3):
            mailer.send(reply(to=f"d{i}@example.cn"))
    assert len({m.message["Message-ID"] for m in smtp_server.messages}) == 3


@pytest.mark.parametrize("answer", [
    "451 DT:SPM 163 smtp10,DsCowAD3 try again later",
    "451 MI:SFQ 163 smtp10, sender frequency limit",
    "421 HL:ICC 163 smtp10, IP connection count limit",
])
def test_netease_4xx_is_temporary(smtp_server: SmtpServer, answer: str) -> None:
    """NetEase's 451 DT:SPM, 451 MI:SFQ and 421 HL:ICC are temporary, and the next send goes through."""
    smtp_server.fail_next(answer)
    with Mailer(smtp_server.smtp_config()) as mailer:
        with pytest.raises(SendError) as failed:
            mailer.send(reply())
        mailer.send(reply())
    assert failed.value.temporary and failed.value.code == int(answer[:3])
    assert answer[4:10] in str(failed.value)
    assert len(smtp_server.messages) == 1


def test_554_spam_is_permanent(smtp_server: SmtpServer) -> None:
    """554 DT:SPM (content judged spam) is permanent: retrying would not help."""
    smtp_server.fail_next("554 DT:SPM 163 smtp10, message rejected as spam")
    with Mailer(smtp_server.smtp_config()) as mailer, pytest.raises(SendError) as failed:
        mailer.send(reply())
    assert not failed.value.temporary and failed.value.code == 554
    assert smtp_server.messages == []


@pytest.mark.parametrize(("answer", "temporary"), [("550 User not found: yunlong-ip@example.cn", False),
                                                   ("450 Mailbox busy", True)])
def test_recipient_refused(smtp_server: SmtpServer, answer: str, temporary: bool) -> None:
    """A refused recipient is permanent for 5xx and temporary for 4xx, with the server's code."""
    smtp_server.fail_next(answer, stage="RCPT")
    with Mailer(smtp_server.smtp_config()) as mailer, pytest.raises(SendError) as failed:
        mailer.send(reply())
    assert failed.value.temporary is temporary and failed.value.code == int(answer[:3])


def test_sender_refused_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    """A 550 at MAIL FROM is permanent."""
    smtp_server.fail_next("550 Invalid User", stage="MAIL")
    with Mailer(smtp_server.smtp_config()) as mailer, pytest.raises(SendError) as failed:
        mailer.send(reply())
    assert not failed.value.temporary and failed.value.code == 550


def test_server_down_is_temporary(smtp_server: SmtpServer) -> None:
    """A server that refuses connections gives a temporary SendError on connect."""
    smtp_server.stop()
    with pytest.raises(SendError) as failed:
        Mailer(smtp_server.smtp_config()).connect()
    assert failed.value.temporary and failed.value.code is None


def test_server_down_between_sends_is_temporary(smtp_server: SmtpServer) -> None:
    """A server gone after a first send makes the next send fail temporarily, not crash."""
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send(reply())
        smtp_server.stop()
        with pytest.raises(SendError) as failed:
            mailer.send(reply())
    assert failed.value.temporary


def test_reconnects_after_server_restart(smtp_server: SmtpServer) -> None:
    """A connection the server dropped between sends is reopened before the next send."""
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send(reply())
        smtp_server.stop()
        smtp_server.start()
        mailer.send(reply())
    assert len(smtp_server.messages) == 2


def test_back_to_back_sends_cost_no_noop_an_idle_connection_is_checked(smtp_server: SmtpServer,
                                                                        monkeypatch) -> None:
    """Replies sent one after another reuse the connection without a NOOP round trip each; after
    ``NOOP_AFTER_IDLE`` seconds without use the connection is checked with NOOP before the next send."""
    with Mailer(smtp_server.smtp_config()) as mailer:
        for i in range(3):
            mailer.send_bytes(reply(message_id=f"<b{i}@163.com>").as_bytes())
        assert smtp_server.noops == 0
        monkeypatch.setattr(mailer_module, "NOOP_AFTER_IDLE", 0.0)
        mailer.send_bytes(reply(message_id="<idle@163.com>").as_bytes())
        assert smtp_server.noops == 1
    assert len(smtp_server.messages) == 4


def test_a_421_before_the_message_on_a_reused_connection_reconnects_once(smtp_server: SmtpServer) -> None:
    """A reused, unchecked connection the server closes at MAIL FROM (``421``) is reopened and the reply goes
    out on the new one, once; a second ``421`` on the new connection is a temporary failure."""
    with Mailer(smtp_server.smtp_config()) as mailer:
        mailer.send_bytes(reply(message_id="<first@163.com>").as_bytes())
        smtp_server.fail_next("421 4.4.2 closing idle connection", stage="MAIL")
        mailer.send_bytes(reply(message_id="<second@163.com>").as_bytes())
        smtp_server.fail_next("421 4.4.2 too busy", count=2, stage="MAIL")
        with pytest.raises(SendError) as failed:
            mailer.send_bytes(reply(message_id="<third@163.com>").as_bytes())
    assert failed.value.temporary and not failed.value.unknown
    assert [str(m.message["Message-ID"]) for m in smtp_server.messages] == ["<first@163.com>", "<second@163.com>"]


def test_starttls_with_login(make_smtp_server: Callable[..., SmtpServer], tls_cert: TlsCert) -> None:
    """STARTTLS then AUTH with the configured user and password delivers the reply."""
    server = make_smtp_server(password=PASSWORD, tls=tls_cert)
    with Mailer(server.smtp_config(), ssl_context=tls_cert.client_context()) as mailer:
        mailer.send(reply())
    assert server.logins == ["xzip2019@163.com"] and len(server.messages) == 1


def test_implicit_ssl_with_login(make_smtp_server: Callable[..., SmtpServer], tls_cert: TlsCert) -> None:
    """SMTP over TLS from the first byte (163's port 465 mode) with AUTH delivers the reply."""
    server = make_smtp_server(password=PASSWORD, tls=tls_cert, implicit_tls=True)
    config = server.smtp_config()
    assert config.ssl and not config.starttls
    with Mailer(config, ssl_context=tls_cert.client_context()) as mailer:
        mailer.send(reply())
    assert server.logins == ["xzip2019@163.com"] and len(server.messages) == 1


def test_untrusted_certificate_is_refused(make_smtp_server: Callable[..., SmtpServer],
                                          tls_cert: TlsCert) -> None:
    """With the default (system) trust store, a self-signed server certificate is not accepted."""
    server = make_smtp_server(tls=tls_cert, implicit_tls=True)
    with pytest.raises(SendError, match=r"TLS certificate not trusted .*smtp\.ca_file") as failed:
        Mailer(server.smtp_config()).connect()
    assert failed.value.temporary


def test_wrong_password_never_logged(make_smtp_server: Callable[..., SmtpServer],
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A refused login is temporary (fix the 授权码, replies wait) and never shows the password."""
    server = make_smtp_server(password=PASSWORD)
    wrong = "WRONGPASSWORD123"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SendError) as failed:
        Mailer(server.smtp_config(password=wrong)).connect()
    assert failed.value.temporary and failed.value.code == 535
    assert wrong not in str(failed.value) and wrong not in caplog.text
    assert wrong not in repr(server.smtp_config(password=wrong))


def test_password_absent_from_logs_on_success(make_smtp_server: Callable[..., SmtpServer],
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Logging at DEBUG through a whole authenticated session never writes the password."""
    server = make_smtp_server(password=PASSWORD)
    caplog.set_level(logging.DEBUG)
    with Mailer(server.smtp_config()) as mailer:
        mailer.send(reply())
    assert PASSWORD not in caplog.text and "sent <" in caplog.text


def test_server_answering_data_after_the_timeout_leaves_the_outcome_unknown(
        make_smtp_server: Callable[..., SmtpServer]) -> None:
    """``answer_data_late``: the server keeps the message but answers DATA after the client gave up, so the
    client sees a temporary failure for a reply that was in fact delivered (what a resend must check)."""
    server = make_smtp_server()
    server.answer_data_late(3.0)
    with Mailer(server.smtp_config(timeout_seconds=1)) as mailer:
        with pytest.raises(SendError) as failed:
            mailer.send(reply())
        assert failed.value.temporary and "timed out" in str(failed.value)
        assert len(server.messages) == 1, "the server has the message all the same"
        mailer.send(reply(message_id="<second@163.com>"))  # only the next message was slow
    assert len(server.messages) == 2


def test_only_a_lost_answer_after_data_leaves_the_outcome_unknown(make_smtp_server: Callable[..., SmtpServer]) -> None:
    """A timeout waiting for the answer to DATA is ``unknown`` (the server may have the message); a refusal at
    RCPT or an explicit 4xx/5xx answer to DATA is a definite outcome, never ``unknown``."""
    server = make_smtp_server()
    server.answer_data_late(3.0)
    with Mailer(server.smtp_config(timeout_seconds=1)) as mailer:
        with pytest.raises(SendError) as lost:
            mailer.send(reply())
        assert lost.value.unknown and lost.value.temporary
        for stage, answer in (("RCPT", "451 MI:SFQ try later"), ("DATA", "451 DT:SPM try later"),
                              ("DATA", "554 DT:SPM spam")):
            server.fail_next(answer, stage=stage)
            with pytest.raises(SendError) as refused:
                mailer.send(reply(message_id=f"<{stage}{answer[:3]}@163.com>"))
            assert not refused.value.unknown, answer
        mailer.send(reply(message_id="<ok@163.com>"))
    assert len(server.messages) == 2, "the late one and the last one"


def test_ca_file_trusts_a_private_smtp_server(make_smtp_server: Callable[..., SmtpServer], tls_cert: TlsCert) -> None:
    """``smtp.ca_file`` adds the private CA: STARTTLS and implicit TLS both verify and deliver."""
    for implicit in (False, True):
        server = make_smtp_server(password=PASSWORD, tls=tls_cert, implicit_tls=implicit)
        with Mailer(server.smtp_config(ca_file=str(tls_cert.cert))) as mailer:
            mailer.send(reply())
        assert len(server.messages) == 1
