"""What an operator relies on around the worker: version, -v, the log, the lock, health, and the shipped
deploy files (systemd unit, cron line, Docker HEALTHCHECK) run as they ship."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support import SENDERS, config_toml, make_config, on_time

import intake
from intake import cli
from intake.compose import compose
from intake.config import load_config
from intake.errors import LockedError
from intake.health import HEALTHY, NEVER, UNHEALTHY, Poll, judge
from intake.lock import poll_lock

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INTAKE = shutil.which("intake", path=str(BIN)) or "intake"  # the console script pip installed
UNIT = ROOT / "deploy" / "xzip-intake.service"
CRONTAB = ROOT / "deploy" / "crontab"
DOCKERFILE = ROOT / "Dockerfile"
OFFSET_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} (DEBUG|INFO|WARNING|ERROR) ")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def run(argv: list[str], env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_config(tmp_path: Path, imap: dict | None = None, smtp: dict | None = None, extra_paths: str = "") -> Path:
    imap = imap or {"host": "127.0.0.1", "port": 1, "user": "x@163.com", "password_env": "INTAKE_IMAP_PASSWORD"}
    cfg = make_config(tmp_path / "var", imap=imap, smtp=smtp or {"host": "127.0.0.1", "port": 9})
    path = tmp_path / "config.toml"
    path.write_text(config_toml(cfg).replace("[paths]\n", f"[paths]\n{extra_paths}"), encoding="utf-8")
    return path


# -- version and -v -----------------------------------------------------------------------------------------

def test_version_comes_from_the_package_metadata() -> None:
    """`intake --version` prints the installed distribution's version and exits 0."""
    r = run([INTAKE, "--version"])
    assert r.returncode == 0
    assert r.stdout.strip() == f"intake {version('xzip-intake')}" == f"intake {intake.__version__}"


@pytest.mark.parametrize(("argv", "verbose"), [
    (["poll"], False), (["-v", "poll"], True), (["poll", "-v"], True), (["poll", "--verbose", "--dry-run"], True),
    (["-v", "health", "--max-failures", "2"], True), (["status", "-v"], True),
])
def test_verbose_before_or_after_the_command(argv: list[str], verbose: bool) -> None:
    """-v is accepted before and after the subcommand, and a -v before it is not reset by the subcommand."""
    assert cli.build_parser().parse_args(argv).verbose is verbose


def test_verbose_after_the_command_turns_on_debug_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`intake health -v` logs DEBUG lines (the config it read) that `intake health` does not."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    path = write_config(tmp_path)
    quiet, loud = run([INTAKE, "health", "--config", str(path)]), run([INTAKE, "health", "-v", "--config", str(path)])
    assert quiet.returncode == loud.returncode == NEVER, quiet.stderr + loud.stderr
    assert quiet.stderr == "" and OFFSET_LINE.match(loud.stderr) and " DEBUG intake: config " in loud.stderr


# -- the log ----------------------------------------------------------------------------------------------

@pytest.fixture
def root_logger():
    """The root logger's handlers as they were, restored after the test (the CLI adds its own)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    for h in root.handlers[:]:
        if h not in handlers:
            h.close()
            root.removeHandler(h)
    root.handlers[:] = handlers
    root.setLevel(level)
    cli._FORMATTER.secrets = ()


def test_log_file_rotates_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logger) -> None:
    """paths.log_file gets every line; past the size limit it rolls over, keeping the configured backups."""
    monkeypatch.setattr(cli, "LOG_FILE_BYTES", 2000)
    monkeypatch.setattr(cli, "LOG_FILE_BACKUPS", 2)
    log_file = tmp_path / "logs" / "intake.log"
    cli._log_to_file(log_file)
    cli._log_to_file(log_file)  # a second config load adds no second handler
    log = logging.getLogger("intake.test")
    log.setLevel(logging.INFO)
    for i in range(200):
        log.info("line %03d of the rotation test, padded to a reasonable length", i)
    files = sorted(p.name for p in log_file.parent.iterdir())
    assert files == ["intake.log", "intake.log.1", "intake.log.2"]
    assert all(p.stat().st_size <= 2000 for p in log_file.parent.iterdir())
    last = log_file.read_text(encoding="utf-8").splitlines()[-1]
    assert OFFSET_LINE.match(last) and last.endswith("line 199 of the rotation test, padded to a reasonable length")


def test_passwords_are_masked_in_every_log_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                root_logger) -> None:
    """After the config is loaded, a password that anything logs (a traceback included) shows as ***."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "imap-s3cret-value")
    path = write_config(tmp_path, extra_paths='log_file = "intake.log"\n')
    cfg = cli.load_config(path)
    log = logging.getLogger("intake.test")
    log.setLevel(logging.INFO)
    log.info("login with %s", "imap-s3cret-value")
    try:
        raise ValueError("imap-s3cret-value")
    except ValueError:
        log.exception("failed")
    text = (cfg.paths.data_dir.parent / "intake.log").read_text(encoding="utf-8")
    assert "imap-s3cret-value" not in text and text.count("***") == 3


