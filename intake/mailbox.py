"""The IMAP edge: log in (with RFC 2971 ID for 163.com), find new UIDs, fetch, flag and move.

Built on imap-tools. Bodies are fetched with ``BODY.PEEK[]`` so reading never
marks mail seen; INTERNALDATE (which imap-tools does not fetch) comes from a
separate metadata request without literals, so the parsing is simple and
robust across servers. Nothing here deletes mail.
"""

from __future__ import annotations

import imaplib
import itertools
import logging
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from imap_tools import MailBox, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError

from intake.config import MailboxConfig
from intake.errors import MailboxError

log = logging.getLogger(__name__)

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
CLIENT_ID = '("name" "xzip-intake" "version" "0.1" "vendor" "Xuzhou IP Bureau")'
_META = re.compile(rb'UID (\d+).*?INTERNALDATE "([^"]+)".*?RFC822\.SIZE (\d+)|'
                   rb'RFC822\.SIZE (\d+).*?UID (\d+).*?INTERNALDATE "([^"]+)"')
_UID = re.compile(rb"UID (\d+)")
IMAP_ERRORS = (imaplib.IMAP4.error, ImapToolsError, OSError, ssl.SSLError, socket.timeout, EOFError)


def parse_internaldate(text: str) -> datetime:
    """``" 8-Nov-2024 23:59:59 +0800"`` → an aware datetime keeping the server's offset."""
    return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")


@dataclass(frozen=True)
class MessageMeta:
    uid: int
    internaldate: datetime
    size: int


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    internaldate: datetime
    size: int
    raw: bytes


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def uid_ranges(uids: Iterable[int]) -> list[str]:
    """Ascending runs as IMAP sequence-set parts: ``[1, 2, 3, 7]`` → ``["1:3", "7"]``."""
    parts = []
    # Within a run of consecutive UIDs, UID minus its position is constant.
    for _, group in itertools.groupby(enumerate(sorted(set(uids))), key=lambda pair: pair[1] - pair[0]):
        run = [uid for _, uid in group]
        parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
    return parts


def _uid_set(uids: Sequence[int]) -> str:
    return ",".join(uid_ranges(uids))


