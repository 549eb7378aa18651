"""Replies to districts (spec sections 7, 10.5, 10.6): receipts, late notices, 状态变更通知 and 结果通知, as text
and HTML.

Rendered from jinja2 templates the bureau can edit: a template of the same name in
``templates_dir`` overrides the built-in one in ``reports/templates/``. HTML templates
(``*.html.j2``) are autoescaped; every template sees undefined names as errors
(``StrictUndefined``), so a misspelt variable in an edited copy fails loudly instead of
sending a blank. Sending is not done here.

The variables every template gets (``letter_context``):

- ``kind`` (``receipt``/``late``/``update``), ``campaign``, ``district``, ``office`` (``云龙区知识产权局``),
  ``bureau`` (``徐州市知识产权局``, the signature), ``signed_on`` (``2024年11月5日``, the date of the reply),
  ``deadline`` (``2024年11月8日23时59分``) and ``deadline_date`` (``2024年11月8日``),
  ``contact`` (``李钦华 0516-69859237``) split into ``contact_name`` and ``contact_phone``,
  ``paper_address`` (where the signed, stamped, bound paper copy is delivered).

Receipts and late notices also get (``reply_context``):

- ``subject`` (the original subject), ``received_at`` (``2024年11月5日9时12分``);
- ``files``: ``name``, ``label`` (汇总表, 申报书, 无法识别, 无法读取：原因 …), ``container``;
- ``message_findings``: the sentences of the message's own findings (not ``LATE``);
- ``unmatched``: names of forms that match no row of the district's table;
- ``projects``: ``number``, ``name``, ``applicant``, ``status``, ``findings`` (sentences);
- ``counts``: projects per status, ``受理`` … ``不予受理``.

- ``projects`` also carry ``review``: the 复核意见 of a staff decision in force, else ``""``.

状态变更通知 get (``update_context``) ``changes``: ``number``, ``name``, ``applicant``, ``old``, ``new``,
``reasons`` (sentences). 结果通知 (``result_context``) get ``results``: ``number``, ``name``, ``applicant``,
``status`` (最终状态), ``reason``; and ``counts`` per final status.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from intake.models import (
    REPLY_LABEL,
    Code,
    FinalResult,
    Project,
    ReplyKind,
    StatusChange,
    StoredAttachment,
    StoredMessage,
)
from reports.labels import STATUS_ORDER, attachment_label, chinese_date, chinese_time

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
NO_SUBJECT = "（无主题）"
BUREAU = "徐州市知识产权局"
# The notice's own values (徐知通〔2024〕12号), used when the config leaves them out.
DEFAULT_CONTACT = "李钦华 0516-69859237"
DEFAULT_PAPER_ADDRESS = "徐州市云龙区新安路11号市市场监督管理局218室"
TEMPLATE_STEM = {ReplyKind.RECEIPT: "receipt", ReplyKind.LATE: "late", ReplyKind.UPDATE: "update",
                 ReplyKind.FINAL: "result"}


@dataclass(frozen=True)
class RenderedReply:
    """A reply ready to be put in a message: subject, plain-text body and HTML body."""

    subject: str
    text: str
    html: str


def render_reply(
    kind: ReplyKind,
    message: StoredMessage,
    projects: Sequence[Project],
    unmatched: Sequence[str],
    *,
    campaign: str,
    deadline: datetime,
    tz: tzinfo,
    templates_dir: Path | None = None,
    contact: str = DEFAULT_CONTACT,
    paper_address: str = DEFAULT_PAPER_ADDRESS,
    now: datetime | None = None,
) -> RenderedReply:
    """Render the receipt or late notice for ``message``.

    ``projects`` are the district's current projects (after this message), ``unmatched``
    the forms of this message that match no row of the district's table. ``now`` is the
    date the reply is signed with (default: the current time).
    """
    letter = letter_context(kind, message.district or "", campaign=campaign, deadline=deadline, tz=tz,
                            contact=contact, paper_address=paper_address, now=now)
    context = {**letter, **reply_context(kind, message, projects, unmatched, tz=tz)}
    return _render(kind, reply_subject(kind, message.subject), context, templates_dir)


def render_update(district: str, changes: Sequence[StatusChange], **letter: Any) -> RenderedReply:
    """Render the 状态变更通知 telling ``district`` of ``changes`` to its projects (spec 10.6); ``letter``:
    ``campaign``, ``deadline``, ``tz`` and optionally ``templates_dir``, ``contact``, ``paper_address``,
    ``now``, as for ``render_reply``."""
    return _render_notice(ReplyKind.UPDATE, district, update_context(changes), **letter)


def render_result(district: str, results: Sequence[FinalResult], **letter: Any) -> RenderedReply:
    """Render the 结果通知 giving ``district`` its final list after the close-out (spec 10.5); ``letter`` as
    for ``render_update``."""
    return _render_notice(ReplyKind.FINAL, district, result_context(results), **letter)


def _render_notice(
    kind: ReplyKind,
    district: str,
    body: dict[str, Any],
    *,
    campaign: str,
    deadline: datetime,
    tz: tzinfo,
    templates_dir: Path | None = None,
    contact: str = DEFAULT_CONTACT,
    paper_address: str = DEFAULT_PAPER_ADDRESS,
    now: datetime | None = None,
) -> RenderedReply:
    """A notice to a district about the campaign as a whole, subject ``<label>：<campaign.name>``."""
    letter = letter_context(kind, district, campaign=campaign, deadline=deadline, tz=tz, contact=contact,
                            paper_address=paper_address, now=now)
    subject = f"{REPLY_LABEL[kind]}：{' '.join(campaign.split())}"
    return _render(kind, subject, {**letter, **body}, templates_dir)


def result_context(results: Sequence[FinalResult]) -> dict[str, Any]:
    """The district's final list: ``results`` (``number``, ``name``, ``applicant``, ``status``, ``reason``) in
    受理编号 order, and ``counts`` per final status."""
    ordered = sorted(results, key=lambda r: r.number)
    counts = Counter(r.status for r in ordered)
    return {
        "results": [{"number": r.number, "name": r.name, "applicant": r.applicant, "status": r.status.value,
                     "reason": r.reason} for r in ordered],
        "counts": {s.value: counts[s] for s in STATUS_ORDER},
    }


def _render(kind: ReplyKind, subject: str, context: dict[str, Any], templates_dir: Path | None) -> RenderedReply:
    env, stem = environment(templates_dir), TEMPLATE_STEM[kind]
    return RenderedReply(
        subject=subject,
        text=env.get_template(f"{stem}.txt.j2").render(context),
        html=env.get_template(f"{stem}.html.j2").render(context),
    )


def reply_subject(kind: ReplyKind, original: str) -> str:
    """``回执：<original subject>`` on one line; ``（无主题）`` stands in for an empty subject."""
    return f"{REPLY_LABEL[kind]}：{' '.join(original.split()) or NO_SUBJECT}"


def letter_context(
    kind: ReplyKind,
    district: str,
    *,
    campaign: str,
    deadline: datetime,
    tz: tzinfo,
    contact: str = DEFAULT_CONTACT,
    paper_address: str = DEFAULT_PAPER_ADDRESS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What every letter shows: who writes to whom, when, the deadline, whom to call, where paper goes."""
    name, phone = split_contact(contact)
    return {
        "kind": kind.value,
        "campaign": campaign,
        "district": district,
        "office": f"{district}知识产权局",
        "bureau": BUREAU,
        "signed_on": chinese_date(now or datetime.now(tz), tz),
        "deadline": chinese_time(deadline, tz),
        "deadline_date": chinese_date(deadline, tz),
        "contact": contact.strip(),
        "contact_name": name,
        "contact_phone": phone,
        "paper_address": paper_address.strip(),
    }


