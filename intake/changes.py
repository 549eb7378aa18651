"""状态变更通知 (spec 10.6): telling a district that its project changed through something it did not send.

A receipt shows the district's projects as they stand after that district's message. When a
later message from *another* district changes them (the same agency now in too many projects:
``AGENCY_OVERLIMIT``), the receipt is out of date, and the district gets one notice per poll
listing each change. A change its own message caused is never notified: its receipt says it.

- ``status_changes`` compares two ledgers (pure).
- ``owed_changes`` decides, for the messages recorded since the last check, which district is
  owed which changes: against the poll's starting point, or, for a district that sent mail in
  the batch, against what its last receipt showed (pure, given the ledger builder).
- ``decided_changes`` does the same for staff decisions (spec 10.4): the ledger with the decisions
  already notified against the ledger with every decision, for every district (a decision is never
  a district's own doing) except those whose receipt in this batch already showed it.
- ``queue_update_notices`` is the edge: it renders the notices (one per district, message and
  decision changes merged) and queues them in the store together with the marks "checked through
  message N" and "through decision D", in one transaction. A crash before that
  leaves the whole check to the next poll; after it, nothing is left to repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from email.utils import parseaddr

from intake.config import Config
from intake.mailer import message_id_for, reply_bytes, sender_domain
from intake.merge import build_ledger
from intake.models import Decision, Ledger, Outcome, Project, ReplyKind, StatusChange, StoredMessage
from intake.store import NewNotice, Store
from reports.replies import RenderedReply, render_update

log = logging.getLogger("intake")

STAFF_CHANGE = "市局复核后调整了该项目的状态。"


def status_changes(before: Ledger, after: Ledger, own_districts: set[str]) -> dict[str, list[StatusChange]]:
    """Per district, the projects present in both ledgers whose status differs, except in ``own_districts``.

    Projects are matched by district and 受理编号 (stable across polls). A project that appears or
    disappears is its own district's doing (a new summary table), never a change to notify.
    """
    old = {(p.district, p.number): p for p in before.projects}
    out: dict[str, list[StatusChange]] = {}
    for p in after.projects:
        q = old.get((p.district, p.number))
        if p.district in own_districts or q is None or q.status == p.status:
            continue
        out.setdefault(p.district, []).append(_change(q, p))
    return out


def _change(before: Project, after: Project) -> StatusChange:
    return StatusChange(
        number=after.number, district=after.district,
        name=after.values.get("项目名称") or "（未填写项目名称）",
        applicant=after.values.get("牵头申报单位") or "（未填写申报单位）",
        old=before.status, new=after.status, reasons=change_reasons(before, after),
    )


def change_reasons(before: Project, after: Project) -> tuple[str, ...]:
    """Why the status moved: a staff decision made since (with its 复核意见); the findings gained; else what
    no longer applies; else a staff decision."""
    decision = after.decision
    if decision is not None and not after.decision_stale and decision != before.decision:
        return (f"{STAFF_CHANGE}复核意见：{decision.reason}",)
    had, has = {f.code for f in before.findings}, {f.code for f in after.findings}
    gained = tuple(f.message for f in after.findings if f.code not in had)
    if gained:
        return gained
    lost = tuple(f"此前的问题已不再存在：{f.message}" for f in before.findings if f.code not in has)
    return lost or (STAFF_CHANGE,)


def owed_changes(
    prior: Sequence[StoredMessage], new: Sequence[StoredMessage], build: Callable[[Sequence[StoredMessage]], Ledger]
) -> dict[str, list[StatusChange]]:
    """The changes each district is owed after ``new`` (recorded in this order after ``prior``).

    A district without a receipt in ``new`` is compared with the ledger before ``new``; a district
    with one, with the ledger its last receipt showed (nothing owed when no other district's mail
    came after it). Only on-time district mail (``processed``) changes projects or gets a receipt.
    """
    receipts = [i for i, m in enumerate(new) if m.outcome is Outcome.PROCESSED and m.district]
    if not receipts:
        return {}
    last_receipt = {new[i].district or "": i for i in receipts}
    after = build([*prior, *new])
    owed = status_changes(build(prior), after, set(last_receipt))
    for district, i in last_receipt.items():
        if any(new[j].district != district for j in receipts if j > i):
            told = build([*prior, *new[: i + 1]])
            owed.update((d, c) for d, c in status_changes(told, after, set()).items() if d == district)
    return owed


def decided_changes(
    recorded: Sequence[StoredMessage], new: Sequence[StoredMessage], build: Callable[..., Ledger],
    told: Sequence[Decision], decisions: Sequence[Decision],
) -> dict[str, list[StatusChange]]:
    """The changes staff decisions made since the last check (``told`` were notified, ``decisions`` are all):
    per district, except a district with a receipt among ``new`` (rendered with every decision in)."""
    if len(told) == len(decisions):
        return {}
    receipts = {m.district for m in new if m.outcome is Outcome.PROCESSED and m.district}
    return status_changes(build(recorded, told), build(recorded, decisions), receipts)


def merge_changes(first: dict[str, list[StatusChange]], then: dict[str, list[StatusChange]]
                  ) -> dict[str, list[StatusChange]]:
    """Two rounds of changes as one per district: a project changed twice goes from the first old status to
    the last new one (and drops out when that is where it started), with both rounds' reasons."""
    out = {d: list(cs) for d, cs in first.items()}
    for district, changes in then.items():
        mine = {c.number: i for i, c in enumerate(out.setdefault(district, []))}
        for c in changes:
            i = mine.get(c.number)
            if i is None:
                out[district].append(c)
            else:
                earlier = out[district][i]
                out[district][i] = replace(earlier, new=c.new, reasons=earlier.reasons + c.reasons)
        out[district] = [c for c in out[district] if c.old != c.new]
    return {d: cs for d, cs in out.items() if cs}


