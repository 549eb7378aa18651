"""Backlog: 300 district messages from Dovecot to the last receipt, beside the bare-library floor.

Each message is realistic district mail: a summary table (openpyxl) and a ten-page
application form (reportlab, text layer), from one of four districts; they
arrive before the deadline and are answered with receipts over aiosmtpd. The
pipeline is ``intake poll`` as the operator starts it (a subprocess with the
config file), repeated until every receipt has been received. The floor is
the same files read by the bare libraries in one process: pdfplumber
extracting the text of every page, openpyxl reading every cell.

Target: the pipeline takes at most 0.10 of the floor's time (forms are read
only as far as their fields, documents are parsed on both cores), and its
peak memory does not grow with the backlog (run two sizes and compare).

Printed per size: messages per second; when the first receipt arrived (start-up,
fetching, reading and recording all messages, rendering the replies: what
follows is sending); the CPU seconds of the poll process and of its parser
children (sampled from /proc every 0.1 s), as a share of the cores; the peak
RSS of the worker, of one parser child and of the whole tree; the floor and
the ratio. ``--profile DIR`` keeps each poll's cProfile data.

    sudo .venv/bin/python benchmarks/bench_backlog.py [--messages 300] [--compare 100] [--no-floor] [--font ttf]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import openpyxl  # noqa: E402
import pdfplumber  # noqa: E402
from bench_idle_poll import deliver  # noqa: E402
from servers import Dovecot, SmtpServer, find_dovecot  # noqa: E402
from support import SENDERS, config_toml, make_config, on_time  # noqa: E402

from intake.compose import compose  # noqa: E402
from samples.forms import form_pdf  # noqa: E402
from samples.projects import sample_project  # noqa: E402
from samples.tables import summary_table_xlsx  # noqa: E402

DISTRICTS = list(SENDERS)


def backlog(n: int, font: str = "cid") -> tuple[list, list[bytes], list[bytes]]:
    """``n`` messages, each a summary table of one project and its ten-page form; also the files alone.
    ``font``: ``cid`` (reportlab's built-in STSong-Light, not embedded: every reader maps it to a system font)
    or ``ttf`` (WenQuanYi Micro Hei embedded as a subset, as Word and WPS export)."""
    mail, tables, forms = [], [], []
    for i in range(n):
        district = DISTRICTS[i % len(DISTRICTS)]
        p = sample_project(i, district=district)
        table = summary_table_xlsx(district, [p.row])
        form = form_pdf(p.form, project_type=p.row["项目类别"], pages=10, font=font)
        tables.append(table)
        forms.append(form)
        when = on_time(1 + i % 7, 8 + i % 12, i % 60)
        raw = compose(sender=SENDERS[district], sender_name=f"{district}知识产权局", subject=f"申报材料 {i}",
                      attachments=[(f"{district}申报汇总表.xlsx", table),
                                   (f"{p.row['牵头申报单位']}申报书.pdf", form)],
                      message_id=f"<backlog{i}@example.cn>", arrival=when)
        mail.append((raw, when))
    return mail, tables, forms


def floor(tables: list[bytes], forms: list[bytes]) -> tuple[float, float]:
    """Seconds (wall clock, CPU) for the bare libraries to read every page and every cell, in one process."""
    t0, c0 = time.perf_counter(), time.process_time()
    for data in forms:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                page.extract_text()
    for data in tables:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        for ws in wb.worksheets:
            for _row in ws.iter_rows(values_only=True):
                pass
        wb.close()
    return time.perf_counter() - t0, time.process_time() - c0


class TreeSampler(threading.Thread):
    """Samples /proc for a process and its descendants (the parser children under the fork server):
    CPU seconds per process (the last value seen), the worker's peak RSS and the tree's peak RSS."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, receipts: Callable[[], int], start: float, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval, self.root = interval, 0
        self.receipts, self.start_time, self.first_receipt = receipts, start, 0.0  # when the first receipt came
        self.cpu: dict[int, float] = {}
        self.roots: set[int] = set()
        self.worker_peak = self.tree_peak = self.child_peak = 0  # KiB
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            if self.root:
                self.roots.add(self.root)
                self.sample(self.root)
            if not self.first_receipt and self.receipts() > 0:
                self.first_receipt = time.perf_counter() - self.start_time

    def worker_cpu(self) -> float:
        return sum(self.cpu.get(pid, 0.0) for pid in self.roots)

    def sample(self, root: int) -> None:
        parent, stats = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parent[pid] = int(fields[1])
            stats[pid] = ((int(fields[11]) + int(fields[12])) / self.TICK, int(fields[21]) * 4)  # utime+stime, rss
        tree = {root}
        for _ in range(4):
            tree |= {p for p, pp in parent.items() if pp in tree}
        total = 0
        for pid in tree & stats.keys():
            cpu, rss = stats[pid]
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu)
            total += rss
            if pid == root:
                self.worker_peak = max(self.worker_peak, rss)
            else:
                self.child_peak = max(self.child_peak, rss)
        self.tree_peak = max(self.tree_peak, total)


