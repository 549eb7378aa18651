"""Parse IMAP ``FETCH`` responses into their data items, whatever order the server sends them in.

imaplib hands back a FETCH response as a list whose elements are either a line
(``b'3 (UID 12 RFC822.SIZE 804 INTERNALDATE "..."'``) or, for each literal, a
``(text before the literal, literal bytes)`` pair followed by the rest of the
line. :func:`fetch_items` puts each response back together and reads it with a
small tokenizer (atoms, numbers, quoted strings, literals, parenthesised lists),
so ``UID``/``INTERNALDATE``/``RFC822.SIZE``/``BODY[]`` may come in any order,
spread over several responses for the same message (RFC 3501 7.4.2 allows it),
or be missing. Pure functions: no sockets here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Value = bytes | int | None | list["Value"]

_START = re.compile(rb"^(\d+) \(")
_NUMBER = re.compile(rb"\d+")
_LITERAL = re.compile(rb"~?\{(\d+)\+?\}\r\n")
_LITERAL_REF = re.compile(rb"~?\{(\d+)\+?\}\0(\d+)\0")


class FetchParseError(ValueError):
    """A FETCH response that does not follow the grammar."""


@dataclass
class FetchResponse:
    """One message's data items (names upper-cased, e.g. ``UID``, ``BODY[]``), by message sequence number."""

    seq: int
    items: dict[str, Value] = field(default_factory=dict)

    @property
    def uid(self) -> int | None:
        value = self.items.get("UID")
        return value if isinstance(value, int) else None


def fetch_items(data: Iterable[bytes | tuple[bytes, bytes] | None]) -> list[FetchResponse]:
    """The responses in imaplib's ``data`` of a (UID) FETCH, merged per sequence number, in order seen.

    Elements that are not FETCH responses (``None``, stray lines) are skipped; a response that does
    not parse raises ``FetchParseError``. Literal values (bodies) are the very ``bytes`` objects imaplib
    read: never copied, so a batch of bodies is held once.
    """
    merged: dict[int, FetchResponse] = {}
    for text, literals in _responses(data):
        response = parse_response(text, literals)
        if response.seq in merged:
            merged[response.seq].items.update(response.items)
        else:
            merged[response.seq] = response
    return list(merged.values())


def _responses(data: Iterable[bytes | tuple[bytes, bytes] | None]) -> list[tuple[bytes, list[bytes]]]:
    """Whole responses as (text, literals): in the text each literal is ``{n}`` followed by ``\0i\0``,
    its index in literals (NUL never occurs in a server's text outside a literal)."""
    out: list[tuple[bytearray, list[bytes]]] = []
    for element in data:
        if element is None:
            continue
        text, literal = (element[0], element[1]) if isinstance(element, tuple) else (element, None)
        # A new response starts with its sequence number; the rest of a line after a literal does not.
        if _START.match(text) or not out:
            out.append((bytearray(), []))
        out[-1][0].extend(text)
        if literal is not None:
            out[-1][0].extend(b"\0%d\0" % len(out[-1][1]))
            out[-1][1].append(literal)
    return [(bytes(text), literals) for text, literals in out if _START.match(text)]


def parse_response(raw: bytes, literals: Sequence[bytes] = ()) -> FetchResponse:
    """``b'3 (UID 12 FLAGS (\\Seen) BODY[] {5}\r\nhello)'`` → ``FetchResponse(3, {...})``.

    Literals are either inline (``{n}\r\n`` and n bytes) or references into ``literals``
    (``{n}\0i\0``, as ``fetch_items`` writes them).
    """
    start = _START.match(raw)
    if not start:
        raise FetchParseError(f"not a FETCH response: {raw[:80]!r}")
    reader = _Reader(raw, start.end(), literals)
    items: dict[str, Value] = {}
    while True:
        reader.skip_spaces()
        if reader.peek() == b")":
            break
        name = reader.item_name()
        reader.expect_space()
        items[name] = reader.value()
    return FetchResponse(int(start[1]), items)


class _Reader:
    """A cursor over one response's bytes."""

    def __init__(self, raw: bytes, pos: int, literals: Sequence[bytes] = ()) -> None:
        self.raw = raw
        self.pos = pos
        self.literals = literals

    def peek(self) -> bytes:
        if self.pos >= len(self.raw):
            raise FetchParseError(f"FETCH response ends early: {self.raw[:80]!r}")
        return self.raw[self.pos : self.pos + 1]

    def skip_spaces(self) -> None:
        while self.pos < len(self.raw) and self.raw[self.pos : self.pos + 1] == b" ":
            self.pos += 1

    def expect_space(self) -> None:
        if self.peek() != b" ":
            raise FetchParseError(f"expected a space at {self.pos}: {self.raw[:80]!r}")
        self.pos += 1

    def item_name(self) -> str:
        """An item name such as ``UID`` or ``BODY[HEADER.FIELDS (MESSAGE-ID)]<0>`` (brackets may hold spaces)."""
        start, depth = self.pos, 0
        while self.pos < len(self.raw):
            char = self.raw[self.pos : self.pos + 1]
            if char == b"[":
                depth += 1
            elif char == b"]":
                depth -= 1
            elif depth == 0 and char in (b" ", b"(", b")"):
                break
            self.pos += 1
        if self.pos == start:
            raise FetchParseError(f"expected an item name at {start}: {self.raw[:80]!r}")
        return self.raw[start : self.pos].decode("ascii", "replace").upper()

    def value(self) -> Value:
        char = self.peek()
        if char == b"(":
            return self._list()
        if char == b'"':
            return self._quoted()
        if char in (b"{", b"~"):
            return self._literal()
        start = self.pos
        while self.pos < len(self.raw) and self.raw[self.pos : self.pos + 1] not in (b" ", b")", b"("):
            self.pos += 1
        atom = self.raw[start : self.pos]
        if atom.upper() == b"NIL":
            return None
        return int(atom) if _NUMBER.fullmatch(atom) else atom

    def _list(self) -> list[Value]:
        self.pos += 1
        out: list[Value] = []
        while True:
            self.skip_spaces()
            if self.peek() == b")":
                self.pos += 1
                return out
            out.append(self.value())

    def _quoted(self) -> bytes:
        self.pos += 1
        out = bytearray()
        while True:
            char = self.peek()
            self.pos += 1
            if char == b'"':
                return bytes(out)
            if char == b"\\":
                char = self.peek()
                self.pos += 1
            out += char

    def _literal(self) -> bytes:
        ref = _LITERAL_REF.match(self.raw, self.pos)
        if ref:
            index = int(ref[2])
            if index >= len(self.literals) or len(self.literals[index]) != int(ref[1]):
                raise FetchParseError(f"literal {index} does not match its announced size: {self.raw[:80]!r}")
            self.pos = ref.end()
            return self.literals[index]
        match = _LITERAL.match(self.raw, self.pos)
        if not match:
            raise FetchParseError(f"bad literal at {self.pos}: {self.raw[:80]!r}")
        size = int(match[1])
        start = match.end()
        if start + size > len(self.raw):
            raise FetchParseError(f"literal of {size} bytes is cut short: {self.raw[:80]!r}")
        self.pos = start + size
        return self.raw[start : self.pos]