def queue_update_notices(
    store: Store, cfg: Config, messages: Callable[[], Sequence[StoredMessage]], *, now: datetime,
    dry_run: bool = False,
) -> int:
    """Queue the 状态变更通知 owed for the messages recorded and the decisions made since the last check;
    return how many.

    ``messages`` gives every recorded message in store order; it is called only when there is
    something new to check, so an idle poll reads nothing. A dry run shows (logs) what it would
    send and queues nothing, leaving nothing to be sent later.
    """
    through, top = store.updates_checked_through(), store.max_message_id()
    decided_through, decisions = store.decisions_notified_through(), store.decisions()
    decided_top = max((d.id for d in decisions), default=decided_through)
    if top <= through and decided_top <= decided_through:
        return 0
    recorded = [m for m in messages() if m.id <= top]
    prior, new = [m for m in recorded if m.id <= through], [m for m in recorded if m.id > through]
    told = [d for d in decisions if d.id <= decided_through]
    final = store.final_results()

    def build(ms: Sequence[StoredMessage], ds: Sequence[Decision] = told) -> Ledger:
        return build_ledger(ms, cfg, decisions=ds, final=final)

    owed = merge_changes(owed_changes(prior, new, build) if new else {},
                         decided_changes(recorded, new, build, told, decisions))
    notices = [update_notice(cfg, district, changes, recorded, now, f"{top}:{decided_top}")
               for district, changes in sorted(owed.items())]
    for notice, (district, changes) in zip(notices, sorted(owed.items()), strict=True):
        log.info("%s状态变更通知 to %s (%s): %s", "dry run, not sent: " if dry_run else "", notice.to_addr,
                 district, "; ".join(f"{c.number} {c.old}→{c.new}" for c in changes))
    return store.queue_updates([] if dry_run else notices, top, decided_top)


def update_notice(
    cfg: Config, district: str, changes: Sequence[StatusChange], messages: Sequence[StoredMessage],
    now: datetime, through: int | str, key: str | None = None,
) -> NewNotice:
    """The notice to ``district``, addressed to whoever last sent its on-time mail (else its first sender);
    ``key`` (default: the district and ``through``) makes queueing it twice a no-op."""
    rendered = render_update(district, changes, **cfg.letter(now))
    return district_notice(cfg, district, ReplyKind.UPDATE, rendered, key or f"update:{district}:{through}",
                           messages, now)


def district_notice(
    cfg: Config, district: str, kind: ReplyKind, rendered: RenderedReply, key: str,
    messages: Sequence[StoredMessage], now: datetime,
) -> NewNotice:
    """A rendered notice to ``district`` as a message ready to queue: addressed by ``district_address``, its
    Message-ID fixed by ``key`` (the same notice is never two different mails)."""
    domain = sender_domain(cfg.smtp.sender)
    to = district_address(cfg, district, messages)
    raw, reply_id = reply_bytes(
        sender=cfg.smtp.sender, to=to, subject=rendered.subject, text=rendered.text, html=rendered.html,
        in_reply_to=None, kind=kind.value, message_id=message_id_for(key, domain), date=now,
    )
    return NewNotice(key, kind, district, parseaddr(to)[1], reply_id, raw)


def district_address(cfg: Config, district: str, messages: Sequence[StoredMessage]) -> str:
    """The address the district's last on-time mail came from; its first configured sender otherwise."""
    for m in reversed(messages):
        if m.district == district and m.outcome is Outcome.PROCESSED and m.sender:
            return m.sender
    return next(d.senders[0] for d in cfg.districts if d.name == district)
