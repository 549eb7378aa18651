"""Benchmark: an idle poll (nothing new) on a 20,000-message mailbox against one on a 20-message mailbox.

Issue 2's target: an idle poll on the large mailbox costs at most 1.5x one on
the small mailbox, measured side by side in one run. Both mailboxes live on one
private Dovecot (tests/servers.py, needs root and dovecot-imapd) and both hold
the same 20 district messages (summary tables and forms, answered with
receipts over aiosmtpd); the large one also holds 19,980 other messages
(unknown senders, newsletters), as the bureau's 163 inbox does. Mail stays in
INBOX (no processed_folder), the harder case: with a processed folder the
inbox empties itself.

Each mailbox gets one long-lived Worker and Store, as under ``intake run``. The
first poll records everything (timed, for information); a second poll settles
whatever the first left (none expected); then idle polls alternate small,
large, small, large ... and the medians are compared.

    sudo .venv/bin/python benchmarks/bench_idle_poll.py [--large 20000] [--small 20] [--polls 15]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dovecot, SmtpServer, find_dovecot  # noqa: E402
from support import SENDERS, make_config, on_time  # noqa: E402

from intake.compose import compose  # noqa: E402
from intake.store import Store  # noqa: E402
from intake.worker import Worker  # noqa: E402
from samples.forms import form_pdf  # noqa: E402
from samples.projects import sample_project  # noqa: E402
from samples.tables import summary_table_xlsx  # noqa: E402

DISTRICT_MESSAGES = 20
YUNLONG = SENDERS["云龙区"]


def district_mail(i: int) -> tuple[bytes, datetime]:
    """Message i of 20: a form each, the summary table of all projects in the last one."""
    projects = [sample_project(k, district="云龙区") for k in range(DISTRICT_MESSAGES - 1)]
    arrival = on_time(1 + i % 7, 9, i)
    if i < DISTRICT_MESSAGES - 1:
        p = projects[i]
        files = [(f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"]))]
    else:
        files = [("云龙区申报汇总表.xlsx", summary_table_xlsx("云龙区", [p.row for p in projects]))]
    raw = compose(sender=YUNLONG, sender_name="云龙区知识产权局", subject=f"申报材料 {i}", attachments=files,
                  message_id=f"<yl{i}@example.cn>", arrival=arrival)
    return raw, arrival


def other_mail(i: int) -> tuple[bytes, datetime]:
    """Mail that is not a district's: a stranger's question, or a newsletter every fifth message."""
    arrival = on_time(1 + i % 7, 8 + i % 10, i % 60)
    body = "您好，请问今年的申报指南在哪里下载？\n" * 20
    headers = [("Precedence", "bulk"), ("List-Id", "<news.example.cn>")] if i % 5 == 0 else []
    raw = compose(sender=f"someone{i}@elsewhere.cn", subject=f"咨询 {i}", body=body,
                  message_id=f"<other{i}@elsewhere.cn>", arrival=arrival, headers=headers)
    return raw, arrival


def deliver(dovecot: Dovecot, user: str, messages: list[tuple[bytes, datetime]]) -> None:
    """Put messages straight into the user's Maildir, as a local delivery agent would (APPEND costs about
    15 ms a message here, five minutes for 20,000); INTERNALDATE is the file's mtime. Dovecot numbers
    them when the folder is first opened."""
    assert dovecot.root is not None
    dovecot.uids(user)  # opening INBOX makes the Maildir, owned by dovecot
    maildir = dovecot.root / "mail" / user / "Maildir"
    for i, (raw, when) in enumerate(messages):
        name = f"{int(when.timestamp())}.M{i}P{os.getpid()}.bench,S={len(raw)}:2,"
        path = maildir / "tmp" / name
        path.write_bytes(raw)
        os.utime(path, (when.timestamp(), when.timestamp()))
        shutil.chown(path, "dovecot", "dovecot")
        path.rename(maildir / "new" / name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", type=int, default=20_000)
    ap.add_argument("--small", type=int, default=DISTRICT_MESSAGES)
    ap.add_argument("--polls", type=int, default=15, help="idle polls per mailbox")
    args = ap.parse_args()
    if args.small < DISTRICT_MESSAGES or args.large < args.small:
        ap.error(f"need {DISTRICT_MESSAGES} <= --small <= --large")
    binary = find_dovecot()
    if binary is None or os.geteuid() != 0:
        print("needs dovecot-imapd and root (Dovecot stores mail as the dovecot user)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    district = [district_mail(i) for i in range(DISTRICT_MESSAGES)]
    dovecot, smtp = Dovecot(binary).start(), SmtpServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workers, stores = {}, []
            for label, size in (("small", args.small), ("large", args.large)):
                user, password = dovecot.new_user()
                env = f"BENCH_IMAP_PW_{label.upper()}"
                os.environ[env] = password
                t0 = time.perf_counter()
                deliver(dovecot, user, [*district, *(other_mail(i) for i in range(size - DISTRICT_MESSAGES))])
                t_fill = time.perf_counter() - t0
                cfg = make_config(Path(tmp) / label,
                                  imap={"host": dovecot.host, "port": dovecot.port, "user": user,
                                        "password_env": env},
                                  smtp={"host": smtp.host, "port": smtp.port})
                store = Store(cfg.paths.data_dir / "intake.db")
                stores.append(store)
                worker = Worker(cfg, store)
                t0 = time.perf_counter()
                first = worker.poll()
                t_first = time.perf_counter() - t0
                worker.poll()  # settles anything the first poll left (nothing expected)
                ledger = cfg.paths.data_dir / "ledger.xlsx"
                print(f"{label:5}: {size:6} messages delivered in {t_fill:6.1f} s; first poll recorded "
                      f"{first.new} in {t_first:6.1f} s, sent {first.sent} receipts; "
                      f"ledger.xlsx {ledger.stat().st_size / 1024:.0f} KiB")
                workers[label] = worker
            times: dict[str, list[float]] = {"small": [], "large": []}
            for _ in range(args.polls):  # interleaved, so both see the same machine load
                for label, worker in workers.items():
                    t0 = time.perf_counter()
                    summary = worker.poll()
                    times[label].append(time.perf_counter() - t0)
                    if summary.new or summary.sent or summary.moved:
                        print(f"{label}: a poll that was meant to be idle did work: {summary.line()}")
                        return 1
            for store in stores:
                store.close()
    finally:
        smtp.stop()
        dovecot.stop()
    small, large = (statistics.median(times[k]) for k in ("small", "large"))
    ratio = large / small
    spread = {k: f"{min(v) * 1000:.1f}-{max(v) * 1000:.1f}" for k, v in times.items()}
    print(f"idle poll, {args.small:6} messages: median {small * 1000:7.1f} ms  (range {spread['small']} ms)")
    print(f"idle poll, {args.large:6} messages: median {large * 1000:7.1f} ms  (range {spread['large']} ms)")
    print(f"ratio: {ratio:.2f}x  (target <= 1.50x) {'OK' if ratio <= 1.5 else 'OVER'}  ({args.polls} polls each)")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
