"""``intake check``: prove the config, the IMAP login (with ID) and the SMTP login, one line per step.

Never sends mail and never changes the mailbox: the folder is selected and searched, but no
message is fetched, flagged or moved, and a missing processed folder is reported, not created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from intake.config import Config
from intake.mailbox import Mailbox
from intake.mailer import Mailer


@dataclass(frozen=True)
class Step:
    ok: bool
    text: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.text}"


def _imap(cfg: Config) -> str:
    mb = cfg.mailbox
    with Mailbox(mb) as box:
        count = len(box.uids_from(1))
        folders = ""
        if mb.processed_folder:
            state = "exists" if box.folder_exists(mb.processed_folder) else "will be created"
            folders = f"; processed folder {mb.processed_folder!r} {state}"
    id_note = " with ID" if mb.imap_id else ""
    tls = "certificate verified" if box.mode != "plain" else "not encrypted"
    return (f"IMAP {mb.host}:{mb.port} ({box.mode}, {tls}) login as {mb.user}{id_note}, folder {mb.folder!r} "
            f"(UIDVALIDITY {box.uidvalidity}, {count} messages){folders}")


def _smtp(cfg: Config) -> str:
    sm = cfg.smtp
    with Mailer(sm):
        pass
    mode = "SSL" if sm.ssl else "STARTTLS" if sm.starttls else "plain"
    mode += ", certificate verified" if sm.ssl or sm.starttls else ", not encrypted"
    return f"SMTP {sm.host}:{sm.port} ({mode}) login as {sm.user or '(no login)'}; nothing sent"


def _templates(cfg: Config) -> str:
    from intake.poll.reply import check_templates

    check_templates(cfg)
    return f"templates ({cfg.paths.templates_dir or 'built-in'}) render a receipt, a late notice and the digest"


def check(cfg: Config) -> Iterator[Step]:
    """Each step's result, in order; a failed step does not stop the next."""
    yield Step(True, f"config {cfg.source}: valid, {len(cfg.districts)} districts, "
                     f"deadline {cfg.campaign.deadline.isoformat()}")
    steps: list[Callable[[Config], str]] = [_imap, _smtp, _templates]
    for step in steps:
        try:
            yield Step(True, step(cfg))
        except Exception as e:  # noqa: BLE001 - each step's failure is its line (templates raise anything)
            yield Step(False, f"{step.__name__.strip('_').upper()}: {e}")
