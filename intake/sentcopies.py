"""Which replies the Sent folder already holds, decided from header values alone (no I/O here).

A reply is known by its own Message-ID and, for the reply owed to a message (the outbox: a receipt or late
notice), also by the original it answers (``In-Reply-To``) together with its ``X-Intake-Outcome``: a reply
rendered again after the data directory was lost has a new Message-ID but answers the same original with the
same outcome. Notices are known by their Message-ID alone.

A header value is compared whole, never as a part of a longer value: unfolded, RFC 2047 encoded words
decoded, raw 8-bit bytes read as UTF-8, CR/LF/NUL dropped, runs of white space made one space, and case
ignored (as IMAP SEARCH ignores it). The server's SEARCH only proposes candidates (it matches substrings);
``SentCopies`` decides with these exact comparisons, so ``<a@x>`` never stands for ``<xa@x>``.

``SentCopies`` keeps only the keys of the replies it was asked about, so its memory follows the replies of
one stage, not the size of the Sent folder.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable
from dataclasses import dataclass

# The header fields read from a Sent message (and from a reply's own bytes).
FIELDS = ("message-id", "in-reply-to", "x-intake-outcome")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_DROPPED = re.compile(r"[\r\n\0]+")


@dataclass(frozen=True)
class ReplyKeys:
    """What one reply is known by: the values as searched (decoded text) and as compared (``same``)."""

    message_id: str  # "" when none
    in_reply_to: str = ""  # "" for a notice, or a reply to a message that had no Message-ID
    outcome: str = ""

    @property
    def answer(self) -> tuple[str, str] | None:
        """(original, outcome) when the reply is also known by what it answers."""
        return (self.in_reply_to, self.outcome) if usable(self.in_reply_to) and usable(self.outcome) else None

    def same_message_id(self) -> str:
        return same(self.message_id)

    def same_answer(self) -> tuple[str, str] | None:
        answer = self.answer
        return (same(answer[0]), same(answer[1])) if answer else None


def reply_keys(rfc822: bytes, message_id: str, kind: str, answers_a_message: bool) -> ReplyKeys:
    """The keys of a reply stored as ``rfc822`` with Message-ID ``message_id``; ``answers_a_message`` for the
    outbox (a receipt or late notice owed to a message), not for notices."""
    if not answers_a_message:
        return ReplyKeys(text(message_id))
    fields = header_fields(head_of(rfc822))
    original = next(iter(fields.get("in-reply-to", ())), "")
    outcome = next(iter(fields.get("x-intake-outcome", ())), "") or kind
    return ReplyKeys(text(message_id), original, outcome)


def head_of(raw: bytes) -> bytes:
    """The header block of a message (everything before the first empty line)."""
    end = _HEAD_END.search(raw)
    return raw[: end.start()] if end else raw


def header_fields(block: bytes, names: Iterable[str] = FIELDS) -> dict[str, list[str]]:
    """Lower-case field name → its values (decoded by ``text``) for the fields ``names`` of a header block;
    a field that occurs more than once keeps every value."""
    wanted = set(names)
    out: dict[str, list[str]] = {}
    for line in _FOLD.sub(b"", block).splitlines():
        name, colon, value = line.partition(b":")
        key = name.strip().decode("ascii", "replace").lower()
        if colon and key in wanted:
            out.setdefault(key, []).append(text(value.decode("utf-8", "replace")))
    return out


def text(value: str) -> str:
    """A header value as text: encoded words decoded, CR/LF/NUL dropped, white space at the ends removed."""
    if "=?" in value:
        try:
            value = str(email.policy.default.header_factory("x-intake-value", value))
        except Exception:  # noqa: BLE001 - a value the decoder cannot read is compared as written
            pass
    return _DROPPED.sub("", value).strip()


def same(value: str) -> str:
    """The form two values are compared in: runs of white space as one space, case ignored."""
    return " ".join(value.split()).casefold()


def usable(value: str) -> bool:
    """A value worth searching for: an empty one would match every message that has the field."""
    return bool(re.sub(r"[\s\0]+", "", value))


class SentCopies:
    """What the Sent folder was found to hold, for the replies ``wanted`` only; ``add`` a reply sent since."""

    def __init__(self, wanted: Iterable[ReplyKeys]) -> None:
        self._wanted_ids: set[str] = set()
        self._wanted_answers: set[tuple[str, str]] = set()
        for keys in wanted:
            self._want(keys)
        self._ids: set[str] = set()
        self._answers: set[tuple[str, str]] = set()

    def _want(self, keys: ReplyKeys) -> None:
        if usable(keys.message_id):
            self._wanted_ids.add(keys.same_message_id())
        if (answer := keys.same_answer()) is not None:
            self._wanted_answers.add(answer)

    def add_headers(self, block: bytes) -> None:
        """Take in one Sent message's header fields (``FIELDS``): what in it answers a wanted key is kept."""
        fields = header_fields(block)
        self._ids |= {same(v) for v in fields.get("message-id", ())} & self._wanted_ids
        originals = {same(v) for v in fields.get("in-reply-to", ()) if usable(v)}
        outcomes = {same(v) for v in fields.get("x-intake-outcome", ()) if usable(v)}
        self._answers |= {(o, k) for o in originals for k in outcomes} & self._wanted_answers

    def add(self, keys: ReplyKeys) -> None:
        """A reply that went out during this stage: a later reply with the same keys is held as sent."""
        self._want(keys)
        if usable(keys.message_id):
            self._ids.add(keys.same_message_id())
        if (answer := keys.same_answer()) is not None:
            self._answers.add(answer)

    def __len__(self) -> int:
        """How many keys were found (or added)."""
        return len(self._ids) + len(self._answers)

    def holds(self, keys: ReplyKeys) -> bool:
        """Whether a reply with these keys is in the Sent folder (or was sent during this stage)."""
        if usable(keys.message_id) and keys.same_message_id() in self._ids:
            return True
        answer = keys.same_answer()
        return answer is not None and answer in self._answers
