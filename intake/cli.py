"""The ``intake`` command line: thin wrappers that turn our errors into one line and an exit code."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import intake
from intake import config as _config
from intake.config import Config
from intake.errors import ConfigError, IntakeError, LockedError, MailboxError
from intake.lock import poll_lock
from intake.models import Status
from intake.store import Store

log = logging.getLogger("intake")
REVIEW_STATUSES = (Status.ACCEPTED, Status.NEEDS_FIX, Status.REVIEW, Status.REJECTED)  # as `intake review` lists them
DEFAULT_CONFIG = os.environ.get("INTAKE_CONFIG", "config.toml")
EXIT_CONFIG, EXIT_MAILBOX, EXIT_LOCKED, EXIT_STALE = 2, 3, 4, 5
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_BYTES, LOG_FILE_BACKUPS = 10 * 1024 * 1024, 5  # paths.log_file: 10 MB, then .1 … .5 (60 MB at most)


class _Formatter(logging.Formatter):
    """Local time with its UTC offset (``2024-11-05 09:12:00+0800``), and the configured passwords blanked
    out of every line, whatever logged them (ours, a library's, a traceback)."""

    secrets: tuple[str, ...] = ()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        from datetime import datetime

        return datetime.fromtimestamp(record.created).astimezone().strftime(datefmt or "%Y-%m-%d %H:%M:%S%z")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


_FORMATTER = _Formatter(LOG_FORMAT)


def _setup_logging(verbose: bool) -> None:
    """Log lines to standard error (the journal, ``docker logs``); ``load_config`` adds ``paths.log_file``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FORMATTER)
    root = logging.getLogger()
    # our stderr handler from an earlier main() in this process goes; other handlers (pytest's, the log file) stay
    for old in [h for h in root.handlers if h.formatter is _FORMATTER and type(h) is logging.StreamHandler]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("apscheduler", "pdfminer", "mail.log", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _log_to_file(path: Path) -> None:
    """Also log to ``path``, rotated by size (once per process; the directory is created)."""
    from logging.handlers import RotatingFileHandler

    root = logging.getLogger()
    if any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"paths.log_file: cannot write {path} ({e.strerror})") from None
    handler.setFormatter(_FORMATTER)
    root.addHandler(handler)


def load_config(path: Path, need_secrets: bool = True) -> Config:
    """``intake.config.load_config``, then the log set up as the config says: the passwords are masked in
    every log line, and ``paths.log_file`` (when set) gets the same lines as standard error."""
    cfg = _config.load_config(path, need_secrets)
    _FORMATTER.secrets = tuple(s for s in (cfg.mailbox.password, cfg.smtp.password) if len(s) >= 4)
    if cfg.paths.log_file is not None:
        _log_to_file(cfg.paths.log_file)
    log.debug("config %s loaded (data in %s)", cfg.source, cfg.paths.data_dir)
    return cfg


def open_store(cfg: Config) -> Store:
    return Store(cfg.paths.data_dir / "intake.db")


def check_templates(cfg: Config) -> None:
    """Render every template on a sample before any mail is touched; a broken one is a config error."""
    from intake.poll.reply import check_templates as render_samples

    try:
        render_samples(cfg)
    except Exception as e:  # whatever the template engine raises, said in one line
        where = cfg.paths.templates_dir or "the built-in templates"
        reason = " ".join(str(e).split())  # one line, whatever the engine's message looks like
        raise ConfigError(f"templates in {where} do not render: {type(e).__name__}: {reason}") from e


def cmd_poll(args: argparse.Namespace) -> int:
    cfg = load_config(Path(args.config))
    check_templates(cfg)
    from intake.worker import Worker

    with poll_lock(cfg.paths.data_dir), open_store(cfg) as store:
        Worker(cfg, store, dry_run=args.dry_run).poll()
    return 0


TEST_INTERVAL_ENV = "INTAKE_TEST_INTERVAL_SECONDS"  # tests only: poll every N seconds instead of minutes


def cmd_run(args: argparse.Namespace) -> int:
    """Poll at start and then every interval until SIGTERM/SIGINT, which let the poll in progress finish.

    APScheduler runs each poll in its one pool thread; the poll opens and closes its own store there (SQLite
    objects belong to the thread that made them). The main thread holds the lock and waits for a signal,
    then shuts the scheduler down waiting for the poll in progress, and exits 0.
    """
    import threading
    from datetime import datetime

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    cfg = load_config(Path(args.config))
    check_templates(cfg)
    from intake.worker import Worker

    seconds = int(os.environ.get(TEST_INTERVAL_ENV) or 0) or cfg.schedule.interval_minutes * 60

    def job() -> None:
        try:
            with open_store(cfg) as store:
                Worker(cfg, store, dry_run=args.dry_run).poll()
        except Exception as e:  # one failed poll must not end the worker
            log.error("poll failed, next poll in %d s: %s: %s", seconds, type(e).__name__, " ".join(str(e).split()))
            log.debug("poll failure traceback", exc_info=True)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current poll", signal.Signals(signum).name)
        stop.set()

    with poll_lock(cfg.paths.data_dir):
        open_store(cfg).close()  # migrate (or fail) before the first poll, in one line
        scheduler = BackgroundScheduler(timezone=cfg.campaign.tz, executors={"default": ThreadPoolExecutor(1)})
        scheduler.add_job(job, "interval", seconds=seconds, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(cfg.campaign.tz), id="poll", misfire_grace_time=None)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        scheduler.start()
        log.info("worker started: polling %s every %d s", ", ".join(cfg.mailbox.folders), seconds)
        while not stop.wait(1):
            pass
        scheduler.shutdown(wait=True)
        log.info("worker stopped")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    cfg = load_config(Path(args.config), need_secrets=False)
    from intake.worker import Worker

    with open_store(cfg) as store:
        if args.bundle:  # the workbook with the forms beside it, for a staff PC
            print(Worker(cfg, store).write_bundle(Path(args.bundle)))
            return 0
        Worker(cfg, store).write_ledger()
    print(cfg.paths.data_dir / "ledger.xlsx")
    return 0


def cmd_config_reference(_args: argparse.Namespace) -> int:
    from intake.configdoc import render_config_reference

    print(render_config_reference(), end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from intake.status import status

    cfg = load_config(Path(args.config), need_secrets=False)
    with open_store(cfg) as store:
        report = status(cfg, store, datetime.now(UTC))
    print("\n".join(report.lines))
    return report.exit_code


def cmd_import(args: argparse.Namespace) -> int:
    from datetime import datetime

    from intake.backfill import import_message
    from intake.worker import Worker

    cfg = load_config(Path(args.config), need_secrets=False)
    arrival = None
    if args.arrival:
        try:
            arrival = datetime.fromisoformat(args.arrival)
        except ValueError:
            raise ConfigError(f"--arrival: not an ISO date-time: {args.arrival}") from None
        if arrival.tzinfo is None:
            raise ConfigError("--arrival: give a UTC offset, e.g. 2024-11-05T10:00:00+08:00")
    failures = 0
    with poll_lock(cfg.paths.data_dir), open_store(cfg) as store:
        worker = Worker(cfg, store)
        worker.load()
        for name in args.files:
            try:
                raw = Path(name).read_bytes()
            except OSError as e:
                print(f"{name}: cannot read ({e.strerror})")
                failures += 1
                continue
            result = import_message(worker, name, raw, arrival, args.queue_replies)
            if result.error or result.stored is None:
                print(f"{name}: not imported: {result.error}")
                failures += 1
                continue
            m = result.stored
            when = m.arrival.astimezone(cfg.campaign.tz).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{name}: {m.outcome} ({m.district or m.sender}), arrival {when} from {result.arrival_source}")
        worker.write_ledger()
    print(cfg.paths.data_dir / "ledger.xlsx")
    return 1 if failures else 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Run recorded messages again from their archived originals, then one poll: the replies owed go out once
    (none twice) and the ledger follows."""
    from intake.reprocess import reprocess, select
    from intake.worker import Worker

    if bool(args.uids) == bool(args.outcome):
        raise IntakeError("reprocess: give UIDs or --outcome error|unknown_sender (not both)")
    cfg = load_config(Path(args.config))
    check_templates(cfg)
    with poll_lock(cfg.paths.data_dir), open_store(cfg) as store:
        worker = Worker(cfg, store)
        rows, missing = select(worker.ctx, uids=args.uids, folder=args.folder, outcome=args.outcome)
        print("\n".join(missing) or f"{len(rows)} message(s) to reprocess", flush=True)
        done = reprocess(worker.ctx, rows)
        for result in done:
            print(result.line(), flush=True)
        if rows:
            print("polling: replies owed are sent once, the ledger is rewritten", flush=True)
            worker.poll()
    return 1 if missing or any(r.after is None for r in done) else 0


def cmd_check(args: argparse.Namespace) -> int:
    from intake.check import check

    cfg = load_config(Path(args.config))
    failed = 0
    for step in check(cfg):
        print(step.line(), flush=True)
        failed += not step.ok
    return 1 if failed else 0


def cmd_health(args: argparse.Namespace) -> int:
    """One line: healthy, or why not (the Docker HEALTHCHECK and monitoring run this)."""
    from datetime import UTC, datetime, timedelta

    from intake.health import health

    cfg = load_config(Path(args.config), need_secrets=False)
    minutes = args.max_age_minutes or 3 * cfg.schedule.interval_minutes
    report = health(cfg.paths.data_dir / "intake.db", datetime.now(UTC), timedelta(minutes=minutes),
                    args.max_failures, cfg.campaign.tz)
    print(report.line)
    return report.exit_code


def _rewrite_ledger(cfg: Config, store: Store) -> None:
    """Bring ledger.xlsx up to date after a staff command (the worker's next poll would too)."""
    from intake.worker import Worker

    Worker(cfg, store).write_ledger()


def cmd_review(args: argparse.Namespace) -> int:
    """One decision (受理编号 --status --reason), or every row of a staff copy of 项目台账 (--from): all or none."""
    import getpass
    from datetime import UTC, datetime

    from intake.review import review_file, review_one

    cfg = load_config(Path(args.config), need_secrets=False)
    by = (args.by or "").strip() or getpass.getuser()
    if args.from_file and (args.number or args.status or args.reason):
        raise ConfigError("give either a 受理编号 with --status and --reason, or --from FILE.xlsx, not both")
    if not args.from_file and not (args.number and args.status and args.reason):
        raise ConfigError("give a 受理编号 with --status and --reason (or --from FILE.xlsx)")
    with open_store(cfg) as store:
        if args.from_file:
            applied = review_file(store, cfg, Path(args.from_file), by, datetime.now(UTC))
            print("\n".join(applied.lines))
            if applied.kept:
                _rewrite_ledger(cfg, store)
            return 0 if applied.ok else 1
        print(review_one(store, cfg, args.number, args.status, args.reason, by, datetime.now(UTC)))
        _rewrite_ledger(cfg, store)
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    """The close-out after the deadline: 终审结果 and one 结果通知 per district, queued for the next poll."""
    from datetime import UTC, datetime

    from intake.closeout import close

    cfg = load_config(Path(args.config), need_secrets=False)
    check_templates(cfg)
    with open_store(cfg) as store:
        result = close(store, cfg, datetime.now(UTC), force=args.force)
        print("\n".join(result.lines))
        if result.closed:
            _rewrite_ledger(cfg, store)
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    """Queue a copy of a message's reply, marked 补发; the next poll sends it."""
    from datetime import UTC, datetime

    from intake.resend import queue_resend

    cfg = load_config(Path(args.config), need_secrets=False)
    with open_store(cfg) as store:
        done = queue_resend(store, args.folder or cfg.mailbox.folder, args.uid, datetime.now(UTC))
        print(f"UID {done.uid}: re-send #{done.count} to {done.to_addr} queued ({done.subject}); "
              "the next poll sends it")
        _rewrite_ledger(cfg, store)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from samples.demo import main as demo_main

    if not args.verbose:  # the demo prints its own progress; per-message log lines only with -v
        logging.getLogger().setLevel(logging.WARNING)
    return demo_main(args.dir)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "poll": (cmd_poll, "run one poll cycle: fetch, process, reply, rewrite the ledger"),
    "run": (cmd_run, "the scheduled worker: poll every schedule.interval_minutes until SIGINT/SIGTERM"),
    "export": (cmd_export, "rewrite ledger.xlsx from the database"),
    "status": (cmd_status, "what the worker has done, from the database; non-zero when polling went stale"),
    "check": (cmd_check, "validate the config and log in to IMAP (with ID) and SMTP; never sends mail"),
    "config-reference": (cmd_config_reference, "print the configuration reference, generated from the schema"),
    "demo": (cmd_demo, "the whole job on built-in sample mail, with embedded IMAP and SMTP servers on 127.0.0.1"),
    "reprocess": (cmd_reprocess, "run recorded messages again from their archived originals (by UID, or every "
                                 "--outcome error / unknown_sender), then poll; no reply is sent twice"),
    "import": (cmd_import, "process .eml files exported from webmail (backfill); never sends mail"),
    "review": (cmd_review, "record a staff decision on a project, or many from a copy of 项目台账 (--from)"),
    "close": (cmd_close, "after the deadline: fix the final list (终审结果) and queue one 结果通知 per district"),
    "resend": (cmd_resend, "send a message's reply again, marked 补发 (queued for the next poll)"),
    "health": (cmd_health, "exit 0 when polls are succeeding, non-zero (with the reason) when they stopped; "
                           "reads only the database"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake", description="Mail intake for the Xuzhou IP Bureau.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {intake.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # -v after the command too (`intake poll -v`); SUPPRESS keeps a -v given before the command
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        if name not in ("demo", "config-reference"):
            p.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
        if name == "demo":
            p.add_argument("--dir", default="intake-demo",
                           help="where the demo writes everything, rebuilt on each run (default: ./%(default)s)")
        if name == "import":
            p.add_argument("files", nargs="+", metavar="FILE.eml")
            p.add_argument("--arrival", help="arrival time for all files (ISO, with offset); default: Received header")
            p.add_argument("--queue-replies", action="store_true", help="queue receipts for the next poll to send")
        if name == "reprocess":
            p.add_argument("uids", nargs="*", type=int, metavar="UID")
            p.add_argument("--folder", help="the folder the UIDs are in (default: mailbox.folder)")
            p.add_argument("--outcome", choices=["error", "unknown_sender"],
                           help="every message recorded with this outcome")
        if name in ("poll", "run"):
            p.add_argument("--dry-run", action="store_true",
                           help="process and write the ledger; send nothing, move nothing")
        if name == "export":
            p.add_argument("--bundle", metavar="DIR|FILE.zip",
                           help="write the workbook with copies of the forms beside it (links relative), to DIR "
                                "or into a .zip, instead of rewriting ledger.xlsx")
        if name == "review":
            p.add_argument("number", nargs="?", metavar="受理编号", help="the project, e.g. XZ2024-云龙-001")
            p.add_argument("--status", choices=[s.value for s in REVIEW_STATUSES], help="the decided status")
            p.add_argument("--reason", help="why (复核意见); shown to the district when the status changes")
            p.add_argument("--by", help="who decides (复核人; default: the login name)")
            p.add_argument("--from", dest="from_file", metavar="FILE.xlsx",
                           help="a copy of 项目台账 with 复核结论/复核意见 filled in: every row applied, or none")
        if name == "close":
            p.add_argument("--force", action="store_true",
                           help="close even with undecided 待审核 projects, leaving them 待审核")
        if name == "resend":
            p.add_argument("uid", type=int, metavar="UID", help="the message's UID (as in 来件登记)")
            p.add_argument("--folder", help="the folder the UID is in (default: mailbox.folder)")
        if name == "health":
            p.add_argument("--max-age-minutes", type=int, default=0, metavar="N",
                           help="unhealthy when the last successful poll is older (default: 3 x interval_minutes)")
            p.add_argument("--max-failures", type=int, default=3, metavar="N",
                           help="unhealthy when the last N polls all failed (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except LockedError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except MailboxError as e:
        print(f"mailbox error: {e}", file=sys.stderr)
        return EXIT_MAILBOX
    except IntakeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
