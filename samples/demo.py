"""``intake demo``: the whole job on an embedded default, no setup beyond the install.

It starts an embedded IMAP server (pymap, in-memory) and an SMTP capture
(aiosmtpd) on 127.0.0.1, fills the mailbox with sample mail from the four
districts (``samples.demo_mail``), and runs the production worker against them:
the same IMAP login with ID, fetch, archive, parsers, rules, ledger, SMTP
sending and flag/move code as a real deployment. Both servers are stopped
before it returns, whatever happens.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import socket
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from imap_tools import MailBoxUnencrypted

from intake.config import Config, parse_config
from intake.errors import IntakeError
from intake.models import Status
from intake.store import Store
from samples.demo_mail import DemoMail, build_demo_mail, demo_registry

DEMO_USER, DEMO_SECRET_ENV = "xzip2019@163.com", "INTAKE_DEMO_PASSWORD"
REGISTRY_FILE = "registry.csv"
SENDER = "徐州市知识产权局 <xzip2019@163.com>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise IntakeError(f"embedded server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise IntakeError(f"embedded server did not listen on port {port} within {seconds:.0f} s")


@contextmanager
def embedded_imap(password: str, log_path: Path) -> Iterator[int]:
    """pymap's in-memory backend on a free loopback port, stopped on exit."""
    port = free_port()
    args = ["--no-tls", "--host", "127.0.0.1", "--port", str(port), "dict",
            "--demo-user", DEMO_USER, "--demo-password", password]
    code = "import sys; from pymap.main import main; sys.argv = ['pymap', *sys.argv[1:]]; main()"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, cwd=log_path.parent)
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Capture:
    """aiosmtpd handler that saves each message it receives as an .eml file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        rcpt = envelope.rcpt_tos[0].replace("@", "_at_") if envelope.rcpt_tos else "unknown"
        (self.folder / f"{self.count:02d}-{rcpt}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


@contextmanager
def smtp_capture(folder: Path) -> Iterator[int]:
    from aiosmtpd.controller import Controller

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    controller = Controller(_Capture(folder), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def demo_config(workdir: Path, imap_port: int, smtp_port: int) -> Config:
    """The embedded default: the shipped config's campaign and rules, local servers, and the sample
    registry of past projects (written to ``workdir/registry.csv``)."""
    (workdir / REGISTRY_FILE).write_bytes(demo_registry())
    districts = [
        {"name": "云龙区", "senders": ["yunlong-ip@example.cn"], "city_share": 0.5, "quota": 3},
        {"name": "鼓楼区", "senders": ["gulou-ip@example.cn"], "city_share": 0.5, "quota": 3},
        {"name": "泉山区", "senders": ["quanshan-ip@example.cn"], "city_share": 0.5, "quota": 3},
        {"name": "徐州经济技术开发区", "senders": ["xzkfq-ip@example.cn"], "city_share": 0.5, "quota": 3,
         "short_name": "经开"},
    ]
    raw = {
        "mailbox": {"host": "127.0.0.1", "port": imap_port, "ssl": False, "user": DEMO_USER,
                    "password_env": DEMO_SECRET_ENV, "folder": "INBOX", "processed_folder": "已处理",
                    "imap_id": True},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "ssl": False, "starttls": False, "user": "",
                 "password_env": "INTAKE_DEMO_SMTP_PASSWORD", "sender": SENDER},
        "schedule": {"interval_minutes": 5},
        "campaign": {"name": "2024年徐州市高价值专利培育计划",
                     "deadline": datetime.fromisoformat("2024-11-08T23:59:59+08:00"),
                     "timezone": "Asia/Shanghai"},
        "paths": {"data_dir": "var"},
        "rules": {"registry": REGISTRY_FILE},
        "districts": districts,
    }
    return parse_config(raw, workdir)


def append_mail(port: int, password: str, mails: list[DemoMail]) -> None:
    with MailBoxUnencrypted("127.0.0.1", port).login(DEMO_USER, password) as box:
        for m in mails:
            box.append(m.raw, "INBOX", dt=m.arrival, flag_set=[])


@dataclass
class DemoResult:
    workdir: Path
    ledger: Path
    receipts: Path
    mail_dir: Path
    polls: list[Any]
    by_district: dict[str, Counter[str]]


def run_demo(workdir: Path, say: Callable[[str], None] = print) -> DemoResult:
    """Run the demo in ``workdir`` (made empty first); return where everything was written."""
    from intake.worker import Worker

    _fresh_workdir(workdir)
    password = os.urandom(8).hex()
    os.environ[DEMO_SECRET_ENV] = password
    mails = build_demo_mail()
    mail_dir = workdir / "sample-mail"
    mail_dir.mkdir()
    for m in mails:
        (mail_dir / m.filename).write_bytes(m.raw)
    say(f"Sample mail: {len(mails)} messages from 4 districts (saved in {mail_dir})")
    polls = []
    with ExitStack() as stack:
        imap_port = stack.enter_context(embedded_imap(password, workdir / "imap-server.log"))
        smtp_port = stack.enter_context(smtp_capture(workdir / "receipts"))
        say(f"Embedded IMAP server on 127.0.0.1:{imap_port}, SMTP capture on 127.0.0.1:{smtp_port}")
        cfg = demo_config(workdir, imap_port, smtp_port)
        store = stack.enter_context(Store(cfg.paths.data_dir / "intake.db"))
        clock = DemoClock(mails[0].arrival)
        worker = Worker(cfg, store, clock=clock)
        waves = sorted({m.wave for m in mails})
        for wave in [*waves, None]:
            batch = [m for m in mails if m.wave == wave]
            clock.now = max((m.arrival for m in batch), default=clock.now) + timedelta(minutes=10)
            if batch:
                append_mail(imap_port, password, batch)
                say(f"\n[wave {wave}] {len(batch)} new message(s) arrive:")
                for m in batch:
                    say(f"  - {m.label}")
            else:
                say("\n[final poll] nothing new: nothing is fetched or sent twice")
            summary = worker.poll()
            polls.append(summary)
            say("  " + summary.line())
        by_district = _by_district(cfg, store)
    return DemoResult(workdir, cfg.paths.data_dir / "ledger.xlsx", workdir / "receipts", mail_dir, polls,
                      by_district)


class DemoClock:
    """The worker's clock in the demo: shortly after each wave's mail, so replies are dated then."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MARKER = ".intake-demo"


