"""The ledger as staff and districts see it, from the store: the rules' statuses with the staff decisions and
the close-out's final list laid over (``intake.merge.build_ledger``). One place, so ``intake status``, the
workbook, ``intake review`` and ``intake reprocess`` never disagree on what a project's status is."""

from __future__ import annotations

from collections.abc import Sequence

from intake.config import Config
from intake.merge import build_ledger
from intake.models import Ledger, StoredMessage
from intake.store import Store


def current_ledger(store: Store, cfg: Config, messages: Sequence[StoredMessage] | None = None) -> Ledger:
    """The ledger of ``messages`` (default: every recorded message) as it stands now."""
    return build_ledger(store.messages() if messages is None else messages, cfg, decisions=store.decisions(),
                        final=store.final_results())
