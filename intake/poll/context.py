"""What every stage of a poll is given: the config, the store, the archive, the clock and the SMTP edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from intake.archive import Archive
from intake.config import Config, SmtpConfig
from intake.mailer import Mailer
from intake.parsepool import ParserPool
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
    parsers: ParserPool | None = None  # documents are read in its children (started when needed)

    @classmethod
    def of(cls, cfg: Config, store: Store, **kw: object) -> PollContext:
        pool = ParserPool(memory_mb=cfg.parsing.child_memory_mb, timeout=cfg.parsing.file_timeout_seconds)
        return cls(cfg, store, Archive(cfg.paths.data_dir), **{"parsers": pool, **kw})  # type: ignore[arg-type]