def _fresh_workdir(workdir: Path) -> None:
    """Empty ``workdir`` for a new run, but only a directory an earlier demo made (or an empty one)."""
    if workdir.exists():
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise IntakeError(f"{workdir} exists and is not a demo directory; choose another --dir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by intake demo; removed and rebuilt by the next run\n", encoding="utf-8")


def _by_district(cfg: Config, store: Store) -> dict[str, Counter[str]]:
    from intake.merge import build_ledger

    ledger = build_ledger(store.messages(), cfg)
    out: dict[str, Counter[str]] = {d.name: Counter() for d in cfg.districts}
    for p in ledger.projects:
        out[p.district][p.status] += 1
    return out


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(width - _width(text), 1)


def render_summary(result: DemoResult) -> str:
    statuses = [s.value for s in (Status.ACCEPTED, Status.NEEDS_FIX, Status.REVIEW, Status.REJECTED)]
    width = max(_width(d) for d in result.by_district) + 2
    lines = ["", "Summary by district (projects by status):",
             "  " + _pad("区县", width) + "".join(_pad(s, 10) for s in statuses) + "合计"]
    for district, counts in result.by_district.items():
        cells = "".join(_pad(str(counts.get(s, 0)), 10) for s in statuses)
        lines.append("  " + _pad(district, width) + cells + str(sum(counts.values())))
    kinds = reply_kinds(result.receipts)
    sent = ", ".join(f"{kinds[k]} {label}" for k, label in REPLY_NAMES.items() if kinds[k])
    lines += [
        "",
        f"Ledger workbook: {result.ledger}",
        f"Replies sent ({sent or 'none'}) saved as .eml in: {result.receipts}",
        f"Everything (database, archive of originals, sample mail) is under: {result.workdir}",
    ]
    return "\n".join(lines)


REPLY_NAMES = {"receipt": "receipts (回执)", "late": "late notices (逾期通知)",
               "update": "status-change notices (状态变更通知)"}


def reply_kinds(folder: Path) -> Counter[str]:
    """The captured replies by their X-Intake-Outcome header."""
    kinds: Counter[str] = Counter()
    for path in folder.glob("*.eml"):
        kinds[email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["X-Intake-Outcome"]] += 1
    return kinds


def main(workdir: str) -> int:
    result = run_demo(Path(workdir).resolve())
    print(render_summary(result))
    return 0
