"""``intake run`` as shipped (the Docker image's CMD) in a subprocess against Dovecot and aiosmtpd: polls at
start and every interval, answers each message once, finishes the poll in progress on SIGTERM/SIGINT and
exits 0, and goes on after a poll that fails.

The interval is seconds here through ``INTAKE_TEST_INTERVAL_SECONDS`` (not a config key: users set minutes).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from servers import HOST, ImapIdProxy, free_port
from support import SENDERS, config_toml, make_config, on_time, plain_mail

from intake.compose import compose

INTAKE = Path(sys.executable).parent / "intake"  # the console script, as the Docker CMD runs it
POLL_DONE = re.compile(r"poll done in .*: new=(\d+)")


class Worker:
    """The running ``intake run`` process and the log lines it wrote so far."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "INTAKE_TEST_INTERVAL_SECONDS": "2"}
        self.proc = subprocess.Popen([str(INTAKE), "run", "--config", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30, start: int = 0) -> list[str]:
        """Block until ``count`` lines (from line ``start`` on) match ``pattern``; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines)[start:] if re.search(pattern, line)]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {count}x {pattern!r} in:\n" + "\n".join(self.lines))

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=60)
        time.sleep(0.1)  # the reader thread takes the last lines
        return code

    def index(self, pattern: str, last: bool = False) -> int:
        hits = [i for i, line in enumerate(self.lines) if re.search(pattern, line)]
        return hits[-1] if last else hits[0]


def write_config(cfg, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_toml(cfg), encoding="utf-8")
    return path


def district_mail(i: int, sender: str = SENDERS["云龙区"]) -> bytes:
    return compose(sender=sender, subject=f"申报材料{i}", body="见附件", message_id=f"<d{i}@example.cn>",
                   arrival=on_time())


def receipts(smtp_server) -> list[str]:
    return sorted(str(m.message["In-Reply-To"]) for m in smtp_server.messages
                  if m.message["X-Intake-Outcome"] == "receipt")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_polls_at_start_and_each_interval_and_stops_cleanly_mid_poll(
    imap_account, smtp_server, tmp_path: Path, signum: int
) -> None:
    """First poll at start, a second after the interval, each district message answered once; a signal
    during a poll lets it finish (every message recorded, its receipt sent once) and the worker exits 0."""
    imap_account.append(district_mail(1), on_time())
    imap_account.append(district_mail(2, SENDERS["鼓楼区"]), on_time())
    cfg = make_config(tmp_path / "var", imap=imap_account.mailbox_settings(),
                      smtp={"host": smtp_server.host, "port": smtp_server.port})
    worker = Worker(write_config(cfg, tmp_path))
    try:
        worker.wait_for(r"poll done in .*: new=2 ")
        assert receipts(smtp_server) == ["<d1@example.cn>", "<d2@example.cn>"]
        imap_account.append(district_mail(3), on_time())
        worker.wait_for(r"poll done in .*: new=1 ")
        assert receipts(smtp_server) == ["<d1@example.cn>", "<d2@example.cn>", "<d3@example.cn>"]

        # A backlog lands in INBOX at once (MOVEd from a staging folder), so one poll takes it all.
        imap_account.append_many([(district_mail(4), on_time())]
                                 + [(plain_mail(i), on_time()) for i in range(100, 400)], folder="staging")
        seen = len(worker.lines)
        with imap_account.server.mailbox(imap_account.user) as box:
            box.folder.set("staging")
            box.move(box.uids(), "INBOX")
        worker.wait_for("INBOX uid=", start=seen)  # the backlog's poll is under way
        assert worker.stop(signum) == 0, "\n".join(worker.lines)
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
    name = signal.Signals(signum).name
    signalled = worker.index(f"signal {name}: stopping after the current poll")
    last_done = worker.index("poll done", last=True)
    carried_on = [i for i in range(signalled + 1, last_done) if "INBOX uid=" in worker.lines[i]]
    assert carried_on, "the signal must land during a poll, which then goes on to its end:\n" + "\n".join(worker.lines)
    assert last_done < worker.index("worker stopped") == len(worker.lines) - 1
    assert not any(line.startswith((" ", "\t", "Traceback")) for line in worker.lines), "one line per failure"
    with sqlite3.connect(cfg.paths.data_dir / "intake.db") as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 304
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE state != 'sent'").fetchone()[0] == 0
    assert receipts(smtp_server) == [f"<d{i}@example.cn>" for i in range(1, 5)]


class _ProxyOnPort(ImapIdProxy):
    """The relay, listening on a port chosen beforehand (where the worker was told the server is)."""

    def __init__(self, upstream_port: int, listen_port: int) -> None:
        super().__init__(upstream_port)
        self.listen_port = listen_port

    def start(self) -> _ProxyOnPort:
        self._listener = socket.create_server((HOST, self.listen_port))
        self.port = self.listen_port
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self


def test_a_failed_poll_logs_one_line_and_the_next_poll_runs(imap_account, smtp_server, tmp_path: Path) -> None:
    """While the IMAP server cannot be reached each poll logs one line with the reason and the worker stays up;
    once it can, the next poll answers the mail."""
    port = free_port()
    imap_account.append(district_mail(1), on_time())
    cfg = make_config(tmp_path / "var", imap=imap_account.mailbox_settings(port=port),
                      smtp={"host": smtp_server.host, "port": smtp_server.port})
    worker = Worker(write_config(cfg, tmp_path))
    proxy = None
    try:
        failed = worker.wait_for(r"poll failed", count=2)
        assert all(re.search(r"ERROR intake: poll failed, next poll in 2 s: MailboxError: IMAP .*refused", line)
                   for line in failed), failed
        proxy = _ProxyOnPort(imap_account.port, port).start()
        worker.wait_for(r"poll done in .*: new=1 ")
        assert receipts(smtp_server) == ["<d1@example.cn>"]
        assert worker.stop(signal.SIGTERM) == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
        if proxy is not None:
            proxy.stop()
    assert not any(line.startswith((" ", "\t", "Traceback")) for line in worker.lines), "one line per failure"
