"""Benchmark: rendering the replies of a backlog, one ledger brought forward per poll against a full ledger
build per reply (what the worker did before the reply stage).

n district messages (four districts in turn, each re-sending its summary table of 10 projects with a form)
are recorded in a fresh store, each owed a receipt; the reply stage (``intake.poll.reply``) renders and queues
them all. The "per reply" column rebuilds the ledger from every message so far for each reply, as the hub
worker did; the ratio shows the quadratic term gone. Documents are parsed once up front (not timed).

    .venv/bin/python benchmarks/bench_reply_backlog.py [--sizes 100 200 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import SENDERS, make_config, on_time  # noqa: E402

from intake.merge import LedgerBuilder  # noqa: E402
from intake.models import NewAttachment, NewMessage, Outcome, ReplyKind  # noqa: E402
from intake.poll.context import PollContext  # noqa: E402
from intake.poll.reply import compose_reply, render_owed_replies  # noqa: E402
from intake.store import Store  # noqa: E402
from parsers.documents import parse_document  # noqa: E402
from samples.forms import form_pdf  # noqa: E402
from samples.projects import sample_project  # noqa: E402
from samples.tables import summary_table_xlsx  # noqa: E402

DISTRICTS = list(SENDERS)


def attachments(district: str) -> tuple[NewAttachment, ...]:
    projects = [sample_project(k, district=district) for k in range(10)]
    table = parse_document(summary_table_xlsx(district, [p.row for p in projects]), "汇总表.xlsx", "xlsx")
    form = parse_document(form_pdf(projects[0].form, project_type="新建"), "申报书.pdf", "pdf")
    assert table is not None and form is not None
    return tuple(
        NewAttachment(filename=name, content_type="application/octet-stream", sniffed=kind, sha256=f"{i:064x}",
                      size=1, path="archive/x", kind=doc.kind, parsed=doc.to_dict())
        for i, (name, kind, doc) in enumerate([("汇总表.xlsx", "xlsx", table), ("申报书.pdf", "pdf", form)])
    )


def run(n: int, files: dict[str, tuple[NewAttachment, ...]]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(Path(tmp), imap={"host": "127.0.0.1", "port": 9})
        with Store(Path(tmp) / "intake.db") as store:
            for i in range(n):
                district = DISTRICTS[i % len(DISTRICTS)]
                m = NewMessage(folder="INBOX", uidvalidity=1, uid=i + 1, message_id=f"<b{i}@x>", raw_sha256=f"{i:064x}",
                               raw_path="archive/x", size=1, sender=SENDERS[district], sender_name="",
                               district=district, subject=f"材料{i}", arrival=on_time(), outcome=Outcome.PROCESSED,
                               attachments=files[district])
                with store.transaction():
                    store.insert_reply_due(store.insert_message(m), ReplyKind.RECEIPT)
            messages = store.messages()
            started = time.perf_counter()
            for i, m in enumerate(messages):  # the hub worker: a full build (all messages so far) per reply
                compose_reply(cfg, ReplyKind.RECEIPT, m, LedgerBuilder(messages[: i + 1], cfg), on_time())
            per_reply = time.perf_counter() - started
            started = time.perf_counter()
            rendered = render_owed_replies(PollContext.of(cfg, store))
            stage = time.perf_counter() - started
            assert rendered.queued == n and rendered.failed == 0
    return per_reply, stage


def main() -> None:
    os.environ.setdefault("INTAKE_IMAP_PASSWORD", "unused")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    args = parser.parse_args()
    files = {d: attachments(d) for d in DISTRICTS}
    print(f"{'replies':>8} {'per reply (s)':>14} {'reply stage (s)':>16} {'ratio':>6} {'stage ms/reply':>15}")
    for n in args.sizes:
        per_reply, stage = run(n, files)
        print(f"{n:>8} {per_reply:>14.2f} {stage:>16.2f} {per_reply / stage:>6.1f} {1000 * stage / n:>15.1f}")


if __name__ == "__main__":
    main()
