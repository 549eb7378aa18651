"""Benchmark: peak memory of one poll over a mailbox of hostile files (issue 11's target).

A private Dovecot (tests/servers.py; needs root and dovecot-imapd) gets one district's mailbox:

- a PDF whose one page shows 2,000,000 characters (1.3 KB of PDF; pdfminer alone needs ~4 GB),
  beside a good form in the same message;
- a PDF with an array nested 100,000 deep;
- an .xlsx (under the parser's 100 MB unpacked check) whose shared-string table holds 3,500,000 strings;
- a .docx (under the forms parser's zip checks) with 3,000,000 paragraphs;
- a zip bomb (1 GB of zeros in one member, ~1 MB packed) and a zip carrying a PDF bomb and a docx bomb;
- a message of 1,000 nested multiparts, one with 20,000 header fields, one of 85 MB (over the 80 MB limit);
- a normal district message (summary table of 5 projects + one form), to see real work still done.

The poll runs in a fresh process with the default limits (``[parsing]``: 1024 MB per child, 60 s per
file) so its peak RSS is the worker's own, not the generator's. Reported: the worker's peak RSS
(``VmHWM``, target < 300 MB), each parser child's peak RSS (sampled every 50 ms from /proc, and as
reported by the children; target under the child limit), the pool's counts, and every message with
its outcome, findings and files: every message must be recorded.

    sudo .venv/bin/python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hostile  # noqa: E402
from servers import Dovecot, find_dovecot  # noqa: E402
from support import SENDERS, config_toml, make_config, on_time  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "hostile.txt"
SENDER = SENDERS["云龙区"].encode()


def mailbox() -> list[tuple[str, bytes]]:
    """(label, raw message) of every hostile message, and one normal district message."""
    from intake.compose import compose
    from samples.forms import form_pdf
    from samples.projects import sample_project
    from samples.tables import summary_table_xlsx

    projects = [sample_project(k, district="云龙区") for k in range(5)]
    form = form_pdf(projects[0].form, project_type=projects[0].row["项目类别"])
    table = summary_table_xlsx("云龙区", [p.row for p in projects])
    pdf, xls, docx, zipped = "application/pdf", "application/vnd.ms-excel", "application/msword", "application/zip"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as z:
        z.writestr("申报书1.pdf", hostile.pdf_text_bomb(2_000_000))
        z.writestr("申报书2.docx", hostile.docx_paragraph_bomb(1_000_000))
    big = hostile.message_with([("超大.pdf", pdf, b"%PDF-1.4\n" + os.urandom(62 * 1024 * 1024))], SENDER, b"oversize")
    return [
        ("pdf text bomb + good form", hostile.message_with(
            [("申报书.pdf", pdf, hostile.pdf_text_bomb(2_000_000)), ("好申报书.pdf", pdf, form)], SENDER, b"pdfbomb")),
        ("pdf nesting 100k deep", hostile.message_with(
            [("嵌套.pdf", pdf, hostile.pdf_deep_nesting(100_000))], SENDER, b"pdfdeep")),
        ("xlsx 3.5M shared strings", hostile.message_with(
            [("汇总表.xlsx", xls, hostile.xlsx_shared_strings_bomb(3_500_000))], SENDER, b"xlsxbomb")),
        ("docx 3M paragraphs", hostile.message_with(
            [("申报书.docx", docx, hostile.docx_paragraph_bomb(3_000_000))], SENDER, b"docxbomb")),
        ("zip bomb 1 GB", hostile.message_with([("材料.zip", zipped, hostile.zip_bomb(1024))], SENDER, b"zipbomb")),
        ("zip of pdf+docx bombs", hostile.message_with([("材料2.zip", zipped, inner.getvalue())], SENDER, b"zipinner")),
        ("MIME 1,000 deep", hostile.nested_multipart(1000, SENDER)),
        ("20,000 headers", hostile.many_headers(20_000, SENDER)),
        ("85 MB message", big),
        ("normal: table + form", compose(sender=SENDERS["云龙区"], sender_name="云龙区知识产权局", subject="申报材料",
                                         attachments=[("云龙区申报汇总表.xlsx", table), ("申报书.pdf", form)],
                                         message_id="<normal@example.cn>", arrival=on_time(6))),
    ]


def deliver(dovecot: Dovecot, user: str, messages: list[tuple[bytes, datetime]]) -> None:
    """Straight into the Maildir, as a delivery agent would (INTERNALDATE is the file's mtime)."""
    assert dovecot.root is not None
    dovecot.uids(user)
    maildir = dovecot.root / "mail" / user / "Maildir"
    for i, (raw, when) in enumerate(messages):
        name = f"{int(when.timestamp()) + i}.M{i}P{os.getpid()}.bench,S={len(raw)}:2,"
        path = maildir / "tmp" / name
        path.write_bytes(raw)
        os.utime(path, (when.timestamp() + i, when.timestamp() + i))
        shutil.chown(path, "dovecot", "dovecot")
        path.rename(maildir / "new" / name)


def run_poll(config: Path) -> dict:
    """In this (fresh) process: one poll; the peak RSS of this process and of every parser child."""
    import multiprocessing

    from intake.config import load_config
    from intake.store import Store
    from intake.worker import Worker

    children: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            for p in multiprocessing.active_children():
                try:
                    with open(f"/proc/{p.pid}/status", encoding="ascii") as f:
                        rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
                except (OSError, StopIteration):
                    continue
                children[p.pid] = max(children.get(p.pid, 0), rss)

    cfg = load_config(config)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with Store(cfg.paths.data_dir / "intake.db") as store:
        worker = Worker(cfg, store)  # replies fail to send (no SMTP server): they wait, as they would
        summary = worker.poll()
        messages = store.messages()
    seconds = time.monotonic() - started
    done.set()
    stats = worker.ctx.parsers.stats
    return {
        "worker_peak_kb": _vm_hwm(),
        "seconds": seconds,
        "summary": summary.line(),
        "child_limit_mb": cfg.parsing.child_memory_mb,
        "timeout_s": cfg.parsing.file_timeout_seconds,
        "children_sampled_kb": sorted(children.values(), reverse=True),
        "children_reported_kb": sorted(stats.child_peak_rss_kb, reverse=True),
        "pool": {k: v for k, v in stats.__dict__.items() if k != "child_peak_rss_kb"},
        "messages": [
            {"uid": m.uid, "subject": m.subject, "outcome": str(m.outcome), "district": m.district,
             "findings": [f.code.value if hasattr(f.code, "value") else f.code for f in m.findings],
             "files": [(a.filename, a.kind, a.error_reason or "") for a in m.attachments]}
            for m in sorted(messages, key=lambda m: m.uid)
        ],
    }


def _vm_hwm() -> int:
    """This process's peak RSS in KB. Not ``ru_maxrss``: that one survives fork+exec, so a poll process started
    by the generator would report the generator's peak."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poll", type=Path, help=argparse.SUPPRESS)  # internal: run the poll for this config
    args = ap.parse_args()
    if args.poll:
        print(json.dumps(run_poll(args.poll), ensure_ascii=False))
        return 0
    binary = find_dovecot()
    if binary is None or os.geteuid() != 0:
        print("needs dovecot-imapd and root (Dovecot stores mail as the dovecot user)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    labelled = mailbox()
    print(f"generated {len(labelled)} messages ({sum(len(r) for _, r in labelled) / 2**20:.0f} MB) "
          f"in {time.perf_counter() - t0:.0f} s")
    dovecot = Dovecot(binary).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            user, password = dovecot.new_user()
            os.environ["BENCH_IMAP_PW"] = password
            deliver(dovecot, user, [(raw, on_time(5)) for _, raw in labelled])
            cfg = make_config(Path(tmp) / "var", imap={"host": dovecot.host, "port": dovecot.port, "user": user,
                                                        "password_env": "BENCH_IMAP_PW"},
                              smtp={"host": "127.0.0.1", "port": 9})
            config = Path(tmp) / "config.toml"
            config.write_text(config_toml(cfg), encoding="utf-8")
            del labelled[:]  # nothing of the generator is in the poll's process anyway
            out = subprocess.run([sys.executable, __file__, "--poll", str(config)], capture_output=True, text=True,
                                 check=False)
            if out.returncode != 0:
                print(out.stdout, out.stderr, sep="\n")
                return 1
            result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        dovecot.stop()
    report = render(result)
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")
    ok = result["worker_peak_kb"] < 300 * 1024 and len(result["messages"]) == 10
    return 0 if ok else 1


def render(r: dict) -> str:
    limit_kb = r["child_limit_mb"] * 1024
    sampled, reported = r["children_sampled_kb"], r["children_reported_kb"]
    top = max([*sampled, *reported, 0])
    lines = [
        f"poll: {r['seconds']:.1f} s; {r['summary']}",
        f"worker (parent) peak RSS: {r['worker_peak_kb'] / 1024:.0f} MB (target < 300 MB) "
        f"{'OK' if r['worker_peak_kb'] < 300 * 1024 else 'OVER'}",
        f"parser children: limit {r['child_limit_mb']} MB address space, {r['timeout_s']} s per file; "
        f"highest peak RSS {top / 1024:.0f} MB {'OK' if top < limit_kb else 'OVER'}",
        f"  sampled peaks (MB): {[round(k / 1024) for k in sampled]}",
        f"  reported by answering children (MB): {[round(k / 1024) for k in reported]}",
        f"  pool: {r['pool']}",
        f"messages recorded: {len(r['messages'])} of 10",
    ]
    for m in r["messages"]:
        lines.append(f"  uid {m['uid']:2} {m['subject'][:24]:24} {m['outcome']:15} {m['district'] or '-':6} "
                     f"findings={','.join(m['findings']) or '-'}")
        lines.extend(f"         {name}: {kind} {reason[:40]}" for name, kind, reason in m["files"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
