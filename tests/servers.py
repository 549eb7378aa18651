"""Real mail servers on 127.0.0.1 for the tests: Dovecot (IMAP), a 163-style ID proxy, aiosmtpd (SMTP).

Facts these rely on, seen on the machines this runs on: Dovecot runs as a
private instance with its own config, ports and ``base_dir``; its std streams go
to a file (a pipe would hang the caller); mail is owned by the ``dovecot`` user.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from imap_tools import MailBoxUnencrypted as MailBox
from imap_tools.imap_utf7 import utf7_decode

from intake.config import MailboxConfig, SmtpConfig

HOST = "127.0.0.1"
DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
NETEASE_UNSAFE = "NO SELECT Unsafe Login. Please contact kefu@188.com for help"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket()) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts connections on ``port``; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.01)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout}s")


def find_dovecot() -> str | None:
    """The dovecot binary, looked up on PATH and in sbin (not on a normal user's PATH)."""
    found = shutil.which("dovecot")
    return found or next((p for p in DOVECOT_CANDIDATES if os.access(p, os.X_OK)), None)


@dataclass(frozen=True)
class TlsCert:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1``, with helpers for both ends."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> TlsCert:
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "3650", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        key.chmod(0o644)  # Dovecot reads it as root, but the temp dir may be read by its users
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


# -- Dovecot ---------------------------------------------------------------

DOVECOT_CONF = """\
protocols = imap
listen = {host}
base_dir = {d}/run
instance_name = intake-test-{port}
state_dir = {d}/run/state
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {ssl_port}
    ssl = yes
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


class Dovecot:
    """A private Dovecot in a temp dir: any user name logs in with ``password`` to a fresh Maildir."""

    def __init__(self, binary: str, password: str = "secret") -> None:
        self.binary = binary
        self.password = password
        self.host = HOST
        self.port = 0
        self.ssl_port = 0
        self.root: Path | None = None
        self.tls: TlsCert | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._users = itertools.count(1)

    # lifecycle
    def start(self) -> Dovecot:
        """Write the config and a certificate, start ``dovecot -F`` and wait for both ports."""
        # Not pytest's tmp_path: its parents are 0700 and Dovecot's workers run as dovecot/dovenull.
        self.root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
        self.root.chmod(0o755)
        mail = self.root / "mail"
        mail.mkdir()
        shutil.chown(mail, "dovecot", "dovecot")
        self.tls = TlsCert.make(self.root)
        self.port, self.ssl_port = free_port(), free_port()
        conf = self.root / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(d=self.root, host=HOST, port=self.port, ssl_port=self.ssl_port,
                                            password=self.password))
        with open(self.root / "stdio.log", "wb") as out:
            self._proc = subprocess.Popen([self.binary, "-F", "-c", str(conf)],
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            wait_for_port(self.port, proc=self._proc)
            wait_for_port(self.ssl_port, proc=self._proc)
        except (RuntimeError, TimeoutError) as e:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"{e}\n{tail}") from None
        return self

    def stop(self) -> None:
        """Terminate the daemon, wait for it, remove the temp dir."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of Dovecot's own log and its stdout/stderr, for failure messages."""
        out = []
        for name in ("dovecot.log", "stdio.log"):
            path = self.root / name if self.root else None
            if path and path.exists():
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    # accounts
    def new_user(self) -> tuple[str, str]:
        """A user name never used before on this server (hence an empty Maildir) and its password."""
        return f"user{next(self._users)}-{os.getpid()}@test.example", self.password

    @contextmanager
    def mailbox(self, user: str) -> Iterator[MailBox]:
        """A logged-in imap-tools client with no folder selected."""
        box = MailBox(self.host, self.port).login(user, self.password, initial_folder=None)
        try:
            yield box
        finally:
            with suppress(Exception):
                box.logout()

    # mail
    def append(self, user: str, raw: bytes, internaldate: datetime, folder: str = "INBOX",
               flags: Iterable[str] = ()) -> None:
        """APPEND one message with the given INTERNALDATE (timezone-aware) and flags."""
        self.append_many(user, [(raw, internaldate)], folder, flags)

    def append_many(self, user: str, messages: Iterable[tuple[bytes, datetime]], folder: str = "INBOX",
                    flags: Iterable[str] = ()) -> int:
        """APPEND many messages over one connection (≈1 ms each); returns how many were appended."""
        flag_set = tuple(flags)
        count = 0
        with self.mailbox(user) as box:
            self._ensure_folder(box, folder)
            for raw, when in messages:
                if when.tzinfo is None:
                    raise ValueError("INTERNALDATE needs a time zone")
                box.append(raw, folder, dt=when, flag_set=flag_set)
                count += 1
        return count

    def create_folder(self, user: str, folder: str) -> None:
        with self.mailbox(user) as box:
            self._ensure_folder(box, folder)

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        with self.mailbox(user) as box:
            box.folder.set(folder, readonly=True)
            return sorted(int(u) for u in box.uids("ALL"))

    def fetch_flags(self, user: str, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID → flags (system flags with their backslash, keywords as named), without changing them."""
        items = self._fetch_item(user, folder, "FLAGS").items()
        return {uid: set(value.split()) - {"\\Recent"} for uid, value in items}

    def internaldates(self, user: str, folder: str = "INBOX") -> dict[int, datetime]:
        """UID → INTERNALDATE as an aware datetime (in the server's zone: compare instants)."""
        return {uid: datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
                for uid, value in self._fetch_item(user, folder, "INTERNALDATE").items()}

    def folders(self, user: str) -> list[str]:
        """Folder names, decoded from modified UTF-7."""
        with self.mailbox(user) as box:
            return sorted(f.name for f in box.folder.list())

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        with self.mailbox(user) as box:
            return int(box.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"])

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give ``folder`` a new, higher UIDVALIDITY (as after a server rebuild); returns it.

        Done with ``doveadm mailbox update``: Dovecot's own tool, safe with sessions open.
        The messages keep their UID numbers, which a client must now treat as unknown.
        """
        new = max(self.uidvalidity(user, folder) + 1, int(time.time()))
        doveadm = Path(self.binary).with_name("doveadm")
        if not doveadm.exists():
            doveadm = Path(shutil.which("doveadm") or "/usr/bin/doveadm")
        assert self.root is not None
        subprocess.run([str(doveadm), "-c", str(self.root / "dovecot.conf"), "mailbox", "update",
                        "-u", user, "--uid-validity", str(new), folder],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
        return new

    @staticmethod
    def _ensure_folder(box: MailBox, folder: str) -> None:
        if folder.upper() != "INBOX" and not box.folder.exists(folder):
            box.folder.create(folder)

    def _fetch_item(self, user: str, folder: str, item: str) -> dict[int, str]:
        """UID FETCH 1:* (item) → UID → the item's value as text (parentheses stripped)."""
        uid_pattern = re.compile(rb"UID (\d+)")
        item_pattern = re.compile(rf'{item} (\([^)]*\)|"[^"]*")'.encode())
        with self.mailbox(user) as box:
            box.folder.set(folder, readonly=True)
            if not box.uids("ALL"):
                return {}
            typ, data = box.client.uid("FETCH", "1:*", f"(UID {item})")
            if typ != "OK":
                raise RuntimeError(f"UID FETCH {item} failed: {data!r}")
        out = {}
        for line in data:
            line = line if isinstance(line, bytes) else line[0]
            uid, value = uid_pattern.search(line), item_pattern.search(line)
            if uid and value:
                out[int(uid[1])] = value[1].decode()[1:-1]
        return out


# -- 163-style ID proxy ----------------------------------------------------

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ImapIdProxy:
    """A TCP proxy in front of an IMAP server that behaves like imap.163.com about ID.

    Traffic is relayed both ways, but a ``SELECT``/``EXAMINE`` sent on a connection
    before any ``ID`` command is answered ``<tag> NO SELECT Unsafe Login. Please
    contact kefu@188.com for help`` and not relayed. The ``ID`` arguments each
    connection sent are kept in ``id_commands`` so tests can check them.
    """

    def __init__(self, upstream_port: int, upstream_host: str = HOST) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = HOST
        self.port = 0
        self.id_commands: list[bytes] = []
        self.rejected: list[bytes] = []
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> ImapIdProxy:
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="imap-id-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            socks, self._sockets = self._sockets, []
        for s in [self._listener, *socks]:
            if s is not None:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, 10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            _Relay(self, client, server).start()


class _Relay:
    """One proxied connection: server→client copied as is, client→server read line by line."""

    def __init__(self, proxy: ImapIdProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.client_file = client.makefile("rb")
        self.to_client = threading.Lock()
        self.id_seen = False

    def start(self) -> None:
        threading.Thread(target=self._server_to_client, daemon=True).start()
        threading.Thread(target=self._client_to_server, daemon=True).start()

    def _server_to_client(self) -> None:
        with suppress(OSError):
            while data := self.server.recv(65536):
                with self.to_client:
                    self.client.sendall(data)
        self._close()

    def _client_to_server(self) -> None:
        with suppress(OSError, ValueError):
            while line := self.client_file.readline():
                if self._allowed(line):
                    self._relay_command(line)

    def _allowed(self, line: bytes) -> bool:
        """Note ID; answer SELECT/EXAMINE before ID as 163.com does instead of relaying it."""
        words = line.split(None, 2)
        name = words[1].upper() if len(words) > 1 else b""
        if name == b"ID":
            self.id_seen = True
            self.proxy.id_commands.append(line.rstrip())
        if name in (b"SELECT", b"EXAMINE") and not self.id_seen:
            self.proxy.rejected.append(line.rstrip())
            with self.to_client:
                self.client.sendall(words[0] + b" " + NETEASE_UNSAFE.encode() + b"\r\n")
            return False
        return True

    def _relay_command(self, line: bytes) -> None:
        """Relay a command line and, as they come, its literals (the client waits for the "+" of each)."""
        while True:
            self.server.sendall(line)
            match = _LITERAL.search(line)
            if not match:
                return
            self.server.sendall(self.client_file.read(int(match[1])))
            line = self.client_file.readline()

    def _close(self) -> None:
        for s in (self.client, self.server):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


# -- a fault-injecting IMAP relay -------------------------------------------

_FETCH_LINE = re.compile(rb"^(\* \d+ FETCH \()(.*)(\)\r\n)$", re.S)
_FETCH_ITEM = re.compile(rb'([A-Za-z0-9.]+(?:\[[^\]]*\](?:<[\d.]+>)?)?) ("(?:[^"\\]|\\.)*"|\([^)]*\)|[^ ()]+)')
_CAPABILITY = re.compile(rb"(\* CAPABILITY |\[CAPABILITY )([^\]\r\n]*)")


@dataclass
class Refusal:
    """A command the relay answers itself instead of relaying (see ``ImapRelay.refuse``)."""

    command: str  # upper case, "UID " included: "UID MOVE", "UID STORE", "SELECT", ...
    folder: str | None  # only while this folder (decoded name) is selected; None: in any folder
    reply: str
    remaining: int | None  # None: every time

    def matches(self, command: str, folder: str | None) -> bool:
        return (self.command == command and (self.folder is None or self.folder == folder)
                and (self.remaining is None or self.remaining > 0))


def reorder_fetch(order: Iterable[str], drop: Iterable[str] = ()) -> Callable[[bytes], bytes]:
    """A server-line rewrite for ``ImapRelay.rewrite``: the items of each FETCH response without literals
    put in ``order`` (names not listed keep their place after them), those in ``drop`` left out."""
    rank = {name.upper().encode(): i for i, name in enumerate(order)}
    dropped = {name.upper().encode() for name in drop}

    def rewrite(line: bytes) -> bytes:
        match = _FETCH_LINE.match(line)
        if not match:
            return line
        items = [(m[1], m[2]) for m in _FETCH_ITEM.finditer(match[2]) if m[1].upper() not in dropped]
        items.sort(key=lambda item: rank.get(item[0].upper(), len(rank)))
        return match[1] + b" ".join(name + b" " + value for name, value in items) + match[3]

    return rewrite


class ImapRelay:
    """A TCP relay in front of an IMAP server (Dovecot) that misbehaves on purpose, for fault tests.

    - ``refuse("UID MOVE", folder="INBOX")``: that command (while that folder is selected, or anywhere)
      is answered ``<tag> NO ...`` by the relay and never reaches the server;
    - ``hide_capabilities("MOVE", "UIDPLUS")``: those names are removed from every CAPABILITY list;
    - ``rewrite``: a function applied to each server line that has no literal (``reorder_fetch``);
    - ``commands``: every command line the clients sent, without tag (LOGIN's arguments masked).
    Literals are relayed as they come, both ways. One instance serves any number of connections.
    """

    def __init__(self, upstream_port: int, upstream_host: str = HOST) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = HOST
        self.port = 0
        self.refusals: list[Refusal] = []
        self.refused: list[str] = []
        self.hidden: set[bytes] = set()
        self.rewrite: Callable[[bytes], bytes] | None = None
        self.commands: list[str] = []
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def refuse(self, command: str, folder: str | None = None, count: int | None = None,
               reply: str = "NO [UNAVAILABLE] refused on purpose by the test relay") -> ImapRelay:
        """Answer ``command`` (e.g. ``"UID STORE"``) with ``reply`` instead of relaying it: in ``folder``
        only when given, the next ``count`` times or always."""
        self.refusals.append(Refusal(command.upper(), folder, reply, count))
        return self

    def allow_all(self) -> None:
        """Stop refusing anything."""
        self.refusals.clear()

    def hide_capabilities(self, *names: str) -> ImapRelay:
        self.hidden |= {n.upper().encode() for n in names}
        return self

    def sent(self, prefix: str) -> list[str]:
        """The command lines sent so far that start with ``prefix`` (case-insensitive)."""
        return [c for c in self.commands if c.upper().startswith(prefix.upper())]

    def start(self) -> ImapRelay:
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="imap-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            socks, self._sockets = self._sockets, []
        for s in [self._listener, *socks]:
            if s is not None:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, 10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            _RelayedSession(self, client, server).start()

    def _refusal(self, command: str, folder: str | None) -> str | None:
        with self._lock:
            for refusal in self.refusals:
                if refusal.matches(command, folder):
                    if refusal.remaining is not None:
                        refusal.remaining -= 1
                    self.refused.append(command)
                    return refusal.reply
        return None

    def _server_line(self, line: bytes) -> bytes:
        if self.hidden:
            def strip(m: re.Match[bytes]) -> bytes:
                return m[1] + b" ".join(w for w in m[2].split() if w.upper() not in self.hidden)
            line = _CAPABILITY.sub(strip, line)
        if self.rewrite is not None:
            line = self.rewrite(line)
        return line


class _RelayedSession:
    """One connection through ``ImapRelay``: commands read line by line, server lines rewritten."""

    def __init__(self, relay: ImapRelay, client: socket.socket, server: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.server = server
        self.client_file = client.makefile("rb")
        self.server_file = server.makefile("rb")
        self.to_client = threading.Lock()
        self.folder: str | None = None

    def start(self) -> None:
        threading.Thread(target=self._server_to_client, daemon=True).start()
        threading.Thread(target=self._client_to_server, daemon=True).start()

    def _server_to_client(self) -> None:
        with suppress(OSError, ValueError):
            while line := self.server_file.readline():
                literal = _LITERAL.search(line)
                out = line if literal else self.relay._server_line(line)
                if literal:
                    out += self.server_file.read(int(literal[1]))
                with self.to_client:
                    self.client.sendall(out)
        self._close()

    def _client_to_server(self) -> None:
        with suppress(OSError, ValueError):
            while line := self.client_file.readline():
                words = line.rstrip(b"\r\n").split(b" ")
                tag = words[0]
                command = b" ".join(words[1:3] if words[1:2] and words[1].upper() == b"UID" else words[1:2])
                name = command.decode("ascii", "replace").upper()
                text = b" ".join(words[1:]).decode("utf-8", "replace")
                self.relay.commands.append(name + " ***" if name in ("LOGIN", "AUTHENTICATE") else text)
                if name in ("SELECT", "EXAMINE") and len(words) > 2:
                    self.folder = utf7_decode(b" ".join(words[2:]).strip(b'"'))
                reply = None if _LITERAL.search(line) else self.relay._refusal(name, self.folder)
                if reply is not None:
                    with self.to_client:
                        self.client.sendall(tag + b" " + reply.encode() + b"\r\n")
                    continue
                self._relay_command(line)

    def _relay_command(self, line: bytes) -> None:
        while True:
            self.server.sendall(line)
            match = _LITERAL.search(line)
            if not match:
                return
            self.server.sendall(self.client_file.read(int(match[1])))
            line = self.client_file.readline()

    def _close(self) -> None:
        for s in (self.client, self.server):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


# -- SMTP ------------------------------------------------------------------


@dataclass(frozen=True)
class Captured:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class _Failure:
    stage: str  # MAIL, RCPT or DATA
    reply: str
    remaining: int


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1 that keeps what it accepts and fails on demand.

    ``password`` set: AUTH PLAIN/LOGIN offered (also without TLS) and required.
    ``tls`` set: STARTTLS offered, or the whole connection is TLS when ``implicit_tls``.
    The port survives ``stop()``/``start()``, so a restart looks like a server that was down.
    """

    password: str | None = None
    tls: TlsCert | None = None
    implicit_tls: bool = False
    host: str = HOST
    port: int = field(default_factory=free_port)
    messages: list[Captured] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    noops: int = 0  # NOOP commands answered
    _failures: list[_Failure] = field(default_factory=list)
    _controller: Controller | None = None
    _data_delays: list[list[float]] = field(default_factory=list)  # [seconds, remaining]

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port, "server_hostname": "smtp.test"}
        if self.password is not None:
            # Required in handle_MAIL, not with auth_required: aiosmtpd warns about that without TLS.
            kwargs |= {"authenticator": self._authenticate, "auth_require_tls": False}
        if self.tls is not None and self.implicit_tls:
            kwargs["ssl_context"] = self.tls.server_context()
        elif self.tls is not None:
            kwargs["tls_context"] = self.tls.server_context()
        self._controller = Controller(_Handler(self), **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def fail_next(self, reply: str, count: int = 1, stage: str = "DATA") -> None:
        """Answer ``reply`` (``451 DT:SPM ...``) at ``stage`` (MAIL, RCPT, DATA) for the next ``count``."""
        if stage not in ("MAIL", "RCPT", "DATA"):
            raise ValueError(f"unknown SMTP stage {stage}")
        self._failures.append(_Failure(stage, reply, count))

    def answer_data_late(self, seconds: float, count: int = 1) -> None:
        """For the next ``count`` messages: keep the message (it is in ``messages``, as delivered), then
        wait ``seconds`` before answering ``250`` to DATA, so a client with a shorter timeout gives up
        not knowing it was sent."""
        self._data_delays.append([seconds, count])

    def _data_delay(self) -> float:
        for delay in self._data_delays:
            if delay[1] > 0:
                delay[1] -= 1
                return delay[0]
        return 0.0

    def smtp_config(self, **overrides: Any) -> SmtpConfig:
        """An ``SmtpConfig`` pointing at this server (login and TLS mode as the server wants)."""
        values: dict[str, Any] = {
            "host": self.host, "port": self.port, "ssl": self.implicit_tls,
            "starttls": self.tls is not None and not self.implicit_tls,
            "user": "xzip2019@163.com" if self.password is not None else "",
            "password_env": "INTAKE_SMTP_PASSWORD", "password": self.password or "",
            "sender": "徐州市知识产权局 <xzip2019@163.com>", "max_replies_per_poll": 30, "timeout_seconds": 5,
        }
        return SmtpConfig(**(values | overrides))

    def failure_for(self, stage: str) -> str | None:
        for failure in self._failures:
            if failure.stage == stage and failure.remaining > 0:
                failure.remaining -= 1
                return failure.reply
        return None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mech: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        if self.server.password is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if reply := self.server.failure_for("MAIL"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        self.server.noops += 1
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        if reply := self.server.failure_for("RCPT"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if reply := self.server.failure_for("DATA"):
            return reply
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        self.server.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        if delay := self.server._data_delay():
            await asyncio.sleep(delay)
        return "250 OK queued"


# -- a test's IMAP account -------------------------------------------------


@dataclass(frozen=True)
class ImapAccount:
    """A fresh, empty mailbox on the test Dovecot (or behind the 163-style proxy, see ``proxy``)."""

    server: Dovecot
    user: str
    password: str
    host: str
    port: int
    password_env: str = "INTAKE_IMAP_PASSWORD"
    proxy: ImapIdProxy | None = None
    ssl: bool = False  # the port speaks TLS from the first byte (Dovecot's imaps port)
    ca_file: str = ""  # the certificate a client must trust to reach it (not in the settings by default)
    relay: ImapRelay | None = None

    def mailbox_settings(self, **overrides: Any) -> dict[str, Any]:
        """The ``[mailbox]`` table of a config for this account (the password is in ``password_env``)."""
        return {"host": self.host, "port": self.port, "ssl": self.ssl, "user": self.user,
                "password_env": self.password_env, "folder": "INBOX", "processed_folder": "",
                "imap_id": True} | overrides

    def mailbox_config(self, **overrides: Any) -> MailboxConfig:
        values = {"sent_folder": "已发送", "batch_size": 50, "timeout_seconds": 10, "password": self.password}
        return MailboxConfig(**(self.mailbox_settings() | values | overrides))

    def append(self, raw: bytes, internaldate: datetime, folder: str = "INBOX",
               flags: Iterable[str] = ()) -> None:
        self.server.append(self.user, raw, internaldate, folder, flags)

    def append_many(self, messages: Iterable[tuple[bytes, datetime]], folder: str = "INBOX",
                    flags: Iterable[str] = ()) -> int:
        return self.server.append_many(self.user, messages, folder, flags)

    def uids(self, folder: str = "INBOX") -> list[int]:
        return self.server.uids(self.user, folder)

    def fetch_flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        return self.server.fetch_flags(self.user, folder)

    def internaldates(self, folder: str = "INBOX") -> dict[int, datetime]:
        return self.server.internaldates(self.user, folder)

    def folders(self) -> list[str]:
        return self.server.folders(self.user)

    def create_folder(self, folder: str) -> None:
        self.server.create_folder(self.user, folder)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        return self.server.uidvalidity(self.user, folder)

    def reset_uidvalidity(self, folder: str = "INBOX") -> int:
        return self.server.reset_uidvalidity(self.user, folder)
