"""``intake import``: process ``.eml`` files exported from webmail, like mail fetched over IMAP.

Imported messages are recorded under the pseudo-folder ``import`` with their
own sequence numbers as UIDs. Their arrival time is the topmost ``Received``
header's time (the receiving server's clock, the same instant IMAP reports as
INTERNALDATE) unless ``--arrival`` gives it. Imports never send mail: replies
are only queued (for the next ``intake poll``) when asked with ``--queue-replies``.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from intake.mailbox import FetchedMessage
from intake.models import StoredMessage
from intake.worker import Worker

IMPORT_FOLDER = "import"


def arrival_from_received(raw: bytes) -> datetime | None:
    """The time in the topmost ``Received`` header (after its last ``;``), if it parses."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for header in msg.get_all("Received") or []:
        _, sep, when = str(header).rpartition(";")
        if not sep:
            continue
        try:
            parsed = parsedate_to_datetime(" ".join(when.split()))
        except (TypeError, ValueError, IndexError):
            continue
        if parsed.tzinfo is not None:
            return parsed
    return None


@dataclass(frozen=True)
class Imported:
    name: str
    stored: StoredMessage | None
    arrival_source: str  # "Received header" or "--arrival"
    error: str | None = None


def import_message(
    worker: Worker, name: str, raw: bytes, arrival: datetime | None, queue_replies: bool
) -> Imported:
    """Record one exported message; never sends."""
    when, source = (arrival, "--arrival") if arrival else (arrival_from_received(raw), "Received header")
    if when is None:
        return Imported(name, None, "", "no Received header with a time; give --arrival")
    uid = worker.store.next_import_uid()
    fetched = FetchedMessage(uid, when, len(raw), raw)
    stored = worker.record(fetched, 0, source="import", folder=IMPORT_FOLDER, reply=queue_replies)
    return Imported(name, stored, source)



