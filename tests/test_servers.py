"""The test servers themselves: Dovecot, the 163-style ID proxy and the capturing SMTP server."""

from __future__ import annotations

import imaplib
import smtplib
import time
from datetime import datetime, timedelta, timezone

import pytest
from imap_tools import MailBox, MailBoxUnencrypted
from imap_tools.errors import MailboxFolderSelectError
from servers import NETEASE_UNSAFE, ImapAccount, SmtpServer, TlsCert

CST = timezone(timedelta(hours=8))
RAW = (b"From: =?utf-8?b?5LqR6b6Z5Yy6?= <yunlong-ip@example.cn>\r\nTo: xzip2019@163.com\r\n"
       b"Subject: =?utf-8?b?5rWL6K+V?=\r\nMessage-ID: <t1@test.example>\r\n\r\nbody\r\n")


def send_id(box: MailBoxUnencrypted) -> tuple[str, list[bytes]]:
    """Send the RFC 2971 ID command the way 163.com wants it (imaplib has no helper)."""
    imaplib.Commands.setdefault("ID", ("AUTH", "SELECTED"))
    return box.client._simple_command("ID", '("name" "xzip-intake" "version" "0.1")')  # type: ignore[attr-defined]


def login(account: ImapAccount) -> MailBoxUnencrypted:
    return MailBoxUnencrypted(account.host, account.port).login(account.user, account.password,
                                                                initial_folder=None)


def test_fresh_account_is_empty(imap_account: ImapAccount) -> None:
    """Each test's account starts with an empty INBOX and no other folder."""
    assert imap_account.uids() == []
    assert imap_account.folders() == ["INBOX"]


def test_append_keeps_internaldate_instant(imap_account: ImapAccount) -> None:
    """A message appended with an INTERNALDATE reads back as the same instant (zone may differ)."""
    when = datetime(2024, 11, 8, 23, 59, 59, tzinfo=CST)
    imap_account.append(RAW, when)
    [uid] = imap_account.uids()
    assert imap_account.internaldates()[uid] == when


def test_append_flags_and_chinese_folder(imap_account: ImapAccount) -> None:
    """Flags and keywords given to append are set, and a Chinese folder is created on demand."""
    when = datetime(2024, 11, 5, 10, tzinfo=CST)
    imap_account.append(RAW, when, folder="已处理", flags=["\\Seen", "$Intake"])
    assert imap_account.folders() == ["INBOX", "已处理"]
    assert list(imap_account.fetch_flags("已处理").values()) == [{"\\Seen", "$Intake"}]


def test_reset_uidvalidity(imap_account: ImapAccount) -> None:
    """Resetting UIDVALIDITY raises it; the messages stay and new mail keeps arriving."""
    imap_account.append(RAW, datetime(2024, 11, 5, 10, tzinfo=CST))
    before = imap_account.uidvalidity()
    assert imap_account.reset_uidvalidity() == imap_account.uidvalidity() > before
    imap_account.append(RAW, datetime(2024, 11, 5, 11, tzinfo=CST))
    assert len(imap_account.uids()) == 2


@pytest.mark.slow
def test_append_many_500(imap_account: ImapAccount) -> None:
    """500 messages go in over one connection, in order, each with its own INTERNALDATE."""
    start = datetime(2024, 11, 1, tzinfo=CST)
    messages = [(RAW.replace(b"t1@", f"m{i}@".encode()), start + timedelta(minutes=i)) for i in range(500)]
    began = time.monotonic()
    assert imap_account.append_many(messages) == 500
    elapsed = time.monotonic() - began
    dates = imap_account.internaldates()
    assert len(dates) == 500
    assert [dates[uid] for uid in sorted(dates)] == [when for _, when in messages]
    assert elapsed < 30, f"500 appends took {elapsed:.1f}s"


def test_imaps_port_with_self_signed_cert(imap_account: ImapAccount) -> None:
    """The IMAPS port serves the self-signed certificate, verified by a client that trusts it."""
    server = imap_account.server
    assert isinstance(server.tls, TlsCert)
    with MailBox(server.host, server.ssl_port, ssl_context=server.tls.client_context()).login(
            imap_account.user, imap_account.password) as box:
        assert box.folder.get() == "INBOX"


def test_netease_proxy_refuses_select_before_id(netease_imap: ImapAccount) -> None:
    """Through the proxy, SELECT before ID gets 163.com's 'Unsafe Login' answer."""
    box = login(netease_imap)
    try:
        with pytest.raises(MailboxFolderSelectError) as refused:
            box.folder.set("INBOX")
    finally:
        box.logout()
    assert NETEASE_UNSAFE.removeprefix("NO ") in str(refused.value)
    assert netease_imap.proxy is not None and len(netease_imap.proxy.rejected) == 1


def test_netease_proxy_allows_select_after_id(netease_imap: ImapAccount) -> None:
    """After ID the proxy relays everything, APPEND literals included, and records the ID sent."""
    box = login(netease_imap)
    try:
        typ, _ = send_id(box)
        box.folder.set("INBOX")
        box.append(RAW, "INBOX", dt=datetime(2024, 11, 5, 10, tzinfo=CST))
        assert box.uids() == ["1"]
    finally:
        box.logout()
    assert typ == "OK"
    assert netease_imap.proxy is not None
    [sent] = netease_imap.proxy.id_commands
    assert sent.split(None, 1)[1] == b'ID ("name" "xzip-intake" "version" "0.1")'


def test_smtp_captures_message(smtp_server: SmtpServer) -> None:
    """The SMTP server keeps the envelope, the raw bytes and the parsed message."""
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail("a@test.example", ["b@test.example"], RAW)
    [got] = smtp_server.messages
    assert (got.mail_from, got.rcpt_tos) == ("a@test.example", ["b@test.example"])
    assert got.message["Subject"] == "测试"
    assert got.message["From"].addresses[0].display_name == "云龙区"


def test_smtp_programmed_451_then_accepts(smtp_server: SmtpServer) -> None:
    """A programmed 451 DT:SPM refuses the next message only; the one after is accepted."""
    smtp_server.fail_next("451 DT:SPM 163 smtp1, try again later", count=1)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@test.example", ["b@test.example"], RAW)
        client.sendmail("a@test.example", ["b@test.example"], RAW)
    assert refused.value.smtp_code == 451 and b"DT:SPM" in refused.value.smtp_error
    assert len(smtp_server.messages) == 1


def test_smtp_stop_start_keeps_port(smtp_server: SmtpServer) -> None:
    """A stopped server refuses connections; started again it listens on the same port."""
    smtp_server.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=2)
    smtp_server.start()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=2) as client:
        assert client.noop()[0] == 250


def test_smtp_auth_checks_password(make_smtp_server) -> None:  # type: ignore[no-untyped-def]
    """With a password set, AUTH is required and only that password is accepted."""
    server = make_smtp_server(password="AuthCode163xyz")
    with smtplib.SMTP(server.host, server.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused, match="Authentication required"):
            client.sendmail("xzip2019@163.com", ["b@test.example"], RAW)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("xzip2019@163.com", "wrong")
        client.login("xzip2019@163.com", "AuthCode163xyz")
        client.sendmail("xzip2019@163.com", ["b@test.example"], RAW)
    assert server.logins == ["xzip2019@163.com"]
