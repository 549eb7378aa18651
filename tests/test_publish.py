"""paths.publish_dir: after each change, ledger.xlsx and digest.html are copied there atomically."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from support import make_config

from intake.archive import Archive
from intake.config import Config
from intake.poll import outputs
from intake.poll.context import PollContext
from intake.store import Store
from intake.worker import Worker
from reports import files

NOW = datetime(2024, 11, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    base = make_config(tmp_path / "var")
    return replace(base, paths=replace(base.paths, publish_dir=tmp_path / "share" / "台账"))


def published(cfg: Config) -> list[str]:
    assert cfg.paths.publish_dir is not None
    return sorted(p.name for p in cfg.paths.publish_dir.iterdir())


def test_export_leaves_a_copy_in_the_publish_dir(cfg: Config) -> None:
    """``intake export`` (Worker.write_ledger) writes ledger.xlsx and digest.html and copies both, whole."""
    with Store(cfg.paths.data_dir / "intake.db") as store:
        Worker(cfg, store, clock=lambda: NOW).write_ledger()
    share = cfg.paths.publish_dir
    assert published(cfg) == ["digest.html", "ledger.xlsx"], "no temporary file left behind"
    for name in ("ledger.xlsx", "digest.html"):
        assert (share / name).read_bytes() == (cfg.paths.data_dir / name).read_bytes()
        assert (share / name).stat().st_mode & 0o777 == 0o644
    assert load_workbook(share / "ledger.xlsx").sheetnames[0] == "项目台账"


def test_copied_again_only_after_a_change_or_when_missing(cfg: Config) -> None:
    """An idle poll copies nothing; rewritten outputs (here: the digest's next hour) or a deleted copy are copied."""
    clock = [NOW]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        ctx = PollContext(cfg, store, Archive(cfg.paths.data_dir), clock=lambda: clock[0])
        assert outputs.publish_outputs(ctx) is False, "nothing written yet: nothing to copy"
        outputs.refresh_outputs(ctx)
        assert outputs.publish_outputs(ctx) is True
        inode = (cfg.paths.publish_dir / "ledger.xlsx").stat().st_ino
        assert outputs.refresh_outputs(ctx) is None and outputs.publish_outputs(ctx) is False
        assert (cfg.paths.publish_dir / "ledger.xlsx").stat().st_ino == inode

        clock[0] = NOW + timedelta(hours=1)
        assert outputs.refresh_outputs(ctx) is not None
        assert outputs.publish_outputs(ctx) is True
        assert (cfg.paths.publish_dir / "ledger.xlsx").stat().st_ino != inode, "replaced by a new file"

        (cfg.paths.publish_dir / "digest.html").unlink()
        assert outputs.publish_outputs(ctx) is True and published(cfg) == ["digest.html", "ledger.xlsx"]


def test_a_failed_copy_keeps_the_old_one_and_is_tried_again(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The share failing mid-copy leaves the previous copy whole and no debris; the next poll copies."""
    clock = [NOW]
    with Store(cfg.paths.data_dir / "intake.db") as store:
        ctx = PollContext(cfg, store, Archive(cfg.paths.data_dir), clock=lambda: clock[0])
        outputs.refresh_outputs(ctx)
        outputs.publish_outputs(ctx)
        before = (cfg.paths.publish_dir / "ledger.xlsx").read_bytes()
        clock[0] = NOW + timedelta(hours=1)
        outputs.refresh_outputs(ctx)

        def share_gone(fd: int) -> None:
            raise OSError("share unmounted")

        with monkeypatch.context() as m:
            m.setattr(files.os, "fsync", share_gone)
            with pytest.raises(OSError, match="share unmounted"):
                outputs.publish_outputs(ctx)
        assert (cfg.paths.publish_dir / "ledger.xlsx").read_bytes() == before
        assert published(cfg) == ["digest.html", "ledger.xlsx"]
        assert outputs.publish_outputs(ctx) is True
        assert (cfg.paths.publish_dir / "ledger.xlsx").read_bytes() == (cfg.paths.data_dir / "ledger.xlsx").read_bytes()


def test_without_publish_dir_nothing_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is optional: unset, the outputs stay in the data directory only."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    cfg = make_config(tmp_path / "var")
    assert cfg.paths.publish_dir is None
    with Store(cfg.paths.data_dir / "intake.db") as store:
        ctx = PollContext(cfg, store, Archive(cfg.paths.data_dir), clock=lambda: NOW)
        outputs.refresh_outputs(ctx)
        assert outputs.publish_outputs(ctx) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]
