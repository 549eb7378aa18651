"""The IMAP edge: log in over verified TLS (with RFC 2971 ID for 163.com), find new UIDs, fetch, flag, move.

Built on imap-tools and imaplib. Bodies are fetched with ``BODY.PEEK[]`` so
reading never marks mail seen, in batches bounded by count and by bytes.
FETCH responses are parsed item by item (``intake.fetchparse``), so the order a
server sends UID/INTERNALDATE/RFC822.SIZE in does not matter, and every UID
asked for is either returned or reported missing. Nothing here deletes mail:
no EXPUNGE is ever sent except ``UID EXPUNGE`` of our own, already copied UIDs
on a server with UIDPLUS but without MOVE.
"""

from __future__ import annotations

import imaplib
import itertools
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError
from imap_tools.utils import encode_folder

from intake.config import MailboxConfig
from intake.errors import MailboxError
from intake.fetchparse import FetchParseError, fetch_items
from intake.sentcopies import ReplyKeys, usable
from intake.tls import describe_tls_error, verified_context

log = logging.getLogger(__name__)

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
CLIENT_ID = '("name" "xzip-intake" "version" "0.1" "vendor" "Xuzhou IP Bureau")'
IMAP_ERRORS = (imaplib.IMAP4.error, ImapToolsError, OSError, ssl.SSLError, socket.timeout, EOFError)
UIDS_PER_COMMAND = 500  # as ranges; Dovecot refuses a command line over 64 KiB ("Too long argument")
OnMissing = Callable[[int, str], None]
# Looking for replies in the Sent folder (``reply_headers``): keys per SEARCH command and its length (RFC 7162
# asks clients to keep command lines near 8192 octets), UIDs per header FETCH and bytes of header fields read
# per message at most.
SEARCH_KEYS_PER_COMMAND, SEARCH_COMMAND_BYTES = 50, 8 * 1024
HEADERS_PER_FETCH, HEADER_FIELDS_BYTES = 200, 8 * 1024
SENT_FIELDS = "(MESSAGE-ID IN-REPLY-TO X-INTAKE-OUTCOME)"
_warned_no_move: set[tuple[str, str]] = set()  # (host, user) told once per process that moving is impossible


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


