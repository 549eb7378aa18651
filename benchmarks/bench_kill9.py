"""Kill -9 campaign: ``intake poll`` killed at random points, then completed, ends like a clean run.

The non-negotiable: a crash at any point of a poll is completed by a later
poll with nothing lost and nothing twice. Each round gets a fresh Dovecot
account holding the same district mail (summary tables and forms of three
districts, a correction, an agency shared across districts, a late message and
an unknown sender) and a fresh data directory. ``intake poll`` is started as
the operator starts it (a subprocess with the config file), killed with SIGKILL
after a random delay drawn from the clean run's duration, 1 to 3 times in a
row, then run to completion twice. The round's outcome is compared with a
clean reference run:

- the ledger: every project's (区县, 受理编号, 牵头申报单位, 状态, 问题代码) and every message's
  (UID, 处理结果), read from the database;
- the replies the SMTP server received: each (recipient, X-Intake-Outcome, In-Reply-To) exactly as often
  as in the reference (lost = fewer, twice = more).

    sudo .venv/bin/python benchmarks/bench_kill9.py [--rounds 50] [--seed 1]

Needs root and dovecot-imapd (the test Dovecot stores mail as the dovecot user).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dovecot, SmtpServer, find_dovecot  # noqa: E402
from support import SENDERS, config_toml, make_config, on_time  # noqa: E402

from intake.compose import compose  # noqa: E402
from intake.config import load_config  # noqa: E402
from intake.merge import build_ledger  # noqa: E402
from intake.store import Store  # noqa: E402
from samples.forms import form_pdf  # noqa: E402
from samples.projects import sample_project  # noqa: E402
from samples.tables import summary_table_xlsx  # noqa: E402

INTAKE = [sys.executable, "-m", "intake.cli"]


def mailbox() -> list[tuple[bytes, datetime]]:
    """The district mail every round starts from (same bytes, same Message-IDs)."""
    out: list[tuple[bytes, datetime]] = []
    n = 0
    for d_index, district in enumerate(("云龙区", "鼓楼区", "泉山区")):
        projects = [sample_project(k + 10 * d_index, district=district) for k in range(3)]
        if d_index == 2:  # shares 云龙区's first agency: AGENCY_OVERLIMIT across districts
            projects[0] = projects[0].with_row(合作服务机构=sample_project(0, district="云龙区").row["合作服务机构"])
        files = [(f"{district}申报汇总表.xlsx", summary_table_xlsx(district, [p.row for p in projects]))]
        files += [(f"{p.row['牵头申报单位']}申报书.pdf", form_pdf(p.form, project_type=p.row["项目类别"]))
                  for p in projects[:2]]
        for part in (files[:2], files[2:]):  # table + one form, then the rest in a second message
            n += 1
            when = on_time(3 + d_index, 9, n)
            out.append((compose(sender=SENDERS[district], sender_name=f"{district}知识产权局",
                                subject=f"{district}申报材料{n}", attachments=part,
                                message_id=f"<k9-{n}@example.cn>", arrival=when), when))
    n += 1
    late = datetime(2024, 11, 9, 10, 0, tzinfo=on_time().tzinfo)
    out.append((compose(sender=SENDERS["徐州经济技术开发区"], subject="补交材料", body="补交",
                        message_id=f"<k9-{n}@example.cn>", arrival=late), late))
    n += 1
    out.append((compose(sender="someone@elsewhere.cn", subject="咨询", body="请问",
                        message_id=f"<k9-{n}@example.cn>", arrival=on_time(6)), on_time(6)))
    return out


def outcome(config: Path, smtp: SmtpServer, first_reply: int) -> tuple[tuple, Counter]:
    """What a round ended with: the ledger's projects and messages, and the replies received since ``first_reply``."""
    cfg = load_config(config, need_secrets=False)
    with Store(cfg.paths.data_dir / "intake.db") as store:
        messages = store.messages()
    ledger = build_ledger(messages, cfg)
    projects = tuple(sorted((p.district, p.number, p.values.get("牵头申报单位", ""), str(p.status),
                             ",".join(sorted(f.code for f in p.findings))) for p in ledger.projects))
    recorded = tuple(sorted((m.uid, str(m.outcome)) for m in messages))
    replies = Counter((c.rcpt_tos[0], c.message["X-Intake-Outcome"], c.message["In-Reply-To"])
                      for c in smtp.messages[first_reply:])
    return (projects, recorded), replies


def poll(config: Path, env: dict[str, str], kill_after: float | None) -> float:
    """Run ``intake poll``; SIGKILL it after ``kill_after`` seconds when given. Returns the seconds it ran."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*INTAKE, "poll", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_after is None:
        proc.wait(timeout=300)
    else:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    return time.perf_counter() - t0


def setup_round(dovecot: Dovecot, smtp: SmtpServer, tmp: Path, name: str, mail: list) -> tuple[Path, dict]:
    user, password = dovecot.new_user()
    dovecot.append_many(user, mail)
    env_name = "BENCH_K9_PW"
    os.environ[env_name] = password
    cfg = make_config(tmp / name, imap={"host": dovecot.host, "port": dovecot.port, "user": user,
                                        "password_env": env_name},
                      smtp={"host": smtp.host, "port": smtp.port})
    config = tmp / f"{name}.toml"
    config.write_text(config_toml(cfg), encoding="utf-8")
    return config, {**os.environ, env_name: password, "PYTHONPATH": str(ROOT)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    binary = find_dovecot()
    if binary is None or os.geteuid() != 0:
        print("needs dovecot-imapd and root", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    mail = mailbox()
    dovecot, smtp = Dovecot(binary).start(), SmtpServer().start()
    lost = twice = differing = kills = 0
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            config, env = setup_round(dovecot, smtp, tmp, "reference", mail)
            start = len(smtp.messages)
            clean = poll(config, env, None)
            poll(config, env, None)
            reference, ref_replies = outcome(config, smtp, start)
            print(f"reference: one clean poll {clean:.1f} s, {len(reference[0])} projects, "
                  f"{len(reference[1])} messages, {sum(ref_replies.values())} replies")
            for r in range(args.rounds):
                config, env = setup_round(dovecot, smtp, tmp, f"round{r}", mail)
                start = len(smtp.messages)
                for _ in range(rng.randint(1, 3)):
                    poll(config, env, rng.uniform(0.05, clean * 1.1))
                    kills += 1
                poll(config, env, None)
                poll(config, env, None)
                got, replies = outcome(config, smtp, start)
                r_lost = sum((ref_replies - replies).values())
                r_twice = sum((replies - ref_replies).values())
                lost, twice = lost + r_lost, twice + r_twice
                differing += got != reference
                mark = "ok" if (got == reference and not r_lost and not r_twice) else "DIFFERS"
                print(f"round {r + 1:2}: replies lost {r_lost}, twice {r_twice}, ledger "
                      f"{'same' if got == reference else 'DIFFERENT'}  {mark}", flush=True)
    finally:
        smtp.stop()
        dovecot.stop()
    print(f"{args.rounds} rounds, {kills} kills: replies lost {lost}, sent twice {twice}, "
          f"ledgers differing {differing}")
    return 0 if not (lost or twice or differing) else 1


if __name__ == "__main__":
    sys.exit(main())
