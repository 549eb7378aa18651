"""``intake resend <UID>``: a message's reply sent again on a staff's request (spec 10.9).

The copy is the reply as it was sent (the same body, the same ``In-Reply-To`` and ``References``), with
its subject marked 补发 (``回执（补发）：…``), ``X-Intake-Outcome: resend``, a new Message-ID and today's
date. It is queued as a notice of its own (one row per re-send, shown in 来件登记's 补发 column and by
``intake status``) and sent by the normal send stage of the next poll. The automatic reply's own record is
never touched, so section 7's "a reply is sent once" keeps holding for it: a re-send is a separate act.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from intake.errors import IntakeError
from intake.mailer import CST
from intake.models import ReplyKind, ReplyState
from intake.store import Store

MARK = "（补发）"


class ResendRefused(IntakeError):
    """No reply to send again (no such message, no reply owed, or not sent yet)."""


@dataclass(frozen=True)
class Resend:
    uid: int
    to_addr: str
    subject: str
    count: int  # the how-manieth re-send of this reply


def resend_subject(subject: str) -> str:
    """``回执：X`` → ``回执（补发）：X`` (the mark after the reply's own label); a subject without a label
    is prefixed."""
    label, colon, rest = subject.partition("：")
    if not colon:
        return f"{MARK}{subject}"
    return subject if label.endswith(MARK) else f"{label}{MARK}：{rest}"


def marked_copy(rfc822: bytes, now: datetime, domain: str) -> EmailMessage:
    """The sent reply as a re-send: subject marked, ``X-Intake-Outcome: resend``, new Message-ID and Date;
    everything else (recipient, threading, body) as it was."""
    msg = email.message_from_bytes(rfc822, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    subject = resend_subject(str(msg["Subject"] or ""))
    for header, value in (("Subject", subject), ("X-Intake-Outcome", ReplyKind.RESEND.value),
                          ("Message-ID", make_msgid(domain=domain)), ("Date", format_datetime(now.astimezone(CST)))):
        del msg[header]
        msg[header] = value
    return msg


def queue_resend(store: Store, folder: str, uid: int, now: datetime) -> Resend:
    """Queue a marked copy of the reply to message ``uid`` of ``folder``; ``ResendRefused`` when there is none."""
    row = store.message_by_uid(folder, uid)
    if row is None:
        raise ResendRefused(f"no message with UID {uid} in {folder}")
    reply = store.sent_reply(row["id"])
    if reply is None and any(d.message_db_id == row["id"] for d in store.replies_due()):
        raise ResendRefused(f"the reply to UID {uid} is not rendered yet: the next poll sends it")
    if reply is None:
        raise ResendRefused(f"UID {uid} ({row['outcome']}) has no reply: only district mail gets a receipt or a "
                            "late notice")
    if reply.state not in (ReplyState.SENT, ReplyState.FAILED):
        raise ResendRefused(f"the reply to UID {uid} is {reply.state.value}, not known to be sent yet: the next poll"
                            " sends or settles it; re-send after that if still needed")
    domain = reply.reply_message_id.rpartition("@")[2].rstrip(">") or "localhost"
    msg = marked_copy(reply.rfc822, now, domain)
    count = store.queue_resend(row["id"], row["district"], reply.to_addr, str(msg["Message-ID"]), msg.as_bytes())
    return Resend(uid, reply.to_addr, str(msg["Subject"]), count)
