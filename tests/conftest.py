"""Fixtures for real mail servers on 127.0.0.1 (see ``tests/servers.py``) and the ``dovecot`` marker."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers import Dovecot, ImapAccount, ImapIdProxy, ImapRelay, SmtpServer, TlsCert, find_dovecot

DOVECOT_FIXTURES = {"dovecot", "imap_account", "netease_imap", "imaps_account", "relayed_imap"}


def _dovecot_required() -> bool:
    """In CI a missing Dovecot must fail the run, not skip half the suite."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("INTAKE_REQUIRE_DOVECOT") == "1"


def _no_dovecot(reason: str) -> None:
    if _dovecot_required():
        pytest.fail(f"{reason} (required: CI=true or INTAKE_REQUIRE_DOVECOT=1)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Dovecot fixture ``dovecot``, so ``-m 'not dovecot'`` deselects it."""
    for item in items:
        if DOVECOT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dovecot)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert:
    """A self-signed certificate for localhost/127.0.0.1 (``client_context()`` trusts it)."""
    return TlsCert.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One private Dovecot for the session; use ``imap_account`` for a fresh mailbox per test."""
    binary = find_dovecot()
    if binary is None:
        _no_dovecot("dovecot not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        _no_dovecot("the test Dovecot needs root to store mail as the dovecot user")
    server = Dovecot(binary).start()  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture
def imap_account(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> ImapAccount:
    """A new user with an empty Maildir; its password is in $INTAKE_IMAP_PASSWORD for the test."""
    user, password = dovecot.new_user()
    account = ImapAccount(dovecot, user, password, dovecot.host, dovecot.port)
    monkeypatch.setenv(account.password_env, password)
    return account


@pytest.fixture
def netease_imap(imap_account: ImapAccount) -> Iterator[ImapAccount]:
    """Like ``imap_account``, but reached through a proxy that refuses SELECT before ID, as 163.com does."""
    proxy = ImapIdProxy(imap_account.port, imap_account.host).start()
    yield ImapAccount(imap_account.server, imap_account.user, imap_account.password, proxy.host, proxy.port,
                      imap_account.password_env, proxy)
    proxy.stop()


@pytest.fixture
def imaps_account(imap_account: ImapAccount) -> ImapAccount:
    """Like ``imap_account``, but on Dovecot's imaps port (TLS from the first byte) with its self-signed
    certificate: ``mailbox_settings()`` has ``ssl = true``; ``ca_file`` is the certificate to trust."""
    server = imap_account.server
    assert server.tls is not None
    return ImapAccount(server, imap_account.user, imap_account.password, server.host, server.ssl_port,
                       imap_account.password_env, ssl=True, ca_file=str(server.tls.cert))


@pytest.fixture
def relayed_imap(imap_account: ImapAccount) -> Iterator[ImapAccount]:
    """Like ``imap_account``, but reached through an ``ImapRelay`` (``.relay``) that refuses chosen commands,
    hides capabilities or rewrites server lines on demand; it relays faithfully until told otherwise."""
    relay = ImapRelay(imap_account.port, imap_account.host).start()
    yield ImapAccount(imap_account.server, imap_account.user, imap_account.password, relay.host, relay.port,
                      imap_account.password_env, relay=relay)
    relay.stop()


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """A factory of started ``SmtpServer``s (``password=``, ``tls=``, ``implicit_tls=``), stopped after.

    ``answer_data_late(seconds)`` on a server makes it keep the next message but answer DATA late."""
    servers: list[SmtpServer] = []

    def make(**kwargs: Any) -> SmtpServer:
        servers.append(SmtpServer(**kwargs).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server, no login, capturing into ``.messages``; ``fail_next`` programs refusals."""
    return make_smtp_server()
