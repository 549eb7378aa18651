"""Compose district mail the way common clients do: used by the demo and by the tests.

Chinese file names are written RFC 2231-encoded (``filename*=utf-8''…``, what
Python's email package produces) unless a raw header is asked for; the
``Received`` header carries the arrival time, as the receiving server would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

MIME_TYPES = {
    ".pdf": ("application", "pdf"),
    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".xls": ("application", "vnd.ms-excel"),
    ".docx": ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".zip": ("application", "zip"),
}


def compose(
    *,
    sender: str,
    sender_name: str = "",
    to: str = "xzip2019@163.com",
    subject: str,
    body: str = "",
    attachments: Sequence[tuple[str, bytes]] = (),
    message_id: str | None = None,
    arrival: datetime | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A complete RFC 5322 message as bytes."""
    msg = EmailMessage()
    msg["From"] = formataddr((sender_name, sender)) if sender_name else sender
    msg["To"] = to
    msg["Subject"] = subject
    if arrival is not None:
        msg["Date"] = format_datetime(arrival)
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in headers:
        msg[name] = value
    msg.set_content(body or "您好，附件为申报材料，请查收。", charset="utf-8")
    for name, data in attachments:
        suffix = name[name.rfind("."):].lower() if "." in name else ""
        maintype, subtype = MIME_TYPES.get(suffix, ("application", "octet-stream"))
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    raw = msg.as_bytes(policy=SMTP)
    if arrival is not None:
        received = f"Received: from mail.example.cn by mx.163.com; {format_datetime(arrival)}\r\n"
        raw = received.encode("ascii") + raw
    return raw