def fetch_batches(metas: Sequence[MessageMeta], max_count: int, max_bytes: int) -> Iterator[list[MessageMeta]]:
    """``metas`` in order, cut into batches of at most ``max_count`` messages whose sizes add up to at most
    ``max_bytes``; a message larger than ``max_bytes`` on its own goes alone."""
    batch: list[MessageMeta] = []
    total = 0
    for meta in metas:
        if batch and (len(batch) >= max_count or total + meta.size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(meta)
        total += meta.size
    if batch:
        yield batch


def search_value(value: str) -> tuple[str, bytes | None]:
    """A SEARCH argument for ``value``: a quoted string when it is plain ASCII, else a literal.

    Returns ``(argument, literal)``: with a literal the argument is empty and the literal (UTF-8) must
    be the command's last argument (imaplib sends it as ``{n}``). CR, LF and NUL are dropped first:
    no header value holds them after unfolding, and they would end the command early.
    """
    cleaned = re.sub(r"[\r\n\0]+", "", value)
    if cleaned.isascii() and cleaned.isprintable():
        return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"', None
    return "", cleaned.encode("utf-8")


class MetaList(list[MessageMeta]):
    """``meta()``'s answer: the messages found, ascending by UID, and ``missing``: the UIDs asked for
    that came back without a complete answer (gone meanwhile, or a server that left items out)."""

    missing: list[int]

    def __init__(self, metas: Iterable[MessageMeta] = (), missing: Iterable[int] = ()) -> None:
        super().__init__(metas)
        self.missing = sorted(missing)


def _log_missing(uid: int, reason: str) -> None:
    log.warning("uid=%s: %s; left for the next poll", uid, reason)


class Mailbox:
    """One logged-in IMAP session. Use as a context manager; ``select`` switches folders."""

    def __init__(self, cfg: MailboxConfig) -> None:
        self.cfg = cfg
        self.box: MailBox | MailBoxStartTls | MailBoxUnencrypted | None = None
        self.folder = ""
        self.uidvalidity = 0
        self.bodies_fetched = 0
        self._capabilities: set[str] | None = None
        self._folders_made: set[str] = set()  # known to exist in this session (``ensure_folder``)

    # -- session ----------------------------------------------------------
    def __enter__(self) -> Mailbox:
        try:
            self._connect()
        except (*IMAP_ERRORS, ValueError) as e:  # ValueError: imap-tools refuses STARTTLS on port 993
            self.close()
            raise MailboxError(f"IMAP {self.cfg.host}:{self.cfg.port}: {_reason(e, 'mailbox.ca_file')}") from e
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def mode(self) -> str:
        """How the connection is protected: ``SSL``, ``STARTTLS`` or ``plain``."""
        return "SSL" if self.cfg.ssl else "STARTTLS" if getattr(self.cfg, "starttls", False) else "plain"

    def _connect(self) -> None:
        timeout = self.cfg.timeout_seconds
        if self.mode == "plain":
            self.box = MailBoxUnencrypted(self.cfg.host, self.cfg.port, timeout=timeout)
        else:
            context = verified_context(self.cfg.ca_file, "mailbox.ca_file")
            cls = MailBox if self.mode == "SSL" else MailBoxStartTls
            self.box = cls(self.cfg.host, self.cfg.port, timeout=timeout, ssl_context=context)
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

    def select(self, folder: str, readonly: bool = False) -> int:
        """Make ``folder`` (any name, Chinese included) the current folder; returns its UIDVALIDITY,
        also kept in ``self.uidvalidity`` (and the name in ``self.folder``)."""
        box = self._box()
        try:
            box.folder.set(folder, readonly=readonly)
            found = self.client.untagged_responses.get("UIDVALIDITY") or [None]
            validity = int(found[-1]) if found[-1] is not None else None
            if validity is None:  # a server that left it out of SELECT's answer
                validity = int(box.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"])
        except IMAP_ERRORS as e:
            hint = " (163.com needs mailbox.imap_id = true)" if b"Unsafe Login" in repr(e).encode() else ""
            raise MailboxError(f"cannot select folder {folder!r}: {_reason(e)}{hint}") from e
        self.folder, self.uidvalidity = folder, validity
        return validity

    def close(self) -> None:
        if self.box is not None:
            try:
                self.box.logout()
            except Exception:  # noqa: BLE001 - closing a connection that may already be dead
                pass
            self.box = None
        self._capabilities = None
        self._folders_made = set()

    def _box(self) -> MailBox | MailBoxStartTls | MailBoxUnencrypted:
        if self.box is None:
            raise MailboxError("not connected")
        return self.box

    @property
    def client(self) -> imaplib.IMAP4:
        return self._box().client

    @property
    def capabilities(self) -> set[str]:
        """What the server offers after login (asked once per session: the greeting's list is shorter)."""
        if self._capabilities is None:
            try:
                typ, data = self.client.capability()
            except IMAP_ERRORS as e:
                raise MailboxError(f"IMAP CAPABILITY failed: {_reason(e)}") from e
            words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace").upper().split()
            self._capabilities = set(words) if typ == "OK" else {c.upper() for c in self.client.capabilities}
        return self._capabilities

    def _run(self, what: str, *args: str) -> list:
        try:
            typ, data = self.client.uid(*args)
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP {what} failed: {_reason(e)}") from e
        if typ != "OK":
            raise MailboxError(f"IMAP {what} failed: {data!r}")
        return list(data or [])

    def _fetch(self, uids: Sequence[int], items: str) -> dict[int, dict]:
        """``UID FETCH`` → UID → its data items (any order, merged when a server splits them)."""
        data = self._run("FETCH", "FETCH", _uid_set(uids), items)
        try:
            responses = fetch_items(data)
        except FetchParseError as e:
            raise MailboxError(f"IMAP FETCH answer not understood: {e}") from e
        return {r.uid: r.items for r in responses if r.uid is not None}

    # -- reading ----------------------------------------------------------
    def uids_from(self, start: int) -> list[int]:
        """UIDs ≥ ``start`` in the folder, ascending (``n:*`` always includes the top UID: filtered)."""
        data = self._run("SEARCH", "SEARCH", f"UID {max(start, 1)}:*")
        uids = [int(u) for u in (data[0] or b"").split()] if data else []
        return sorted(u for u in uids if u >= start)

    def meta(self, uids: Sequence[int], on_missing: OnMissing | None = _log_missing) -> MetaList:
        """INTERNALDATE and size of each UID, without fetching bodies.

        Every UID is accounted for: those without a complete answer are in the result's ``missing``
        (and passed to ``on_missing(uid, reason)``, which by default logs a warning).
        """
        found: dict[int, MessageMeta] = {}
        reasons: dict[int, str] = {}
        for batch in _chunks(uids, UIDS_PER_COMMAND):
            items = self._fetch(batch, "(UID INTERNALDATE RFC822.SIZE)")
            late = [u for u in batch if u in items and "INTERNALDATE" not in items[u]]
            if late:  # some servers leave an item out: ask for it alone once
                for uid, extra in self._fetch(late, "(UID INTERNALDATE)").items():
                    items.setdefault(uid, {}).update(extra)
            for uid in batch:
                meta, reason = _meta_from(uid, items.get(uid))
                if meta is not None:
                    found[uid] = meta
                else:
                    reasons[uid] = reason
        for uid, reason in reasons.items():
            if on_missing is not None:
                on_missing(uid, reason)
        return MetaList(sorted(found.values(), key=lambda m: m.uid), reasons)

    def message_ids(self, uids: Sequence[int]) -> dict[int, str]:
        """The Message-ID header of each UID (headers only), for matching after a UIDVALIDITY change."""
        out: dict[int, str] = {}
        for batch in _chunks(uids, 200):
            for uid, items in self._fetch(batch, "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").items():
                header = next((v for k, v in items.items() if k.startswith("BODY[")), None)
                mid = re.search(rb"(?im)^message-id:\s*(.+?)\s*$", header) if isinstance(header, bytes) else None
                if mid:
                    out[uid] = mid[1].decode("ascii", "replace")
        return out

    def fetch(self, metas: Sequence[MessageMeta], on_missing: OnMissing | None = _log_missing
              ) -> Iterator[FetchedMessage]:
        """Bodies of the given messages (``BODY.PEEK[]``: not marked seen), in ascending UID order.

        One request per batch of at most ``batch_size`` messages and ``max_fetch_bytes`` bytes by
        RFC822.SIZE (a larger message is fetched alone). A UID whose body does not come back is passed to
        ``on_missing(uid, reason)`` (by default logged) and not yielded.
        """
        max_bytes = getattr(self.cfg, "max_fetch_bytes", 0) or 1 << 62
        for batch in fetch_batches(sorted(metas, key=lambda m: m.uid), self.cfg.batch_size, max_bytes):
            bodies = self._fetch([m.uid for m in batch], "(UID BODY.PEEK[])")
            for meta in batch:
                body = bodies.get(meta.uid, {}).get("BODY[]")
                if isinstance(body, bytes):
                    self.bodies_fetched += 1
                    yield FetchedMessage(meta.uid, meta.internaldate, meta.size, body)
                elif on_missing is not None:
                    on_missing(meta.uid, "FETCH returned no body")
            del bodies

    # -- acting -----------------------------------------------------------
    def mark_processed(self, uids: Sequence[int], processed_folder: str) -> None:
        """Flag ``\\Seen`` (``UID STORE``, no EXPUNGE), then move to ``processed_folder`` when set.

        Never deletes: moving uses ``UID MOVE``; without MOVE, COPY + ``\\Deleted`` + ``UID EXPUNGE`` of
        exactly our UIDs when the server has UIDPLUS; otherwise the message stays, flagged, where it is.
        """
        if not uids:
            return
        try:
            if processed_folder:
                self.ensure_folder(processed_folder)
            move = self._move_method() if processed_folder else None
            for batch in _chunks(uids, UIDS_PER_COMMAND):
                uid_set = _uid_set(batch)
                self._run("STORE", "STORE", uid_set, "+FLAGS.SILENT", "(\\Seen)")
                if move is not None:
                    move(uid_set, processed_folder)
        except IMAP_ERRORS as e:
            self._folders_made.discard(processed_folder)
            raise MailboxError(f"IMAP flag/move failed: {_reason(e)}") from e
        except MailboxError:
            self._folders_made.discard(processed_folder)
            raise

    def _move_method(self) -> Callable[[str, str], None] | None:
        caps = self.capabilities
        if "MOVE" in caps:
            return self._uid_move
        if "UIDPLUS" in caps:
            return self._copy_then_expunge_ours
        key = (self.cfg.host, self.cfg.user)
        if key not in _warned_no_move:
            _warned_no_move.add(key)
            log.warning("IMAP %s offers neither MOVE nor UIDPLUS: processed mail is flagged \\Seen but stays in "
                        "%s (moving would expunge other clients' deleted mail)", self.cfg.host, self.folder)
        return None

    def _uid_move(self, uid_set: str, folder: str) -> None:
        self._run("MOVE", "MOVE", uid_set, encode_folder(folder).decode("ascii"))

    def _copy_then_expunge_ours(self, uid_set: str, folder: str) -> None:
        self._run("COPY", "COPY", uid_set, encode_folder(folder).decode("ascii"))
        self._run("STORE", "STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
        self._run("UID EXPUNGE", "EXPUNGE", uid_set)  # UIDPLUS: only these UIDs, never another client's

    def folder_exists(self, name: str) -> bool:
        try:
            return bool(self._box().folder.exists(name))
        except IMAP_ERRORS as e:
            raise MailboxError(f"IMAP LIST {name!r} failed: {_reason(e)}") from e

    def ensure_folder(self, name: str) -> None:
        """Create ``name`` unless it exists; asked once per session (a later APPEND or MOVE into it that fails
        makes the next call ask again)."""
        if name in self._folders_made:
            return
        if not self.folder_exists(name):
            try:
                self._box().folder.create(name)
            except IMAP_ERRORS as e:
                raise MailboxError(f"IMAP CREATE {name!r} failed: {_reason(e)}") from e
        self._folders_made.add(name)

    def append(self, folder: str, raw: bytes, flags: Sequence[str] = ("\\Seen",)) -> None:
        try:
            self.ensure_folder(folder)
            self._box().append(raw, folder, flag_set=list(flags))
        except IMAP_ERRORS as e:
            self._folders_made.discard(folder)
            raise MailboxError(f"IMAP APPEND to {folder!r} failed: {_reason(e)}") from e

    def reply_headers(self, folder: str, replies: Sequence[ReplyKeys], each: Callable[[bytes], None]) -> int:
        """Pass ``each`` the header fields ``sentcopies.FIELDS`` of every message in ``folder`` that the
        server's SEARCH finds for one of ``replies`` (by Message-ID, or by In-Reply-To and X-Intake-Outcome):
        candidates, which the caller compares exactly (SEARCH matches parts of values). Returns how many.

        One look for all the replies of a stage: the folder is examined once, the replies are searched
        ``SEARCH_KEYS_PER_COMMAND`` at a time (a value that is not plain ASCII alone, as a UTF-8 literal),
        the candidates' header fields are fetched ``HEADERS_PER_FETCH`` at a time and at most
        ``HEADER_FIELDS_BYTES`` each, and the current folder is selected again afterwards. What is sent and
        kept grows with the replies asked about, not with the folder. A folder that does not exist holds
        nothing; one that cannot be examined or searched raises ``MailboxError``."""
        keys = _search_keys(replies)
        if not keys or not self.folder_exists(folder):
            return 0
        current = self.folder
        try:
            self.select(folder, readonly=True)
            uids = sorted(self._matching(keys))
            for _, block in self._sections(uids, f"HEADER.FIELDS {SENT_FIELDS}", HEADER_FIELDS_BYTES,
                                           HEADERS_PER_FETCH):
                each(block)
            return len(uids)
        finally:
            if current:
                self.select(current)

    def _matching(self, keys: list[list[tuple[str, str]]]) -> set[int]:
        """UIDs of the current folder's messages matching any of ``keys`` (each: header terms, all to match)."""
        found: set[int] = set()
        batch: list[str] = []
        size = 0
        for terms in keys:
            rendered = _search_key(terms)
            if rendered is None:  # a value that must go as a literal: searched alone
                found |= self._search_with_literal(terms)
                continue
            if batch and (len(batch) >= SEARCH_KEYS_PER_COMMAND or size + len(rendered) > SEARCH_COMMAND_BYTES):
                found |= self._search(_any_of(batch))
                batch, size = [], 0
            batch.append(rendered)
            size += len(rendered) + 4
        if batch:
            found |= self._search(_any_of(batch))
        return found

    def _search(self, *args: str) -> set[int]:
        data = self._run("SEARCH", "SEARCH", *args)
        return {int(u) for u in (data[0] or b"").split()} if data else set()

    def _search_with_literal(self, terms: list[tuple[str, str]]) -> set[int]:
        """``UID SEARCH CHARSET UTF-8 HEADER name value ...``: ASCII values quoted, the one other value sent as
        a UTF-8 literal (imaplib sends a literal only as the command's last argument)."""
        args: list[str] = []
        literal: tuple[str, bytes] | None = None
        for name, value in terms:
            quoted, lit = search_value(value)
            if lit is None:
                args += ["HEADER", name, quoted]
            elif literal is None:
                literal = (name, lit)
            else:
                raise MailboxError(f"cannot search two non-ASCII header values at once ({name})")
        assert literal is not None
        self.client.literal = literal[1]  # type: ignore[attr-defined]
        return self._search("CHARSET", "UTF-8", *args, "HEADER", literal[0])

    def headers(self, uids: Sequence[int], limit: int = 1024 * 1024) -> dict[int, bytes]:
        """The header block of each UID (``BODY.PEEK[HEADER]``, at most ``limit`` bytes each, not marked seen):
        enough to know the sender of a message too big to fetch whole."""
        return dict(self._sections(uids, "HEADER", limit, 50))

    def _sections(self, uids: Sequence[int], section: str, limit: int, per_fetch: int) -> Iterator[tuple[int, bytes]]:
        """(UID, bytes) of body ``section`` (``BODY.PEEK``: not marked seen), at most ``limit`` bytes each,
        ``per_fetch`` UIDs a command; a UID the server answers without it is left out."""
        for batch in _chunks(uids, per_fetch):
            for uid, items in self._fetch(batch, f"(UID BODY.PEEK[{section}]<0.{limit}>)").items():
                block = next((v for k, v in items.items() if k.startswith("BODY[")), None)
                if isinstance(block, bytes):
                    yield uid, block


def _search_keys(replies: Sequence[ReplyKeys]) -> list[list[tuple[str, str]]]:
    """The SEARCH keys for ``replies``, each a list of header terms that must all match, without repeats."""
    keys: dict[tuple[tuple[str, str], ...], None] = {}
    for reply in replies:
        if usable(reply.message_id):
            keys[(("Message-ID", reply.message_id),)] = None
        if (answer := reply.answer) is not None:
            keys[(("X-Intake-Outcome", answer[1]), ("In-Reply-To", answer[0]))] = None
    return [list(k) for k in keys]


def _search_key(terms: list[tuple[str, str]]) -> str | None:
    """One SEARCH key for header ``terms`` (all to match; parenthesised when more than one), or ``None``
    when a value is not plain ASCII (it must be sent as a literal)."""
    parts = []
    for name, value in terms:
        quoted, literal = search_value(value)
        if literal is not None:
            return None
        parts.append(f"HEADER {name} {quoted}")
    return parts[0] if len(parts) == 1 else "(" + " ".join(parts) + ")"


def _any_of(keys: Sequence[str]) -> str:
    """``keys`` joined by OR as a balanced tree (``OR OR a b OR c d``): nesting grows with log2 of the count."""
    if len(keys) == 1:
        return keys[0]
    middle = len(keys) // 2
    return f"OR {_any_of(keys[:middle])} {_any_of(keys[middle:])}"


def _meta_from(uid: int, items: dict | None) -> tuple[MessageMeta | None, str]:
    """A ``MessageMeta`` from one UID's FETCH items, or ``None`` and why not."""
    if items is None:
        return None, "not in the FETCH answer (expunged meanwhile?)"
    date, size = items.get("INTERNALDATE"), items.get("RFC822.SIZE")
    if not isinstance(size, int):
        return None, "FETCH answer without RFC822.SIZE"
    if not isinstance(date, bytes):
        return None, "FETCH answer without INTERNALDATE"
    try:
        return MessageMeta(uid, parse_internaldate(date.decode("ascii")), size), ""
    except ValueError:
        return None, f"unreadable INTERNALDATE {date[:40]!r}"


def _reason(e: BaseException, ca_key: str = "") -> str:
    if ca_key and (tls := describe_tls_error(e, ca_key)):
        return tls
    text = str(e) or e.__class__.__name__
    return text.splitlines()[0][:300]
