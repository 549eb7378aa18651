"""Stage 3: render each owed reply and queue it, apart from recording, so it can fail alone.

A message is recorded with a note that it is owed a reply (``record``). Here each note becomes a rendered
receipt or late notice in the outbox, in message order, each showing the district's state right after its own
message. A reply that does not render (an edited template with a mistake) stays owed: the 来件登记 sheet and
``intake status`` show ``render_failed`` with the reason, and the next poll renders it again.

The ledger is built once per poll and brought forward message by message (``LedgerBuilder``), so a backlog of
n messages is not n full rebuilds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from intake.config import Config
from intake.mailer import reply_bytes, sender_domain
from intake.merge import LedgerBuilder, district_view, unmatched_for
from intake.models import FinalResult, Outcome, ReplyKind, Status, StatusChange, StoredMessage
from intake.poll.context import PollContext
from intake.staff import digest_html
from reports.replies import render_reply, render_result, render_update

log = logging.getLogger("intake")


@dataclass(frozen=True)
class Rendered:
    queued: int = 0
    failed: int = 0


def render_owed_replies(ctx: PollContext) -> Rendered:
    """Render and queue every owed reply; each failure is recorded on its reply and the rest go on."""
    due = {d.message_db_id: d for d in ctx.store.replies_due()}
    if not due:
        return Rendered()
    first = min(due)
    messages = ctx.store.messages()
    builder = LedgerBuilder([m for m in messages if m.id < first], ctx.cfg, decisions=ctx.store.decisions(),
                            final=ctx.store.final_results())
    queued = failed = 0
    for message in (m for m in messages if m.id >= first):
        builder.add(message)
        owed = due.get(message.id)
        if owed is None:
            continue
        try:
            to, reply_id, raw = compose_reply(ctx.cfg, owed.kind, message, builder, ctx.clock())
        except Exception as e:  # noqa: BLE001 - a broken template must not stop the other replies
            ctx.store.reply_render_failed(message.id, f"{type(e).__name__}: {e}")
            log.error("reply to uid=%s not rendered (attempt %d, tried again next poll): %s: %s", message.uid,
                      owed.attempts + 1, type(e).__name__, e)
            failed += 1
            continue
        ctx.store.queue_rendered_reply(message.id, owed.kind, to, reply_id, raw)
        queued += 1
    return Rendered(queued, failed)


def compose_reply(
    cfg: Config, kind: ReplyKind, message: StoredMessage, builder: LedgerBuilder, now: datetime
) -> tuple[str, str, bytes]:
    """The reply to ``message`` as (recipient, its Message-ID, RFC 822 bytes), against the ledger so far;
    ``now`` dates it."""
    ledger = builder.ledger()
    projects = district_view(ledger, message.district or "")
    unmatched = [u.filename for u in unmatched_for(ledger, message.district or "", message.uid)]
    rendered = render_reply(kind, message, projects, unmatched, **cfg.letter(now))
    domain = sender_domain(cfg.smtp.sender)
    raw, reply_id = reply_bytes(
        sender=cfg.smtp.sender, to=message.sender, subject=rendered.subject, text=rendered.text,
        html=rendered.html, in_reply_to=message.message_id, kind=kind.value, domain=domain, date=now,
    )
    return message.sender, reply_id, raw


def check_templates(cfg: Config) -> None:
    """Render a receipt, a late notice, a 状态变更通知, a 结果通知 and the digest on a sample; raises what the
    templates raise."""
    sample = StoredMessage(
        id=0, uid=1, message_id="<sample@intake.invalid>", sender="sample@intake.invalid",
        district=cfg.districts[0].name if cfg.districts else None, subject="模板检查",
        arrival=datetime(2000, 1, 1, tzinfo=UTC), outcome=Outcome.PROCESSED,
    )
    builder = LedgerBuilder([], cfg)
    now = datetime.now(UTC)
    for kind in (ReplyKind.RECEIPT, ReplyKind.LATE):
        compose_reply(cfg, kind, sample, builder, now)
    change = StatusChange(number="XZ-样例-001", district=sample.district or "", name="样例项目", applicant="样例公司",
                          old=Status.ACCEPTED, new=Status.REVIEW, reasons=("样例原因。",))
    render_update(sample.district or "", [change], **cfg.letter(now))
    result = FinalResult(change.number, change.district, change.name, change.applicant, Status.REJECTED, "样例原因。")
    render_result(sample.district or "", [result], **cfg.letter(now))
    digest_html(cfg, builder.ledger(), [sample], {}, now)
