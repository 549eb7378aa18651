"""What the Sent-folder check before sending costs, and the lost data directory it protects against.

N district messages (no attachments) in a fresh Dovecot account are polled in-process with
``smtp.max_replies_per_poll = N``: N receipts are sent, all looked up in the Sent folder first (one look for
the stage) and each copied there after. The data directory is then deleted and the mailbox polled again: the
N messages are recorded again and every receipt is found in the Sent folder (by the original and
X-Intake-Outcome), so none is sent. ``--sent-size K`` first fills the Sent folder with K other replies (a
163.com 已发送 of years): the look costs a server-side search, not a download of the folder.
Printed: seconds per reply for the first poll's send step (check + SMTP + APPEND), per reply for the second
poll's send step (the check alone), and the receipts the SMTP server took (must stay N).

    sudo .venv/bin/python benchmarks/bench_sent_check.py [--messages 100] [--sent-size 5000]

Needs root and dovecot-imapd (the test Dovecot stores mail as the dovecot user).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dovecot, SmtpServer, find_dovecot  # noqa: E402
from support import SENDERS, make_config, on_time  # noqa: E402

from intake.compose import compose  # noqa: E402
from intake.poll import send  # noqa: E402
from intake.store import Store  # noqa: E402
from intake.worker import Worker  # noqa: E402


def timed_send_step(cfg) -> float:  # type: ignore[no-untyped-def]
    """One poll; returns the seconds its send step took."""
    spent = [0.0]
    original = send.send_queued

    def measured(ctx, mb):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(ctx, mb)
        finally:
            spent[0] += time.perf_counter() - started

    send.send_queued = measured
    try:
        with Store(cfg.paths.data_dir / "intake.db") as store:
            Worker(cfg, store).poll()
    finally:
        send.send_queued = original
    return spent[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--sent-size", type=int, default=0, help="other replies in the Sent folder first")
    args = parser.parse_args()
    n = args.messages
    logging.basicConfig(level=logging.ERROR)
    binary = find_dovecot()
    if binary is None:
        print("dovecot not installed")
        return 1
    dovecot, smtp = Dovecot(binary).start(), SmtpServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            user, password = dovecot.new_user()
            senders = list(SENDERS.values())
            dovecot.append_many(user, [(compose(sender=senders[i % len(senders)], subject=f"申报材料{i}",
                                                body="见附件", message_id=f"<sc{i}@example.cn>",
                                                arrival=on_time()), on_time()) for i in range(n)])
            others = [(compose(sender="xzip2019@163.com", subject=f"回执{i}", body="已收到",
                               message_id=f"<old{i}@163.com>", arrival=on_time(),
                               headers=[("In-Reply-To", f"<old{i}@example.cn>"), ("X-Intake-Outcome", "receipt")]),
                       on_time()) for i in range(args.sent_size)]
            if others:
                dovecot.append_many(user, others, folder="已发送")
            os.environ["BENCH_SC_PW"] = password
            cfg = make_config(Path(tmp) / "var", imap={"host": dovecot.host, "port": dovecot.port, "user": user,
                                                       "password_env": "BENCH_SC_PW"},
                              smtp={"host": smtp.host, "port": smtp.port, "max_replies_per_poll": n,
                                    "max_replies_per_sender_per_day": n})
            first = timed_send_step(cfg)
            shutil.rmtree(cfg.paths.data_dir)
            second = timed_send_step(cfg)
            receipts = sum(m.message["X-Intake-Outcome"] == "receipt" for m in smtp.messages)
            print(f"{n} replies, {args.sent_size} other messages in the Sent folder:", end=" ")
            print(f"send step {first:.2f} s ({first / n * 1000:.1f} ms a reply: Sent check, SMTP, "
                  f"APPEND); after the data directory was deleted {second:.2f} s ({second / n * 1000:.1f} ms a "
                  f"reply: the Sent check alone); receipts the SMTP server took: {receipts} (expected {n})")
            return 0 if receipts == n else 1
    finally:
        smtp.stop()
        dovecot.stop()


if __name__ == "__main__":
    sys.exit(main())
