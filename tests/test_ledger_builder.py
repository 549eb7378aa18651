"""``LedgerBuilder``: the ledger brought forward message by message equals ``build_ledger`` over the same
messages at every step (what lets the reply stage render a backlog without rebuilding everything)."""

from __future__ import annotations

from factories import (
    attach_failed,
    attach_form,
    attach_table,
    make_config,
    make_form,
    make_message,
    make_row,
    make_table,
)

from intake.merge import LedgerBuilder, build_ledger
from intake.models import Outcome

CFG = make_config()


def test_each_step_equals_a_full_build() -> None:
    """Forms before the table, a correction, another district sharing an agency (a cross-district finding),
    a late and an unknown sender's message: after each one the builder's ledger is build_ledger's."""
    shared = "徐州（联合）知识产权代理有限公司"
    r1, r2, r3 = make_row(1, 合作服务机构=shared), make_row(2), make_row(3)
    gl = make_row(4, 合作服务机构=shared)
    messages = [
        make_message(1, attach_form(make_form(r1)), attach_form(make_form(r2))),
        make_message(2, attach_table(make_table(r1, r2))),
        make_message(3, attach_table(make_table(gl)), attach_form(make_form(gl)), district="鼓楼区"),
        make_message(4, attach_table(make_table(r1, r2, r3)), attach_failed("徐州3号科技有限公司申报书.pdf")),
        make_message(5, attach_table(make_table(r1)), outcome=Outcome.LATE),
        make_message(6, attach_table(make_table(r2)), district=None, outcome=Outcome.UNKNOWN_SENDER),
        make_message(7, attach_form(make_form(r3))),
    ]
    builder = LedgerBuilder(messages[:1], CFG)
    assert builder.ledger() == build_ledger(messages[:1], CFG)
    for n in range(2, len(messages) + 1):
        builder.add(messages[n - 1])
        assert builder.ledger() == build_ledger(messages[:n], CFG), f"after message {n}"
    assert builder.ledger() == builder.ledger(), "asking twice adds no cross-district finding twice"
    assert any(p.findings for p in builder.ledger().projects)
