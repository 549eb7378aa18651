"""Stage 7: ``ledger.xlsx`` and ``digest.html`` from the store, and the daily digest mail to staff.

Both files are derived from the store and replaced atomically. An idle poll leaves them alone: they are
rewritten only when the store's revision (bumped by triggers on every change the ledger shows), the config
or the code's version differs from the last write, a file is missing, or the local hour changed (the
digest counts down to the deadline).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

import intake
from intake.attention import needs_attention
from intake.config import Config
from intake.errors import SendError
from intake.merge import build_ledger
from intake.poll.context import PollContext
from intake.staff import DIGEST_FILE, digest_html, send_digest_if_due
from reports.digest import write_digest
from reports.ledger import write_ledger

log = logging.getLogger("intake")

OUTPUTS_KEY = "outputs_written"  # meta: what ledger.xlsx and digest.html were last written from


def refresh_outputs(ctx: PollContext) -> str | None:
    """Rewrite both files when they are not current; returns the digest page when it was rewritten."""
    data_dir = ctx.cfg.paths.data_dir
    current = (
        ctx.store.get_meta(OUTPUTS_KEY) == _outputs_key(ctx, ctx.store.revision(), ctx.clock())
        and (data_dir / "ledger.xlsx").is_file() and (data_dir / DIGEST_FILE).is_file()
    )
    return None if current else write_outputs(ctx)


def write_outputs(ctx: PollContext) -> str:
    """Rewrite ``ledger.xlsx`` and the staff digest beside it from the store (each atomically)."""
    revision = ctx.store.revision()  # read first: a change made while writing forces the next write
    messages, replies = ctx.store.messages(), ctx.store.replies()
    ledger = build_ledger(messages, ctx.cfg, decisions=ctx.store.decisions(), final=ctx.store.final_results())
    ledger.resends = ctx.store.resends()
    data_dir = ctx.cfg.paths.data_dir
    write_ledger(data_dir / "ledger.xlsx", ledger, messages, replies, ctx.cfg.campaign.tz, data_dir=data_dir)
    now = ctx.clock()
    html = digest_html(ctx.cfg, ledger, messages, replies, now, attention=_attention_lines(ctx, now))
    write_digest(data_dir / DIGEST_FILE, html)
    ctx.store.set_meta(OUTPUTS_KEY, _outputs_key(ctx, revision, now))
    return html


def mail_digest(ctx: PollContext, html: str | None) -> bool:
    """The daily staff digest when configured and due (a permanent refusal is not retried that day)."""
    try:
        return send_digest_if_due(ctx.cfg, ctx.store, html if html is not None else lambda: write_outputs(ctx),
                                  ctx.clock(), ctx.mailer_factory)
    except SendError as e:
        if e.temporary:
            raise
        log.warning("staff digest refused for good: %s", e)
        return False


def config_hash(cfg: Config) -> str:
    """What of the config the ledger and digest are a function of."""
    shape = repr((intake.__version__, cfg.campaign, cfg.rules, cfg.districts, cfg.paths))
    return hashlib.sha256(shape.encode()).hexdigest()[:16]


def _outputs_key(ctx: PollContext, revision: int, now: datetime) -> str:
    """The store's revision, the config, the local hour (the digest's countdown), whether the deadline passed,
    and the failing steps (the digest lists them)."""
    local = now.astimezone(ctx.cfg.campaign.tz)
    steps = ",".join(f"{f.step}@{f.since.isoformat()}" for f in ctx.store.step_failures())
    return (f"{revision}:{config_hash(ctx.cfg)}:{local:%Y-%m-%d %H}:{now > ctx.cfg.campaign.deadline}:"
            f"{hashlib.sha256(steps.encode()).hexdigest()[:8]}")


def _attention_lines(ctx: PollContext, now: datetime) -> list[str]:
    """Failing steps (at once, not only after an hour) and replies that do not render, for the digest page
    (which lists refused replies and problem messages in sections of their own)."""
    return [t.line_zh(ctx.cfg.campaign.tz) for t in needs_attention(ctx.cfg, ctx.store, now, timedelta(0))
            if t.kind in ("step_failing", "reply_not_rendered")]
