"""Benchmark: rebuilding the ledger (merge + rules + workbook) against a bare openpyxl dump of its cells.

Issue 4's target: rebuilding the ledger and workbook for 5,000 projects over
1,000 messages takes at most 2x a bare openpyxl write-only dump of the same
cells, side by side in one run. "Rebuilding" is what ``intake export`` and
every poll do after reading the store: ``build_ledger`` (merge, rules, cross
rules, statuses, funding split) and ``write_ledger`` (styles, links, chart,
atomic swap). The store read itself is left out on both sides.

The mailbox: four districts; each district's latest table lists 1,250 projects
(an earlier, superseded table lists half of them), and the 5,000 forms are
spread over the remaining messages, about five per message.

    .venv/bin/python benchmarks/bench_rebuild.py [--projects 5000] [--messages 1000] [--repeat 3] [--cpu]

``--cpu`` times both sides in CPU seconds of the process instead of wall-clock seconds: on a machine
where other work runs (tests, builds), the wall-clock ratio of the same code was seen to vary from 1.6x
to 2.3x, the CPU ratio by a few hundredths.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import bench_ledger  # noqa: E402
from bench_ledger import side_by_side  # noqa: E402
from factories import (  # noqa: E402
    DISTRICTS,
    attach_form,
    attach_table,
    make_config,
    make_form,
    make_message,
    make_row,
    make_table,
)

from intake.merge import build_ledger  # noqa: E402
from intake.models import StoredMessage  # noqa: E402
from reports.ledger import write_ledger  # noqa: E402


def mailbox(n_projects: int, n_messages: int) -> list[StoredMessage]:
    names = [name for name, _ in DISTRICTS]
    per = n_projects // len(names)
    rows = {d: [make_row(k * per + i + 1) for i in range(per)] for k, d in enumerate(names)}
    messages, uid = [], 0
    for d in names:  # an early table with half the rows, later superseded
        uid += 1
        messages.append(make_message(uid, attach_table(make_table(*rows[d][: per // 2])), district=d))
    forms = [(d, make_form(r)) for d in names for r in rows[d]]
    chunks = n_messages - 2 * len(names) - (len(names) - 1)  # a chunk across a district boundary makes two
    bounds = [round(i * len(forms) / chunks) for i in range(chunks + 1)]
    for lo, hi in itertools.pairwise(bounds):
        chunk = forms[lo:hi]
        for d in dict.fromkeys(d for d, _ in chunk):  # one message per district in the chunk
            uid += 1
            messages.append(make_message(uid, *(attach_form(f) for fd, f in chunk if fd == d), district=d))
    for d in names:  # the latest tables
        uid += 1
        messages.append(make_message(uid, attach_table(make_table(*rows[d])), district=d))
    return messages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="CPU seconds of this process, not wall-clock seconds")
    args = ap.parse_args()
    if args.cpu:
        bench_ledger.CLOCK = time.process_time
    cfg = make_config(districts=[{"name": n, "senders": [s], "city_share": 0.5, "quota": args.projects}
                                 for n, s in DISTRICTS])
    messages = mailbox(args.projects, args.messages)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)

        def rebuild() -> None:
            ledger = build_ledger(messages, cfg)
            write_ledger(data_dir / "ledger.xlsx", ledger, messages, {}, cfg.campaign.tz, data_dir=data_dir)

        t0 = bench_ledger.CLOCK()
        ledger = build_ledger(messages, cfg)
        t_merge = bench_ledger.CLOCK() - t0
        t_ours, t_bare, cells = side_by_side(rebuild, data_dir, args.repeat)
    ratio = t_ours / t_bare
    unit = "CPU s" if args.cpu else "s"
    print(f"projects={len(ledger.projects)} messages={len(messages)} cells={cells} (best of {args.repeat}, {unit})")
    print(f"bare write-only dump          : {t_bare:7.3f} s")
    print(f"rebuild (merge+rules+workbook): {t_ours:7.3f} s   (merge and rules alone: {t_merge:.3f} s)")
    print(f"ratio                         : {ratio:7.2f}x  (target <= 2.00x) {'OK' if ratio <= 2 else 'OVER'}")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