@pytest.mark.dovecot
def test_a_real_poll_logs_with_offsets_to_the_file_and_never_the_password(imap_account, smtp_server,
                                                                          tmp_path: Path) -> None:
    """`intake poll -v` against Dovecot and aiosmtpd: every line in paths.log_file carries a UTC offset, and
    neither the file nor standard error holds the IMAP password."""
    imap_account.append(compose(sender=SENDERS["云龙区"], subject="申报材料", body="见附件",
                                message_id="<log1@example.cn>", arrival=on_time()), on_time())
    path = write_config(tmp_path, imap_account.mailbox_settings(),
                        {"host": smtp_server.host, "port": smtp_server.port}, 'log_file = "log/intake.log"\n')
    r = run([INTAKE, "poll", "-v", "--config", str(path)])
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "log" / "intake.log").read_text(encoding="utf-8").splitlines()
    starts = [line for line in lines if line[:2] == "20"]
    assert starts and all(OFFSET_LINE.match(line) for line in starts), starts[:3]
    assert any(" DEBUG " in line for line in starts) and any("poll" in line for line in starts)
    assert imap_account.password not in "\n".join(lines) + r.stderr
    assert len(smtp_server.messages) == 1


# -- the lock ---------------------------------------------------------------------------------------------

def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    """A second holder is refused at once (even in the same process); after release the lock is free."""
    with poll_lock(tmp_path):
        with pytest.raises(LockedError, match="another intake process is polling"), poll_lock(tmp_path):
            pass
    with poll_lock(tmp_path):
        pass


