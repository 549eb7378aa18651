"""The poll: run the stages in order, each step isolated, and sum up what they did.

Order: settle replies a crash left ``sending`` → flag/move what earlier polls recorded → per folder, fetch
and record new mail → render owed replies → queue 状态变更通知 → send → flag/move what this poll recorded →
outputs → publish (copies to paths.publish_dir) → digest mail → alerts.

Each step runs in ``_step``: an exception is logged in one line, recorded in the store with since when the
step has been failing (``intake status``, the digest, an alert after an hour) and the next step runs; the
step is tried again at the next poll, and its record is cleared when it succeeds. Only a mailbox that cannot
be reached at all fails the poll as a whole (``MailboxError``); the outputs are still brought up to date.

A dry run works on a throw-away copy of the store under ``<data_dir>/dry-run/`` (its preview ledger and
digest stay there): nothing it records, queues or counts is seen by the next real poll, nothing is sent,
flagged or moved, and what would be sent is logged.
"""

from __future__ import annotations

import collections
import itertools
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from intake.changes import queue_update_notices
from intake.config import Config
from intake.errors import MailboxError
from intake.mailbox import FetchedMessage, Mailbox
from intake.models import ReplyState
from intake.poll import alerts, fetch, mailbox_actions, outputs, record, reply, resolve, send
from intake.poll.context import PollContext

log = logging.getLogger("intake")
T = TypeVar("T")
DRY_RUN_DIR = "dry-run"
READ_AHEAD, READ_AHEAD_BYTES = 3, 16 * 1024 * 1024  # messages fetched and handed to the parsers before recorded
MailboxFactory = Callable[..., Mailbox]


@dataclass
class PollSummary:
    """What one poll did; logged as one line and stored with the poll."""

    new: int = 0
    fetched: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    remapped: int = 0
    retried_later: int = 0
    rendered: int = 0
    render_failed: int = 0
    sent: int = 0
    send_failed: int = 0
    would_send: int = 0
    queued: int = 0
    moved: int = 0
    failed_steps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "outcomes": dict(self.outcomes)}

    def line(self) -> str:
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())) or "none"
        failed = f" FAILED STEPS: {','.join(self.failed_steps)}" if self.failed_steps else ""
        dry = f" would send={self.would_send} (dry run: nothing kept)" if self.dry_run else ""
        return (
            f"poll done in {self.seconds:.1f}s: new={self.new} fetched={self.fetched} [{outcomes}] "
            f"replies sent={self.sent} queued={self.queued} failed={self.send_failed} "
            f"flagged={self.moved}{dry}{failed}"
        )


def run_poll(ctx: PollContext, mailbox_factory: MailboxFactory = Mailbox) -> PollSummary:
    """One poll. Raises ``MailboxError`` when the mailbox cannot be reached (after recording the poll)."""
    if ctx.dry_run:
        return _dry_run(ctx, mailbox_factory)
    started = time.monotonic()
    summary = PollSummary()
    poll_id = ctx.store.start_poll(False)
    try:
        _stages(ctx, mailbox_factory, summary)
    except MailboxError as e:
        summary.seconds = time.monotonic() - started
        ctx.store.finish_poll(poll_id, False, summary.as_dict(), f"{type(e).__name__}: {e}")
        raise
    summary.queued = ctx.store.reply_counts().get(ReplyState.QUEUED, 0)
    summary.seconds = time.monotonic() - started
    ctx.store.finish_poll(poll_id, _read_mail(ctx, summary), summary.as_dict(),
                          f"steps failed: {', '.join(summary.failed_steps)}" if summary.failed_steps else None)
    log.info(summary.line())
    return summary


def _read_mail(ctx: PollContext, summary: PollSummary) -> bool:
    """A poll counts as successful (``intake status``, the health check) when it read at least one folder;
    other failing steps are reported on their own, with since when."""
    return any(f"fetch:{f}" not in summary.failed_steps for f in ctx.cfg.mailbox.folders)


def _stages(ctx: PollContext, mailbox_factory: MailboxFactory, summary: PollSummary) -> None:
    folders = ctx.cfg.mailbox.folders
    try:
        with mailbox_factory(ctx.cfg.mailbox) as mb:
            _step(ctx, summary, "connect", lambda: None)  # reached: clears an earlier connect failure
            if not ctx.dry_run:
                _step(ctx, summary, "resolve", lambda: resolve.resolve_unsent(ctx, mb))
                _mailbox_actions(ctx, mb, summary)
            for folder in folders:
                _step(ctx, summary, f"fetch:{folder}", lambda f=folder: _intake(ctx, mb, f, summary))
            rendered = _step(ctx, summary, "reply", lambda: reply.render_owed_replies(ctx), reply.Rendered())
            summary.rendered, summary.render_failed = rendered.queued, rendered.failed
            _step(ctx, summary, "notices", lambda: queue_update_notices(
                ctx.store, ctx.cfg, ctx.store.messages, now=ctx.clock(), dry_run=ctx.dry_run))
            sent = _step(ctx, summary, "send", lambda: send.send_queued(ctx, mb), send.Sent())
            summary.sent, summary.send_failed, summary.would_send = sent.sent, sent.failed, sent.would_send
            if not ctx.dry_run:
                _mailbox_actions(ctx, mb, summary)
            summary.fetched = mb.bodies_fetched
    except MailboxError as e:
        ctx.store.step_failed("connect", str(e), ctx.clock())
        _after_mail(ctx, summary)
        raise
    _after_mail(ctx, summary)


