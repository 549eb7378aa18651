"""Benchmark: memory held while fetching bodies, bounded by ``mailbox.max_fetch_bytes``.

A private Dovecot (tests/servers.py; needs root and dovecot-imapd) holds N messages
of about S MB each. ``Mailbox.fetch`` reads them all, one body at a time dropped by
the caller, once per byte budget; the peak of Python's traced allocations
(tracemalloc) is printed beside the budget. Issue 11's point: the peak follows the
byte budget (plus imaplib's copy of one response), not ``batch_size`` times the
largest message.

    sudo .venv/bin/python benchmarks/bench_fetch_memory.py [--messages 30] [--mb 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dovecot, ImapAccount, find_dovecot  # noqa: E402
from support import on_time  # noqa: E402

from intake.compose import compose  # noqa: E402
from intake.mailbox import Mailbox  # noqa: E402

MB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--mb", type=float, default=3.0, help="approximate size of each message")
    args = parser.parse_args()
    binary = find_dovecot()
    if binary is None or os.geteuid() != 0:
        sys.exit("needs dovecot-imapd and root (the test Dovecot stores mail as the dovecot user)")
    server = Dovecot(binary).start()
    try:
        user, password = server.new_user()
        account = ImapAccount(server, user, password, server.host, server.port)
        blob = os.urandom(int(args.mb * MB * 3 / 4))  # base64 makes it 4/3 larger
        server.append_many(user, ((compose(sender=f"s{i}@x.cn", subject=f"大附件 {i}", message_id=f"<b{i}@x>",
                                           attachments=[(f"f{i}.bin", blob)]), on_time())
                                  for i in range(args.messages)))
        print(f"{args.messages} messages of ~{args.mb:g} MB, batch_size 50")
        print(f"{'max_fetch_bytes':>16} {'requests':>9} {'peak traced MB':>15} {'seconds':>8}")
        for budget in (200 * MB, 32 * MB, 8 * MB, 1 * MB):
            with Mailbox(account.mailbox_config(batch_size=50, max_fetch_bytes=budget, password=password)) as mb:
                metas = mb.meta(mb.uids_from(1))
                requests = 0
                original = mb._fetch

                def counting(uids, items, _original=original):  # type: ignore[no-untyped-def]
                    nonlocal requests
                    requests += "BODY.PEEK[]" in items
                    return _original(uids, items)

                mb._fetch = counting  # type: ignore[method-assign]
                tracemalloc.start()
                started = time.perf_counter()
                total = sum(len(f.raw) for f in mb.fetch(metas))
                seconds = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            assert total >= args.messages * args.mb * MB * 0.9
            print(f"{budget // MB:>13} MB {requests:>9} {peak / MB:>15.1f} {seconds:>8.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
