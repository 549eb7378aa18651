"""TLS is verified on both edges: a self-signed server is refused in one line, trusted through ``ca_file``.

Real servers only: Dovecot's imaps port and STARTTLS on its plain port, aiosmtpd with implicit TLS
and with STARTTLS, all presenting the test's self-signed certificate. The CLI runs as a subprocess,
as an operator starts it, with the passwords in the environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import ImapAccount, SmtpServer, TlsCert
from support import SENDERS, config_toml, make_config, on_time, plain_mail

from intake.errors import MailboxError
from intake.mailbox import Mailbox

IMAP_PASSWORD = "imap-Secret-4711"
SMTP_PASSWORD = "smtp-Secret-0815"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "intake.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def set_keys(toml: str, table: str, **values: object) -> str:
    """``toml`` with ``values`` set in ``[table]`` (replacing the keys already there)."""
    head, sep, rest = toml.partition(f"[{table}]\n")
    body, nxt, tail = rest.partition("\n[")
    for key, value in values.items():
        body = re.sub(rf"(?m)^{key} = .*\n?", "", body)
        text = str(value).lower() if isinstance(value, bool) else f'"{value}"' if isinstance(value, str) else value
        body = f"{key} = {text}\n" + body
    return head + sep + body + nxt + tail


def write_config(tmp_path: Path, account: ImapAccount, smtp: SmtpServer | None, *, imap: dict | None = None,
                 smtp_keys: dict | None = None) -> Path:
    """A config file for ``account`` (and ``smtp``, else an unused port) with extra keys per table."""
    smtp_host = {"host": smtp.host, "port": smtp.port} if smtp else {"host": "127.0.0.1", "port": 9}
    cfg = make_config(tmp_path / "var", imap=account.mailbox_settings(ssl=False), smtp=smtp_host)
    toml = set_keys(config_toml(cfg), "mailbox", **{"ssl": account.ssl, **(imap or {})})
    if smtp_keys:
        toml = set_keys(toml, "smtp", **smtp_keys)
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    return path


def secrets(account: ImapAccount) -> dict[str, str]:
    return {account.password_env: account.password, "INTAKE_SMTP_PASSWORD": SMTP_PASSWORD}


def assert_one_refusal_line(text: str, key: str) -> None:
    lines = [line for line in text.splitlines() if "TLS certificate not trusted" in line]
    assert len(lines) == 1, text
    assert "self-signed certificate" in lines[0] and key in lines[0], lines[0]


# -- IMAP ------------------------------------------------------------------


def test_imaps_self_signed_is_refused_by_mailbox_and_accepted_with_ca_file(imaps_account: ImapAccount) -> None:
    """``Mailbox`` verifies the imaps certificate: refused by default, accepted when ``ca_file`` trusts it."""
    with pytest.raises(MailboxError, match=r"TLS certificate not trusted \(self-signed certificate\)"):
        Mailbox(imaps_account.mailbox_config()).__enter__()
    with Mailbox(imaps_account.mailbox_config(ca_file=imaps_account.ca_file)) as mb:
        assert mb.mode == "SSL" and mb.uidvalidity > 0


def test_imap_starttls_is_verified(imap_account: ImapAccount) -> None:
    """``mailbox.starttls`` upgrades the plain port with a verifying context (imaplib's default does not)."""
    with pytest.raises(MailboxError, match="TLS certificate not trusted"):
        Mailbox(imap_account.mailbox_config(starttls=True)).__enter__()
    cert = imap_account.server.tls.cert
    with Mailbox(imap_account.mailbox_config(starttls=True, ca_file=str(cert))) as mb:
        assert mb.mode == "STARTTLS"
        assert mb.client.sock.version() is not None, "the session is encrypted"  # type: ignore[attr-defined]


def test_unreadable_ca_file_is_named_in_one_line(imaps_account: ImapAccount, tmp_path: Path) -> None:
    """A ``ca_file`` that is not a certificate is reported with the key and the file, not a traceback."""
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    with pytest.raises(MailboxError, match=r"mailbox\.ca_file .*not-a-cert\.pem.* cannot be used as a CA file"):
        Mailbox(imaps_account.mailbox_config(ca_file=str(bad))).__enter__()


def test_cli_check_and_poll_refuse_untrusted_imaps_in_one_line(imaps_account: ImapAccount, tmp_path: Path) -> None:
    """``intake check`` and ``intake poll`` against a self-signed imaps server: one clear line each,
    non-zero exit, no password anywhere in the output (even with -v)."""
    path = write_config(tmp_path, imaps_account, None)
    env = secrets(imaps_account)
    check = run("check", "--config", str(path), env=env)
    assert check.returncode == 1
    assert_one_refusal_line(check.stdout, "mailbox.ca_file")
    poll = run("-v", "poll", "--config", str(path), env=env)
    assert poll.returncode == 3, poll.stderr
    assert_one_refusal_line(poll.stderr, "mailbox.ca_file")
    assert poll.stderr.strip().splitlines()[-1].startswith("mailbox error: IMAP 127.0.0.1")
    for out in (check.stdout + check.stderr, poll.stdout + poll.stderr):
        assert imaps_account.password not in out


def test_cli_check_and_poll_accept_imaps_with_ca_file(imaps_account: ImapAccount, tmp_path: Path) -> None:
    """With ``mailbox.ca_file`` naming the server's certificate, check passes and poll records the mail."""
    imaps_account.append(plain_mail(1), on_time())
    path = write_config(tmp_path, imaps_account, None, imap={"ca_file": imaps_account.ca_file})
    env = secrets(imaps_account)
    check = run("check", "--config", str(path), env=env)
    assert check.stdout.splitlines()[1].startswith("[ok] IMAP") and "(SSL, certificate verified)" in check.stdout
    poll = run("-v", "poll", "--config", str(path), env=env)
    assert poll.returncode == 0, poll.stderr
    assert "new=1 " in poll.stderr, poll.stderr
    assert imaps_account.password not in poll.stdout + poll.stderr


# -- SMTP ------------------------------------------------------------------


@pytest.mark.parametrize("implicit", [True, False], ids=["ssl", "starttls"])
def test_cli_check_smtp_tls_refused_then_accepted_with_ca_file(
    imap_account: ImapAccount, make_smtp_server: Callable[..., SmtpServer], tls_cert: TlsCert, tmp_path: Path,
    implicit: bool,
) -> None:
    """``intake check`` refuses an SMTP server with a self-signed certificate (SSL or STARTTLS) in one line,
    and logs in once ``smtp.ca_file`` trusts it; the password is never printed."""
    server = make_smtp_server(password=SMTP_PASSWORD, tls=tls_cert, implicit_tls=implicit)
    keys = {"ssl": implicit, "starttls": not implicit, "user": "xzip2019@163.com",
            "password_env": "INTAKE_SMTP_PASSWORD"}
    env = secrets(imap_account)
    refused = run("check", "--config", str(write_config(tmp_path, imap_account, server, smtp_keys=keys)), env=env)
    assert refused.returncode == 1 and refused.stdout.splitlines()[2].startswith("[FAIL] SMTP")
    assert_one_refusal_line(refused.stdout, "smtp.ca_file")
    assert server.logins == [], "no login over an unverified connection"
    path = write_config(tmp_path, imap_account, server, smtp_keys={**keys, "ca_file": str(tls_cert.cert)})
    accepted = run("check", "--config", str(path), env=env)
    assert accepted.returncode == 0, accepted.stdout
    assert "certificate verified" in accepted.stdout.splitlines()[2]
    assert server.logins == ["xzip2019@163.com"]
    assert SMTP_PASSWORD not in refused.stdout + refused.stderr + accepted.stdout + accepted.stderr


def test_cli_poll_keeps_the_reply_while_smtp_is_untrusted(
    imap_account: ImapAccount, make_smtp_server: Callable[..., SmtpServer], tls_cert: TlsCert, tmp_path: Path,
) -> None:
    """A poll whose SMTP server is untrusted says so in one line and sends nothing (the reply waits for its
    retry); a poll with ``smtp.ca_file`` (fresh data directory, so the reply is due now) sends it."""
    server = make_smtp_server(password=SMTP_PASSWORD, tls=tls_cert, implicit_tls=True)
    imap_account.append(plain_mail(1, sender=SENDERS["云龙区"]), on_time())
    keys = {"ssl": True, "starttls": False, "user": "xzip2019@163.com", "password_env": "INTAKE_SMTP_PASSWORD"}
    env = secrets(imap_account)
    first = run("-v", "poll", "--config", str(write_config(tmp_path, imap_account, server, smtp_keys=keys)),
                env=env)
    assert first.returncode == 0, first.stderr
    assert_one_refusal_line(first.stderr, "smtp.ca_file")
    assert server.messages == [] and server.logins == []
    fresh = tmp_path / "trusted"
    fresh.mkdir()
    path = write_config(fresh, imap_account, server, smtp_keys={**keys, "ca_file": str(tls_cert.cert)})
    second = run("-v", "poll", "--config", str(path), env=env)
    assert second.returncode == 0, second.stderr
    assert len(server.messages) == 1 and server.messages[0].message["To"].addresses[0].addr_spec == SENDERS["云龙区"]
    for out in (first.stderr, second.stderr):
        assert SMTP_PASSWORD not in out and imap_account.password not in out