def pipeline(dovecot: Dovecot, smtp: SmtpServer, tmp: Path, mail: list, label: str,
             profile: Path | None = None) -> Run:
    """From the first poll's start to the last receipt: seconds, polls, CPU and peak memory."""
    user, password = dovecot.new_user()
    deliver(dovecot, user, mail)
    env_name = "BENCH_BACKLOG_PW"
    os.environ[env_name] = password
    cfg = make_config(tmp / label, imap={"host": dovecot.host, "port": dovecot.port, "user": user,
                                         "password_env": env_name},
                      smtp={"host": smtp.host, "port": smtp.port})
    config = tmp / f"{label}.toml"
    limits = f"max_replies_per_poll = {len(mail)}\nmax_replies_per_sender_per_day = {len(mail)}\n"
    text = config_toml(cfg).replace('sender = "', limits + 'sender = "', 1)
    config.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start, first = time.perf_counter(), len(smtp.messages)
    polls = 0
    sampler = TreeSampler(receipts=lambda: len(smtp.messages) - first, start=start)
    sampler.start()
    while len(smtp.messages) - first < len(mail) and polls < 20:
        polls += 1
        prof = ["-m", "cProfile", "-o", str(profile / f"{label}-poll{polls}.prof")] if profile else []
        proc = subprocess.Popen([sys.executable, *prof, "-m", "intake.cli", "poll", "--config", str(config)],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sampler.root = proc.pid
        if proc.wait():
            raise SystemExit(f"{label}: poll exited with {proc.returncode}")
    seconds = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    if len(smtp.messages) - first < len(mail):
        raise SystemExit(f"{label}: only {len(smtp.messages) - first} of {len(mail)} receipts after {polls} polls")
    return Run(seconds, polls, sampler.first_receipt, sum(sampler.cpu.values()), sampler.worker_cpu(),
               sampler.worker_peak,
               sampler.child_peak, sampler.tree_peak)


@dataclass
class Run:
    seconds: float
    polls: int
    first_receipt: float  # seconds to the first receipt: start-up, fetching, reading and recording, rendering
    cpu: float  # CPU seconds of the poll and its parser children
    worker_cpu: float  # of the poll processes alone
    worker_peak_kb: int
    child_peak_kb: int
    tree_peak_kb: int


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--compare", type=int, default=100, help="a smaller backlog, for memory growth (0: skip)")
    ap.add_argument("--profile", type=Path, help="write each poll's cProfile data into this directory")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor (while iterating)")
    ap.add_argument("--font", choices=("cid", "ttf"), default="cid",
                    help="the forms' font: cid (built-in, not embedded; the default) or ttf (embedded subset)")
    args = ap.parse_args()
    binary = find_dovecot()
    if binary is None or os.geteuid() != 0:
        print("needs dovecot-imapd and root", file=sys.stderr)
        return 2
    dovecot, smtp = Dovecot(binary).start(), SmtpServer().start()
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in [x for x in (args.compare, args.messages) if x]:
                mail, tables, forms = backlog(n, args.font)
                run = pipeline(dovecot, smtp, Path(tmp), mail, f"backlog{n}", args.profile)
                t_floor, c_floor = (float("nan"),) * 2 if args.no_floor else floor(tables, forms)
                results[n] = (run.seconds, t_floor)
                print(f"{n:4} messages: pipeline {run.seconds:6.1f} s ({n / run.seconds:5.2f} msg/s, {run.polls} "
                      f"polls, first receipt after {run.first_receipt:.1f} s, "
                      f"CPU {run.cpu:5.1f} s = {run.cpu / run.seconds:4.2f} of {os.cpu_count()} cores "
                      f"(worker {run.worker_cpu:.1f} s, parsers {run.cpu - run.worker_cpu:.1f} s); "
                      f"peak RSS worker {run.worker_peak_kb / 1024:.0f} MiB, a parser child "
                      f"{run.child_peak_kb / 1024:.0f} MiB, all {run.tree_peak_kb / 1024:.0f} MiB); "
                      f"floor {t_floor:6.1f} s ({n / t_floor:5.2f} msg/s, CPU {c_floor:.1f} s); "
                      f"ratio {run.seconds / t_floor:.3f} (target <= 0.10; CPU seconds {run.cpu / c_floor:.3f})",
                      flush=True)
    finally:
        smtp.stop()
        dovecot.stop()
    t_pipe, t_floor = results[args.messages]
    return 0 if t_pipe / t_floor <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
