"""The staff digest as a page and a daily mail: when it is due, the message, and sending it once a day.

The worker renders the page when the ledger changes and at least hourly
(``digest_html``, written beside ``ledger.xlsx``) and calls ``send_digest_if_due``: with ``staff.report_to`` set, the
first poll after ``staff.report_hour`` local time sends it, and the day is recorded
in the store (meta ``digest_sent_date``) so a restart does not send it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from html import escape
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
LEDGER_FILE = "ledger.xlsx"
# The digest mail carries ledger.xlsx up to this size (base64 makes it a third larger on the wire; common
# mail servers, 163.com's too, take 20 MB or more); a larger workbook is named with where to find it.
ATTACH_MAX_BYTES = 10 * 1024 * 1024
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
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
    ledger: bytes | None = None,
    ledger_note: str = "",
) -> EmailMessage:
    """The digest as a message to staff: the HTML page, a short text part, ``Auto-Submitted: auto-generated``;
    ``ledger`` (the workbook's bytes) attached as ``ledger-YYYY-MM-DD.xlsx``, ``ledger_note`` (one line: what
    is attached, or where the workbook is) at the top of both parts.

    Not a reply, so not ``intake.mailer.build_reply`` (one recipient, ``auto-replied``, In-Reply-To).
    """
    if not to:
        raise ValueError("a digest needs at least one recipient")
    local = now.astimezone(tz)
    msg = _staff_mail("digest", f"【xzip-intake】{campaign}申报情况日报 {local:%Y-%m-%d}", sender, to, local, domain)
    msg.set_content(_text(campaign, local, ledger_note), subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(_with_note(html, ledger_note), subtype="html", charset="utf-8", cte="base64")
    if ledger is not None:
        msg.add_attachment(ledger, *XLSX_TYPE, filename=f"ledger-{local:%Y-%m-%d}.xlsx")
    return msg


def ledger_for_mail(cfg: Config, limit: int | None = None) -> tuple[bytes | None, str]:
    """``ledger.xlsx`` to attach to the digest and the line saying so; over ``limit`` bytes (default
    ``ATTACH_MAX_BYTES``) or missing: nothing to attach, and the line says where the workbook is."""
    limit = ATTACH_MAX_BYTES if limit is None else limit
    path = cfg.paths.data_dir / LEDGER_FILE
    where = f"服务器 {path}"
    if cfg.paths.publish_dir is not None:
        where += f"，共享目录 {cfg.paths.publish_dir / LEDGER_FILE}"
    try:
        size = path.stat().st_size
        data = path.read_bytes() if size <= limit else None
    except FileNotFoundError:
        return None, f"台账 ledger.xlsx 尚未生成（{where}）。"
    if data is None:
        return None, (f"台账 ledger.xlsx 有 {size / 1048576:.1f} MB，超过邮件附件上限 {limit / 1048576:g} MB，"
                      f"未随信附上，请在{where}取用。")
    return data, f"附件为截至发信时的台账（ledger.xlsx，{_size_text(size)}）；台账也在{where}。"


def _size_text(size: int) -> str:
    return f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{max(1, round(size / 1024))} KB"


def _with_note(html: str, note: str) -> str:
    """The page with ``note`` as its first paragraph (escaped: it holds paths)."""
    if not note:
        return html
    para = f'<p id="ledger-note" style="margin:0 0 8px;color:#555">{escape(note)}</p>'
    body = re.search(r"<body[^>]*>", html, re.IGNORECASE)
    return html[: body.end()] + para + html[body.end():] if body else para + html


def send_digest_if_due(
    cfg: Config, store: Store, html: str | Callable[[], str], now: datetime, mailer_factory: MailerFactory
) -> bool:
    """Mail ``html`` to ``staff.report_to`` when due and record the day; True when a mail went out.

    ``html`` may be a function that renders the page, called only when the mail is due. The mail carries
    ``ledger.xlsx`` when it is at most ``ATTACH_MAX_BYTES``, else a line saying where it is.

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
    ledger, note = ledger_for_mail(cfg)
    msg = build_digest_mail(page, sender=cfg.smtp.sender, to=list(cfg.staff.report_to),
                            campaign=cfg.campaign.name, now=now, tz=tz, ledger=ledger, ledger_note=note)
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


def _text(campaign: str, local: datetime, note: str = "") -> str:
    paragraphs = [
        f"{campaign}申报情况日报（{local:%Y-%m-%d %H:%M}）",
        *([note] if note else []),
        "本日报为 HTML 格式，请使用能显示网页格式的邮件客户端查看；"
        "同样的内容在服务器数据目录的 digest.html 中，详细数据见 ledger.xlsx。",
        "本邮件由 xzip-intake 自动发送，请勿直接回复。",
    ]
    return "\n\n".join(paragraphs) + "\n"


def _address(value: str) -> Address:
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError(f"not a mail address: {value!r}")
    return Address(display_name=name, addr_spec=addr)
