"""Benchmark: what the 状态变更通知 check adds to a poll with new mail, against one ledger build.

The check (``intake.changes.owed_changes``) builds the ledger before and after the poll's new
messages, plus, for a district whose mail was followed by another district's in the same poll,
the ledger its last receipt showed. Each receipt already costs one build (the worker renders it
against the ledger after its message), so the check is measured in ledger builds: the mailbox of
``bench_rebuild`` (5,000 projects over 1,000 messages), the last ``--new`` messages taken as the
poll's new mail, districts interleaved (the worst case: every district but the last needs its
own baseline).

    .venv/bin/python benchmarks/bench_changes.py [--projects 5000] [--messages 1000] [--new 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_rebuild import mailbox  # noqa: E402
from factories import DISTRICTS, make_config  # noqa: E402

from intake.changes import owed_changes  # noqa: E402
from intake.merge import build_ledger  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--new", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg = make_config(districts=[{"name": n, "senders": [s], "city_share": 0.5, "quota": args.projects}
                                 for n, s in DISTRICTS])
    messages = mailbox(args.projects, args.messages)
    prior, new = messages[: -args.new], messages[-args.new:]
    builds = 0

    def build(ms):
        nonlocal builds
        builds += 1
        return build_ledger(ms, cfg)

    t_build = best(lambda: build_ledger(messages, cfg), args.repeat)
    t_check = best(lambda: owed_changes(prior, new, build), args.repeat)
    per_check = builds // args.repeat
    districts = len({m.district for m in new})
    print(f"projects={args.projects} messages={len(messages)} new={len(new)} from {districts} districts "
          f"(best of {args.repeat})")
    print(f"one ledger build        : {t_build:7.3f} s")
    print(f"状态变更通知 check       : {t_check:7.3f} s  ({per_check} builds, {t_check / t_build:.1f}x one build)")
    print(f"receipts of the new mail: {len(new) * t_build:7.3f} s  (one build each, as the worker renders them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
