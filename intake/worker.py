"""The worker as callers know it: a thin facade over the poll stages in ``intake.poll``.

``Worker.poll()`` runs one poll (``intake.poll.cycle``); ``record`` records one message without the mailbox
(``intake import``); ``write_ledger`` rewrites the outputs (``intake export``). Read ``intake/poll/`` in
order to follow a message: fetch → record → reply → resolve → send → mailbox_actions → outputs → alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from intake.config import Config, MailboxConfig
from intake.mailbox import FetchedMessage, Mailbox
from intake.models import Ledger, StoredMessage
from intake.poll import outputs
from intake.poll.context import MailerFactory, PollContext
from intake.poll.cycle import PollSummary, run_poll
from intake.poll.record import MAX_ATTEMPTS, record_message
from intake.poll.send import retry_delay
from intake.store import Store, now_utc
from intake.view import current_ledger

__all__ = ["MAX_ATTEMPTS", "PollSummary", "Worker", "retry_delay"]
log = logging.getLogger("intake")


class Worker:
    """Runs polls for one config. The clock and the I/O edges are passed in."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        dry_run: bool = False,
        clock: Callable[[], datetime] = now_utc,
        mailbox_factory: Callable[[MailboxConfig], Mailbox] = Mailbox,
        mailer_factory: MailerFactory | None = None,
    ) -> None:
        self.cfg = config
        self.store = store
        self.dry_run = dry_run
        self.mailbox_factory = mailbox_factory
        extra = {"mailer_factory": mailer_factory} if mailer_factory is not None else {}
        self.ctx = PollContext.of(config, store, clock=clock, dry_run=dry_run, **extra)
        if removed := self.ctx.archive.remove_stale_temp():
            log.info("removed %d temporary files left by an interrupted writer", removed)

    def poll(self) -> PollSummary:
        """One poll. Raises ``MailboxError`` when the mailbox cannot be reached."""
        return run_poll(self.ctx, self.mailbox_factory)

    def load(self) -> None:
        """Kept for callers of the hub worker; the stages read the store when they need it."""

    def ledger(self) -> Ledger:
        return current_ledger(self.store, self.cfg)

    def record(
        self, fetched: FetchedMessage, validity: int, *, source: str = "imap", folder: str | None = None,
        reply: bool = True,
    ) -> StoredMessage | None:
        """Record one message (a reply owed is rendered and sent by the next poll)."""
        return record_message(self.ctx, fetched, validity, folder=folder or self.cfg.mailbox.folder,
                              source=source, reply=reply)

    def write_ledger(self) -> str:
        """Rewrite ``ledger.xlsx`` and ``digest.html`` from the store (and copy them to ``paths.publish_dir``);
        returns the digest page."""
        html = outputs.write_outputs(self.ctx)
        if not self.dry_run:
            outputs.publish_outputs(self.ctx)
        return html

    def write_bundle(self, target: Path) -> Path:
        """The workbook and the forms beside it (``intake export --bundle``); returns what was written."""
        return outputs.write_bundle(self.ctx, target)

    def refresh_outputs(self) -> str | None:
        return outputs.refresh_outputs(self.ctx)
