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
from datetime import datetime, timedelta, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Protocol

from intake.attention import Trouble
from intake.config import Config, SmtpConfig
from intake.errors import SendError
from intake.models import Ledger, ReplyInfo, StoredMessage
from intake.store import Store
from reports.digest import render_digest

log = logging.getLogger(__name__)

SENT_DATE_KEY = "digest_sent_date"
DIGEST_FILE = "digest.html"
ALERT_EVERY = timedelta(hours=1)  # at most one alert mail per kind of trouble in this time


class _Sender(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


MailerFactory = Callable[[SmtpConfig], AbstractContextManager[_Sender]]


def digest_html(
    cfg: Config, ledger: Ledger, messages: Sequence[StoredMessage], replies: Mapping[int, ReplyInfo],
    now: datetime,
    *,
    attention: Sequence[str] = (),
) -> str:
    """The digest page for this config (campaign, deadline, time zone, district order, templates);
    ``attention`` lists what needs a person (failing poll steps and the like), one line each."""
    return render_digest(
        ledger, messages, replies, campaign=cfg.campaign.name, deadline=cfg.campaign.deadline, now=now,
        tz=cfg.campaign.tz, districts=[d.name for d in cfg.districts], templates_dir=cfg.paths.templates_dir,
        attention=attention,
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
    msg = _staff_mail("digest", f"【xzip-intake】{campaign}申报情况日报 {local:%Y-%m-%d}", sender, to, local, domain)
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


def send_alerts(
    cfg: Config, store: Store, troubles: Sequence[Trouble], now: datetime, mailer_factory: MailerFactory
) -> int:
    """Mail staff the items not alerted before, of the kinds not alerted within the hour; record them.

    Returns how many items the mail listed (0: nothing new, or every new item's kind was mailed within the
    hour and waits). A ``SendError`` propagates (the items stay unalerted, so the next poll tries again).
    """
    if not cfg.staff.report_to:
        return 0
    fresh: list[Trouble] = []
    for kind in dict.fromkeys(t.kind for t in troubles):
        done, last = store.alerted(kind)
        if last is not None and now - last < ALERT_EVERY:
            continue
        fresh += [t for t in troubles if t.kind == kind and t.key not in done]
    if not fresh:
        return 0
    msg = build_alert_mail(fresh, sender=cfg.smtp.sender, to=list(cfg.staff.report_to),
                           campaign=cfg.campaign.name, now=now, tz=cfg.campaign.tz)
    with mailer_factory(cfg.smtp) as mailer:
        mailer.send(msg)
    store.mark_alerted([(t.kind, t.key) for t in fresh], now)
    log.warning("alert mailed to %s: %d item(s) need a person", ", ".join(cfg.staff.report_to), len(fresh))
    return len(fresh)


def build_alert_mail(
    troubles: Sequence[Trouble], *, sender: str, to: list[str], campaign: str, now: datetime, tz: tzinfo,
) -> EmailMessage:
    """One plain-text mail listing each item, grouped by kind, with since when."""
    local = now.astimezone(tz)
    msg = _staff_mail("alert", f"【xzip-intake】需要人工处理（{len(troubles)}项）：{campaign}", sender, to, local)
    lines = [f"{campaign}收件程序有以下情况需要人工处理（{local:%Y-%m-%d %H:%M}）：", ""]
    lines += [f"- {t.line_zh(tz)}" for t in troubles]
    lines += ["", "详情可在服务器上运行 intake status 查看。同一类情况每小时最多提醒一次。",
              "本邮件由 xzip-intake 自动发送，请勿直接回复。"]
    msg.set_content("\n".join(lines) + "\n", subtype="plain", charset="utf-8", cte="base64")
    return msg


def _staff_mail(
    kind: str, subject: str, sender: str, to: Sequence[str], local: datetime, domain: str | None = None
) -> EmailMessage:
    """The headers of a mail to staff (``X-Intake-Outcome: kind``), generated, never to be answered."""
    sender_address = _address(sender)
    msg = EmailMessage()
    msg["From"] = sender_address
    msg["To"] = [_address(a) for a in to]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(local)
    msg["Message-ID"] = make_msgid(idstring=kind, domain=domain or sender_address.domain or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Intake-Outcome"] = kind
    return msg


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