class Mailbox:
    """One logged-in IMAP session on the configured folder. Use as a context manager."""

    def __init__(self, cfg: MailboxConfig) -> None:
        self.cfg = cfg
        self.box: MailBox | MailBoxUnencrypted | None = None
        self.uidvalidity = 0
        self.bodies_fetched = 0

    # -- session ----------------------------------------------------------
    def __enter__(self) -> Mailbox:
        try:
            self._connect()
        except IMAP_ERRORS as e:
            self.close()
            raise MailboxError(f"IMAP {self.cfg.host}:{self.cfg.port}: {_reason(e)}") from e
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> None:
        cls = MailBox if self.cfg.ssl else MailBoxUnencrypted
        self.box = cls(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_seconds)
        self.box.login(self.cfg.user, self.cfg.password, initial_folder=None)
        if self.cfg.imap_id:
            self.send_id()
        self.select(self.cfg.folder)

    def send_id(self) -> None:
        """Send the RFC 2971 ID command; 163.com refuses SELECT ("Unsafe Login") without it."""
        client = self.client
        typ, data = client._simple_command("ID", CLIENT_ID)  # type: ignore[attr-defined]
        client._untagged_response(typ, data, "ID")  # type: ignore[attr-defined]
        if typ != "OK":
            raise MailboxError(f"IMAP ID command refused: {data!r}")

    def select(self, folder: str) -> None:
        box = self._box()
        try:
            box.folder.set(folder)
        except ImapToolsError as e:
            hint = " (163.com needs mailbox.imap_id = true)" if b"Unsafe Login" in repr(e).encode() else ""
            raise MailboxError(f"cannot select folder {folder!r}: {_reason(e)}{hint}") from e
        status = box.folder.status(folder, ["UIDVALIDITY"])
        self.uidvalidity = int(status["UIDVALIDITY"])

    def close(self) -> None:
        if self.box is not None:
            try:
                self.box.logout()
            except Exception:  # noqa: BLE001 - closing a connection that may already be dead
                pass
            self.box = None

    def _box(self) -> MailBox | MailBoxUnencrypted:
        if self.box is None:
            raise MailboxError("not connected")
        return self.box

    @property
    def client(self) -> imaplib.IMAP4:
        return self._box().client

    def _run(self, what: str, *args: str) -> list:
        try:
            typ, data = self.client.uid(*args)
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP {what} failed: {_reason(e)}") from e
        if typ != "OK":
            raise MailboxError(f"IMAP {what} failed: {data!r}")
        return list(data or [])

    # -- reading ----------------------------------------------------------
    def uids_from(self, start: int) -> list[int]:
        """UIDs ≥ ``start`` in the folder, ascending (``n:*`` always includes the top UID: filtered)."""
        data = self._run("SEARCH", "SEARCH", f"UID {max(start, 1)}:*")
        uids = [int(u) for u in (data[0] or b"").split()] if data else []
        return sorted(u for u in uids if u >= start)

    def meta(self, uids: Sequence[int]) -> list[MessageMeta]:
        """INTERNALDATE and size of each UID, without fetching bodies."""
        out = []
        for batch in _chunks(uids, 500):
            for item in self._run("FETCH", "FETCH", _uid_set(batch), "(UID INTERNALDATE RFC822.SIZE)"):
                line = item[0] if isinstance(item, tuple) else item
                m = _META.search(line or b"")
                if m:
                    uid, date, size = (m[1], m[2], m[3]) if m[1] else (m[5], m[6], m[4])
                    out.append(MessageMeta(int(uid), parse_internaldate(date.decode()), int(size)))
        return sorted(out, key=lambda m: m.uid)

    def message_ids(self, uids: Sequence[int]) -> dict[int, str]:
        """The Message-ID header of each UID (headers only), for matching after a UIDVALIDITY change."""
        out: dict[int, str] = {}
        for batch in _chunks(uids, 200):
            data = self._run("FETCH", "FETCH", _uid_set(batch), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            for item in data:
                if isinstance(item, tuple):
                    uid = _UID.search(item[0])
                    mid = re.search(rb"(?im)^message-id:\s*(.+?)\s*$", item[1] or b"")
                    if uid and mid:
                        out[int(uid[1])] = mid[1].decode("ascii", "replace")
        return out

    def fetch(self, metas: Sequence[MessageMeta]) -> Iterator[FetchedMessage]:
        """Bodies of the given messages (``BODY.PEEK[]``: not marked seen), one request per batch."""
        by_uid = {m.uid: m for m in metas}
        for batch in _chunks([m.uid for m in metas], self.cfg.batch_size):
            bodies: dict[int, bytes] = {}
            for item in self._run("FETCH", "FETCH", _uid_set(batch), "(UID BODY.PEEK[])"):
                if isinstance(item, tuple):
                    uid = _UID.search(item[0])
                    if uid:
                        bodies[int(uid[1])] = item[1]
            for uid in batch:
                if uid in bodies:
                    self.bodies_fetched += 1
                    meta = by_uid[uid]
                    yield FetchedMessage(uid, meta.internaldate, meta.size, bodies[uid])

    # -- acting -----------------------------------------------------------
    def mark_processed(self, uids: Sequence[int], processed_folder: str) -> None:
        """Flag ``\\Seen``, then move to ``processed_folder`` when set. Never deletes."""
        if not uids:
            return
        box = self._box()
        try:
            if processed_folder:
                self.ensure_folder(processed_folder)
            # Bounded commands: Dovecot refuses a line over 64 KiB ("Too long argument"), and a first poll
            # of a full mailbox flags thousands of UIDs at once.
            for batch in _chunks(uids, 500):
                ranges = uid_ranges(batch)
                box.flag(ranges, "\\Seen", True)
                if processed_folder:
                    box.move(ranges, processed_folder)
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP flag/move failed: {_reason(e)}") from e

    def folder_exists(self, name: str) -> bool:
        try:
            return bool(self._box().folder.exists(name))
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP LIST {name!r} failed: {_reason(e)}") from e

    def ensure_folder(self, name: str) -> None:
        if not self.folder_exists(name):
            self._box().folder.create(name)

    def append(self, folder: str, raw: bytes, flags: Sequence[str] = ("\\Seen",)) -> None:
        try:
            self.ensure_folder(folder)
            self._box().append(raw, folder, flag_set=list(flags))
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP APPEND to {folder!r} failed: {_reason(e)}") from e

    def contains_message_id(self, folder: str, message_id: str) -> bool:
        """Whether ``folder`` holds a message with this Message-ID (the reply's proof of sending)."""
        box = self._box()
        try:
            if not box.folder.exists(folder):
                return False
            current = box.folder.get()
            box.folder.set(folder)
            try:
                found = box.uids(f'HEADER Message-ID "{message_id}"')
            finally:
                box.folder.set(current or self.cfg.folder)
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP search in {folder!r} failed: {_reason(e)}") from e
        return bool(found)

    def headers(self, uids: Sequence[int], limit: int = 1024 * 1024) -> dict[int, bytes]:
        """The header block of each UID (``BODY.PEEK[HEADER]``, at most ``limit`` bytes each, not marked seen):
        enough to know the sender of a message too big to fetch whole."""
        out: dict[int, bytes] = {}
        for batch in _chunks(uids, 50):
            data = self._run("FETCH", "FETCH", _uid_set(batch), f"(UID BODY.PEEK[HEADER]<0.{limit}>)")
            for item in data:
                if isinstance(item, tuple):
                    uid = _UID.search(item[0])
                    if uid:
                        out[int(uid[1])] = item[1] or b""
        return out


def _reason(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    return text.splitlines()[0][:300]