def split_contact(contact: str) -> tuple[str, str]:
    """``李钦华 0516-69859237`` (or ``李钦华，0516-…``) as (联系人, 电话); the whole text as 联系人 when
    there is no phone number after it."""
    name, _, phone = re.sub(r"[，,；;、]", " ", contact).strip().partition(" ")
    return name, phone.strip()


def reply_context(
    kind: ReplyKind,
    message: StoredMessage,
    projects: Sequence[Project],
    unmatched: Sequence[str],
    *,
    tz: tzinfo,
) -> dict[str, Any]:
    """The message's values a receipt or late notice shows (listed in the module docstring)."""
    return {
        "subject": " ".join(message.subject.split()) or NO_SUBJECT,
        "received_at": chinese_time(message.arrival, tz),
        "files": [_file(a, unmatched) for a in message.attachments],
        "message_findings": [f.message for f in message.findings if f.code is not Code.LATE],
        "unmatched": list(unmatched),
        "projects": [_project(p) for p in projects],
        "counts": _counts(projects),
    }


def _file(att: StoredAttachment, unmatched: Sequence[str]) -> dict[str, Any]:
    return {"name": att.filename, "label": attachment_label(att, unmatched), "container": att.container}


def _project(p: Project) -> dict[str, Any]:
    return {
        "number": p.number,
        "name": p.values.get("项目名称") or "（未填写项目名称）",
        "applicant": p.values.get("牵头申报单位") or "（未填写申报单位）",
        "status": p.status.value,
        "findings": [f.message for f in p.findings],
        # the 复核意见 of a staff decision in force (spec 10.4), "" without one
        "review": p.decision.reason if p.decision is not None and not p.decision_stale else "",
    }


def _counts(projects: Sequence[Project]) -> dict[str, int]:
    counts = Counter(p.status for p in projects)
    return {s.value: counts[s] for s in STATUS_ORDER}


def update_context(changes: Sequence[StatusChange]) -> dict[str, Any]:
    """The changes a 状态变更通知 lists, in 受理编号 order."""
    return {
        "changes": [
            {"number": c.number, "name": c.name, "applicant": c.applicant, "old": c.old.value,
             "new": c.new.value, "reasons": list(c.reasons)}
            for c in sorted(changes, key=lambda c: c.number)
        ],
    }


@lru_cache(maxsize=8)
def environment(templates_dir: Path | None) -> Environment:
    """The jinja2 environment: the bureau's copies first, then the built-in templates.

    Cached per directory; jinja2 still reloads a template whose file changed.
    """
    loaders = [FileSystemLoader(templates_dir)] if templates_dir else []
    return Environment(
        loader=ChoiceLoader([*loaders, FileSystemLoader(PACKAGE_TEMPLATES)]),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
