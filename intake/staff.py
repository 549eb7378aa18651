"""The staff digest as a page and a daily mail: when it is due, the message, and sending it once a day.

The worker renders the page when the ledger changes and at least hourly
(``digest_html``, written beside ``ledger.xlsx``) and calls ``send_digest_if_due``: with ``staff.report_to`` set, the
first poll after ``staff.report_hour`` local time sends it, and the day is recorded
in the store (meta ``digest_sent_date``) so a restart does not send it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol

from intake.config import Config, SmtpConfig
from intake.errors import SendError
from intake.models import Ledger, ReplyInfo, StoredMessage
from intake.store import Store
from reports.digest import render_digest

log = logging.getLogger(__name__)

SENT_DATE_KEY = "digest_sent_date"
DIGEST_FILE = "digest.html"


class _Sender(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


MailerFactory = Callable[[SmtpConfig], AbstractContextManager[_Sender]]


def digest_html(
    cfg: Config, ledger: Ledger, messages: Sequence[StoredMessage], replies: Mapping[int, ReplyInfo],
    now: datetime,
) -> str:
    """The digest page for this config (campaign, deadline, time zone, district order, templates)."""
    return render_digest(
        ledger, messages, replies, campaign=cfg.campaign.name, deadline=cfg.campaign.deadline, now=now,
        tz=cfg.campaign.tz, districts=[d.name for d in cfg.districts], templates_dir=cfg.paths.templates_dir,
    )


def digest_due(now: datetime, last_sent_date: str | None, report_hour: int, tz: tzinfo) -> bool:
    """Whether the daily mail is due: past ``report_hour`` local time and not yet sent this local day.

    ``last_sent_date`` is the local date (``YYYY-MM-DD``) of the last digest sent, if any.
    """
    local = now.astimezone(tz)
    return local.hour >= report_hour and last_sent_date != local.date().isoformat()


def build_digest_mail(
    html: str,
    *,
    sender: str,
    to: list[str],
    campaign: str,
    now: datetime,
    tz: tzinfo,
    domain: str | None = None,
) -> EmailMessage:
    """The digest as a message to staff: the HTML page, a short text part, ``Auto-Submitted: auto-generated``.

    Not a reply, so not ``intake.mailer.build_reply`` (one recipient, ``auto-replied``, In-Reply-To).
    """
    if not to:
        raise ValueError("a digest needs at least one recipient")
    local = now.astimezone(tz)
    sender_address = _address(sender)
    msg = EmailMessage()
    msg["From"] = sender_address
    msg["To"] = [_address(a) for a in to]
    msg["Subject"] = f"【xzip-intake】{campaign}申报情况日报 {local:%Y-%m-%d}"
    msg["Date"] = format_datetime(local)
    msg["Message-ID"] = make_msgid(idstring="digest", domain=domain or sender_address.domain or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Intake-Outcome"] = "digest"
    msg.set_content(_text(campaign, local), subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return msg


def send_digest_if_due(
    cfg: Config, store: Store, html: str | Callable[[], str], now: datetime, mailer_factory: MailerFactory
) -> bool:
    """Mail ``html`` to ``staff.report_to`` when due and record the day; True when a mail went out.

    ``html`` may be a function that renders the page, called only when the mail is due.

    A ``SendError`` propagates for the caller to log. A temporary one leaves the day
    unrecorded, so the next poll tries again; a permanent one (a refused staff address)
    records it, so a bad address is not retried every poll: the page is still written.
    """
    tz = cfg.campaign.tz
    if not cfg.staff.report_to:
        return False
    if not digest_due(now, store.get_meta(SENT_DATE_KEY), cfg.staff.report_hour, tz):
        return False
    today = now.astimezone(tz).date().isoformat()
    page = html() if callable(html) else html
    msg = build_digest_mail(page, sender=cfg.smtp.sender, to=list(cfg.staff.report_to),
                            campaign=cfg.campaign.name, now=now, tz=tz)
    try:
        with mailer_factory(cfg.smtp) as mailer:
            mailer.send(msg)
    except SendError as e:
        if not e.temporary:
            store.set_meta(SENT_DATE_KEY, today)
        raise
    store.set_meta(SENT_DATE_KEY, today)
    log.info("staff digest for %s sent to %s", today, ", ".join(cfg.staff.report_to))
    return True


def _text(campaign: str, local: datetime) -> str:
    return (
        f"{campaign}申报情况日报（{local:%Y-%m-%d %H:%M}）\n\n"
        "本日报为 HTML 格式，请使用能显示网页格式的邮件客户端查看；"
        "同样的内容在服务器数据目录的 digest.html 中，详细数据见 ledger.xlsx。\n\n"
        "本邮件由 xzip-intake 自动发送，请勿直接回复。\n"
    )


def _address(value: str) -> Address:
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError(f"not a mail address: {value!r}")
    return Address(display_name=name, addr_spec=addr)