def _mailbox_actions(ctx: PollContext, mb: Mailbox, summary: PollSummary) -> None:
    """Flag/move the pending messages of each folder, one step per folder."""
    for folder in ctx.cfg.mailbox.folders:
        summary.moved += _step(ctx, summary, f"mailbox_actions:{folder}",
                               lambda f=folder: mailbox_actions.finish_mailbox_actions(ctx, mb, f), 0)


def _after_mail(ctx: PollContext, summary: PollSummary) -> None:
    html = _step(ctx, summary, "outputs", lambda: outputs.refresh_outputs(ctx), None)
    if not ctx.dry_run:
        _step(ctx, summary, "publish", lambda: outputs.publish_outputs(ctx))
        _step(ctx, summary, "digest_mail", lambda: outputs.mail_digest(ctx, html))
        _step(ctx, summary, "alerts", lambda: alerts.mail_alerts(ctx))


def _intake(ctx: PollContext, mb: Mailbox, folder: str, summary: PollSummary) -> None:
    """Fetch the folder's new mail and record each message (a message's failure stays with it)."""
    new = fetch.new_mail(ctx, mb, folder)
    summary.new += new.count
    summary.remapped += new.remapped
    # A message over the size limit is recorded from its header block alone: its district is known and told.
    heads = mb.headers([m.uid for m in new.too_big]) if new.too_big else {}
    too_big = (FetchedMessage(m.uid, m.internaldate, m.size, heads.get(m.uid, b"")) for m in new.too_big)
    try:
        for fetched in itertools.chain(too_big, _read_ahead(ctx, folder, new.uidvalidity, new.bodies)):
            result = record.record_one(ctx, fetched, folder, new.uidvalidity)
            if result.outcome is not None:
                summary.outcomes[result.outcome] += 1
            summary.retried_later += result.retry_later
    finally:
        if ctx.parsers is not None:
            ctx.parsers.close()  # the parser children end with the folder's mail


def _read_ahead(
    ctx: PollContext, folder: str, validity: int, bodies: Iterator[FetchedMessage]
) -> Iterator[FetchedMessage]:
    """The fetched messages in order, each handed to the parser pool to be read ahead a few messages before
    the worker records it, so the parser children read the next messages' files while the worker records
    this one (both cores busy on a backlog). At most ``READ_AHEAD`` messages and ``READ_AHEAD_BYTES`` wait; a
    message over ``READ_AHEAD_BYTES`` is not read ahead."""
    if ctx.parsers is None:
        yield from bodies
        return
    window: collections.deque[FetchedMessage] = collections.deque()
    held = 0
    for fetched in bodies:
        if len(fetched.raw) <= READ_AHEAD_BYTES:  # a bigger message is read in its turn, not held ahead
            ctx.parsers.read_ahead(record.ahead_tag(folder, validity, fetched.uid), fetched.raw)
        window.append(fetched)
        held += len(fetched.raw)
        while window and (len(window) > READ_AHEAD or held > READ_AHEAD_BYTES):
            held -= len(window[0].raw)
            yield window.popleft()
    yield from window


def _step(ctx: PollContext, summary: PollSummary, name: str, run: Callable[[], T], default: Any = None) -> T:
    """Run one step; a failure is logged in one line, recorded since-when, and does not stop the poll."""
    try:
        result = run()
    except Exception as e:
        since = ctx.store.step_failed(name, f"{type(e).__name__}: {e}", ctx.clock())
        log.error("step %s failed (failing since %s, retried next poll): %s: %s", name,
                  since.isoformat(timespec="seconds"), type(e).__name__, e)
        log.debug("step %s traceback", name, exc_info=True)
        summary.failed_steps.append(name)
        return default
    ctx.store.step_ok(name)
    return result


def _dry_run(ctx: PollContext, mailbox_factory: MailboxFactory) -> PollSummary:
    """The poll in a throw-away copy of the store under ``<data_dir>/dry-run``, removed afterwards."""
    started = time.monotonic()
    work = ctx.cfg.paths.data_dir / DRY_RUN_DIR
    shutil.rmtree(work, ignore_errors=True)
    copy = ctx.store.copy_to(work / "intake.db")
    cfg = _config_in(ctx.cfg, work)
    summary = PollSummary(dry_run=True)
    try:
        dry = replace(ctx, cfg=cfg, store=copy, archive=PollContext.of(cfg, copy).archive)
        _stages(dry, mailbox_factory, summary)
        summary.queued = copy.reply_counts().get(ReplyState.QUEUED, 0)
    finally:
        copy.close()
        for leftover in work.glob("intake.db*"):
            leftover.unlink()
        shutil.rmtree(work / "archive", ignore_errors=True)
    summary.seconds = time.monotonic() - started
    log.info(summary.line())
    return summary


def _config_in(cfg: Config, data_dir: Any) -> Config:
    return replace(cfg, paths=replace(cfg.paths, data_dir=data_dir))
