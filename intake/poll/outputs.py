"""Stage 7: ``ledger.xlsx`` and ``digest.html`` from the store, their copies in ``paths.publish_dir``, and the
daily digest mail to staff.

Both files are derived from the store and replaced atomically. An idle poll leaves them alone: they are
rewritten only when the store's revision (bumped by triggers on every change the ledger shows), the config
or the code's version differs from the last write, a file is missing, or the local hour changed (the
digest counts down to the deadline). ``publish_outputs`` copies them, again atomically, to
``paths.publish_dir`` (a share staff open) whenever they were written since the last copy, or a copy is
missing; a copy that fails (the share unmounted) is tried again at the next poll.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from pathlib import Path

import intake
from intake.attention import needs_attention
from intake.config import Config
from intake.errors import SendError
from intake.models import Ledger, ReplyInfo, StoredMessage
from intake.poll.context import PollContext
from intake.staff import DIGEST_FILE, LEDGER_FILE, digest_html, send_digest_if_due
from intake.view import current_ledger
from reports import bundle
from reports.digest import write_digest
from reports.files import atomic_copy
from reports.ledger import write_ledger

log = logging.getLogger("intake")

OUTPUTS_KEY = "outputs_written"  # meta: what ledger.xlsx and digest.html were last written from
PUBLISHED_KEY = "outputs_published"  # meta: the publish_dir and the OUTPUTS_KEY value last copied there


def refresh_outputs(ctx: PollContext) -> str | None:
    """Rewrite both files when they are not current; returns the digest page when it was rewritten."""
    data_dir = ctx.cfg.paths.data_dir
    current = (
        ctx.store.get_meta(OUTPUTS_KEY) == _outputs_key(ctx, ctx.store.revision(), ctx.clock())
        and (data_dir / LEDGER_FILE).is_file() and (data_dir / DIGEST_FILE).is_file()
    )
    return None if current else write_outputs(ctx)


def write_outputs(ctx: PollContext) -> str:
    """Rewrite ``ledger.xlsx`` and the staff digest beside it from the store (each atomically)."""
    revision = ctx.store.revision()  # read first: a change made while writing forces the next write
    ledger, messages, replies = _ledger(ctx)
    data_dir = ctx.cfg.paths.data_dir
    write_ledger(data_dir / LEDGER_FILE, ledger, messages, replies, ctx.cfg.campaign.tz, data_dir=data_dir,
                 title=f"{ctx.cfg.campaign.name}项目台账")
    now = ctx.clock()
    html = digest_html(ctx.cfg, ledger, messages, replies, now, attention=_attention_lines(ctx, now))
    write_digest(data_dir / DIGEST_FILE, html)
    ctx.store.set_meta(OUTPUTS_KEY, _outputs_key(ctx, revision, now))
    return html


def write_bundle(ctx: PollContext, target: Path) -> Path:
    """``intake export --bundle``: the workbook with copies of the forms beside it, in a folder or a ``.zip``."""
    ledger, messages, replies = _ledger(ctx)
    return bundle.write_bundle(target, ledger, messages, replies, ctx.cfg.campaign.tz,
                               data_dir=ctx.cfg.paths.data_dir, title=f"{ctx.cfg.campaign.name}项目台账")


def _ledger(ctx: PollContext) -> tuple[Ledger, list[StoredMessage], dict[int, ReplyInfo]]:
    """The ledger built from the store, with the messages and replies it was built from."""
    messages, replies = ctx.store.messages(), ctx.store.replies()
    ledger = current_ledger(ctx.store, ctx.cfg, messages)
    ledger.resends = ctx.store.resends()
    return ledger, messages, replies


def publish_outputs(ctx: PollContext) -> bool:
    """Copy ``ledger.xlsx`` and ``digest.html`` to ``paths.publish_dir`` (when set) if they changed since the
    last copy or a copy is missing; True when copied. Each copy replaces the old one atomically."""
    target = ctx.cfg.paths.publish_dir
    written = ctx.store.get_meta(OUTPUTS_KEY)
    if target is None or written is None:
        return False
    stamp = f"{target}|{written}"
    names = (LEDGER_FILE, DIGEST_FILE)
    if ctx.store.get_meta(PUBLISHED_KEY) == stamp and all((target / n).is_file() for n in names):
        return False
    for name in names:
        atomic_copy(ctx.cfg.paths.data_dir / name, target / name)
    ctx.store.set_meta(PUBLISHED_KEY, stamp)
    log.info("ledger.xlsx and %s copied to %s", DIGEST_FILE, target)
    return True


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
