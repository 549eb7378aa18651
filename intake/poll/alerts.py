"""Stage 8: one mail to staff (``staff.report_to``) when something new needs a person.

What needs a person is ``intake.attention.needs_attention``: a reply refused for good or not rendering, a
message recorded as ``error``, an unknown sender, a step failing for more than an hour. Each item is mailed
once; a kind is mailed at most once an hour (items of a kind that came up within the hour wait for the next
alert). The mail is built and sent by ``intake.staff.send_alerts``.
"""

from __future__ import annotations

from intake.attention import needs_attention
from intake.poll.context import PollContext
from intake.staff import send_alerts


def mail_alerts(ctx: PollContext) -> int:
    """Mail the new items that need a person; returns how many the mail listed (0: no mail)."""
    if not ctx.cfg.staff.report_to:
        return 0
    now = ctx.clock()
    return send_alerts(ctx.cfg, ctx.store, needs_attention(ctx.cfg, ctx.store, now), now, ctx.mailer_factory)