def test_second_poll_is_refused_with_exit_4_and_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a worker holds the lock, `intake poll` exits 4 with one line on standard error."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    path = write_config(tmp_path)
    with poll_lock(tmp_path / "var"):
        r = run([INTAKE, "poll", "--config", str(path)])
    assert r.returncode == 4
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "another intake process is polling" in lines[0]


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    """A worker killed with SIGKILL leaves no stale lock: the next poll gets it at once."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from intake.lock import poll_lock\n"
         "with poll_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError), poll_lock(tmp_path):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with poll_lock(tmp_path):
        pass


def test_lock_uses_no_posix_only_module() -> None:
    """The lock module imports neither fcntl nor msvcrt itself (filelock picks the OS's lock)."""
    tree = ast.parse((ROOT / "intake" / "lock.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "filelock" in imported and not imported & {"fcntl", "msvcrt"}


# -- health -----------------------------------------------------------------------------------------------

NOW = datetime(2024, 11, 5, 2, 0, tzinfo=UTC)


def polls(*spec: tuple[int, bool]) -> list[Poll]:
    """Polls newest first, each (minutes ago, ok)."""
    return [Poll(NOW - timedelta(minutes=m), ok, None if ok else "MailboxError: refused") for m, ok in spec]


@pytest.mark.parametrize(("case", "history", "code"), [
    ("never polled", polls(), NEVER),
    ("only failures", polls((1, False), (6, False)), NEVER),
    ("just succeeded", polls((1, True)), HEALTHY),
    ("three intervals ago exactly", polls((15, True)), HEALTHY),
    ("a minute past three intervals", polls((16, True)), UNHEALTHY),
    ("two failures after a success", polls((1, False), (6, False), (11, True)), HEALTHY),
    ("three failures in a row", polls((1, False), (6, False), (11, False), (12, True)), UNHEALTHY),
    ("failure then recovery", polls((1, True), (6, False), (11, False), (16, False)), HEALTHY),
])
def test_health_judges_the_poll_history(case: str, history: list[Poll], code: int) -> None:
    """Healthy only when a poll succeeded within three intervals and the last three did not all fail."""
    report = judge(history, NOW, timedelta(minutes=15), 3, SHANGHAI)
    assert report.exit_code == code, report.line
    assert report.line.startswith("ok: " if code == HEALTHY else "UNHEALTHY: ") and "\n" not in report.line


def healthcheck_argv() -> list[str]:
    """The command of the Dockerfile's HEALTHCHECK (exec form), as Docker runs it."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK ")]
    return json.loads(line.split(" CMD ", 1)[1])


def run_healthcheck(config: Path) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK argv with only the config file moved from /config to the test's (and `intake` the
    console script installed here, as in the image's PATH)."""
    argv = healthcheck_argv()
    assert argv[:2] == ["intake", "health"] and argv[argv.index("--config") + 1] == "/config/config.toml"
    argv = [INTAKE, *argv[1:]]
    argv[argv.index("--config") + 1] = str(config)
    return run(argv, env={"INTAKE_IMAP_PASSWORD": "", "INTAKE_SMTP_PASSWORD": ""}, timeout=30)


@pytest.mark.dovecot
def test_docker_healthcheck_turns_unhealthy_when_polls_stop_succeeding(imap_account, smtp_server,
                                                                       tmp_path: Path) -> None:
    """The Dockerfile's HEALTHCHECK command: unhealthy before the first poll, healthy after a real poll,
    unhealthy when that success grows old, and unhealthy after three polls that could not reach the mailbox."""
    path = write_config(tmp_path, imap_account.mailbox_settings(), {"host": smtp_server.host, "port": smtp_server.port})
    before = run_healthcheck(path)
    assert before.returncode != 0 and "no poll has succeeded yet" in before.stdout

    assert run([INTAKE, "poll", "--config", str(path)]).returncode == 0
    good = run_healthcheck(path)
    assert good.returncode == 0 and good.stdout.startswith("ok: last successful poll"), good.stdout + good.stderr

    with sqlite3.connect(tmp_path / "var" / "intake.db") as db:  # the worker went silent an hour ago
        old = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        db.execute("UPDATE polls SET started_at = ?, finished_at = ?", (old, old))
    stale = run_healthcheck(path)
    assert stale.returncode != 0 and "min ago (more than 15 min)" in stale.stdout
    assert len(stale.stdout.splitlines()) == 1

    broken = tmp_path / "broken.toml"  # the IMAP server stops answering: each poll fails and is recorded as failed
    broken.write_text(path.read_text(encoding="utf-8").replace(f"port = {imap_account.port}\n", "port = 1\n"),
                      encoding="utf-8")
    for _ in range(3):
        assert run([INTAKE, "poll", "--config", str(broken)]).returncode == 3
    failing = run_healthcheck(path)
    assert failing.returncode != 0 and "the last 3 polls failed" in failing.stdout
    assert "MailboxError" in failing.stdout and len(failing.stdout.splitlines()) == 1


def test_health_reads_without_creating_or_locking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`intake health` creates no database and answers while another process holds the worker lock."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    path = write_config(tmp_path)
    with poll_lock(tmp_path / "var"):
        r = run_healthcheck(path)
    assert r.returncode == NEVER and not (tmp_path / "var" / "intake.db").exists()


def test_docker_runs_what_the_readme_installs() -> None:
    """The image's CMD is `intake run --config ...`, its install step is the README's, and it lints clean."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert 'CMD ["run", "--config", "/config/config.toml"]' in text and 'ENTRYPOINT ["intake"]' in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for step in ("python3 -m venv /opt/xzip-intake/.venv", "/opt/xzip-intake/.venv/bin/pip install"):
        assert step in text and step in readme
    hadolint = shutil.which("hadolint", path=str(BIN))
    if hadolint:
        r = run([hadolint, str(DOCKERFILE)])
        assert r.returncode == 0, r.stdout + r.stderr


# -- systemd and cron -------------------------------------------------------------------------------------

def unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text(encoding="utf-8").splitlines()
            if line.startswith(f"{key}=")]


def test_unit_execstart_is_our_run_command() -> None:
    """The unit's ExecStart parses with our CLI as `intake run --config <file>`, restarts on failure, and its
    EnvironmentFile documents exactly the password variables the shipped config names."""
    [exec_start] = unit_values("ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/.venv/bin/intake")
    args = cli.build_parser().parse_args(argv[1:])
    assert args.func is cli.cmd_run and args.config == "/etc/xzip-intake/config.toml" and not args.dry_run
    assert unit_values("Restart") == ["on-failure"] and unit_values("EnvironmentFile") == ["/etc/xzip-intake/env"]
    assert unit_values("WorkingDirectory") == ["/var/lib/xzip-intake"]
    documented = set(re.findall(r"^#\s+(INTAKE_\w+)=", UNIT.read_text(encoding="utf-8"), re.M))
    cfg = load_config(ROOT / "config.toml", need_secrets=False)
    assert documented == {cfg.mailbox.password_env, cfg.smtp.password_env}


def test_unit_execstart_runs_and_names_missing_passwords(tmp_path: Path) -> None:
    """The ExecStart argv, run with the shipped config but without the EnvironmentFile, stops at once with
    exit 2 and one line naming both variables the EnvironmentFile must hold (RestartPreventExitStatus has 2)."""
    argv = shlex.split(unit_values("ExecStart")[0])
    argv[0] = INTAKE
    argv[argv.index("--config") + 1] = str(ROOT / "config.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "2" in unit_values("RestartPreventExitStatus")[0].split()
    assert len(r.stderr.strip().splitlines()) == 1
    assert "INTAKE_IMAP_PASSWORD" in r.stderr and "INTAKE_SMTP_PASSWORD" in r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze (Debian systemd) not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning (only the install prefix of ExecStart is
    pointed at this checkout's venv, since verify checks that the program exists)."""
    text = UNIT.read_text(encoding="utf-8")
    [exec_start] = unit_values("ExecStart")
    installed = shlex.split(exec_start)[0]
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(installed, INTAKE), encoding="utf-8")
    r = run(["systemd-analyze", "verify", "--man=no", str(copy)], timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def cron_entries() -> list[list[str]]:
    """The crontab's job lines, as (5 time fields, user, command)."""
    out = []
    for line in CRONTAB.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        out.append([*fields[:6], fields[6]])
    return out


def test_cron_line_polls_every_five_minutes_with_our_cli() -> None:
    """deploy/crontab runs `intake poll --config` every 5 minutes as the service user, is valid sh, reads
    the same env file and config as the systemd unit."""
    [entry] = cron_entries()
    assert entry[:5] == ["*/5", "*", "*", "*", "*"] and entry[5] == "xzip-intake"
    command = entry[6]
    assert subprocess.run(["sh", "-n", "-c", command], timeout=10).returncode == 0
    [segment] = [part for part in re.split(r"&&|\|", command) if "/bin/intake " in part]
    argv = [token for token in shlex.split(segment) if not re.match(r"^\d?>", token)]  # minus 2>&1
    assert argv[0] == shlex.split(unit_values("ExecStart")[0])[0]
    args = cli.build_parser().parse_args(argv[1:])
    assert args.func is cli.cmd_poll and args.config == "/etc/xzip-intake/config.toml"
    assert ". /etc/xzip-intake/env" in command


def test_cron_overlap_is_refused_by_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cron polls at once: the one that finds the lock held exits 4 at once, without touching the store."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    path = write_config(tmp_path)
    with poll_lock(tmp_path / "var"):
        started = time.monotonic()
        r = run([INTAKE, "poll", "--config", str(path)])
    assert r.returncode == 4 and time.monotonic() - started < 30
    assert not (tmp_path / "var" / "intake.db").exists()


# -- the docs stand on their own ---------------------------------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_docs_point_at_nothing_outside_the_repository(doc: Path) -> None:
    """README.md and docs/*.md name no file the reader does not have, and every relative link resolves."""
    text = doc.read_text(encoding="utf-8")
    for outside in ("INTAKE-SPEC", "../shared", "notice-xzzt", "section 10", "§"):
        assert outside not in text, f"{doc.name} mentions {outside}"
    assert not re.search(r"\bthe spec\b|\bspec's\b", text), f"{doc.name} refers to a spec the reader does not have"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_readme_links_every_doc() -> None:
    """Each page in docs/ is linked from the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in DOCS[1:]:
        assert f"(docs/{doc.name})" in readme, doc.name
