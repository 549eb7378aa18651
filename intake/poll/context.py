"""What every stage of a poll is given: the config, the store, the archive, the clock and the SMTP edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from intake.archive import Archive
from intake.config import Config, SmtpConfig
from intake.mailer import Mailer
from intake.store import Store, now_utc

MailerFactory = Callable[[SmtpConfig], Mailer]


@dataclass
class PollContext:
    """One poll's surroundings. In a dry run ``store`` is a throw-away copy and ``cfg`` points at it."""

    cfg: Config
    store: Store
    archive: Archive
    clock: Callable[[], datetime] = now_utc
    mailer_factory: MailerFactory = Mailer
    dry_run: bool = False

    @classmethod
    def of(cls, cfg: Config, store: Store, **kw: object) -> PollContext:
        return cls(cfg, store, Archive(cfg.paths.data_dir), **kw)  # type: ignore[arg-type]
