"""Replies to district messages (spec section 7): a receipt or a late notice, as text and HTML.

Rendered from jinja2 templates the bureau can edit: a template of the same name in
``templates_dir`` overrides the built-in one in ``reports/templates/``. HTML templates
(``*.html.j2``) are autoescaped; every template sees undefined names as errors
(``StrictUndefined``), so a misspelt variable in an edited copy fails loudly instead of
sending a blank. Sending is not done here.

The variables every template gets (see ``reply_context``):

- ``kind`` (``receipt``/``late``), ``campaign``, ``district``, ``office`` (``云龙区知识产权局``),
  ``subject`` (the original subject), ``received_at`` and ``deadline`` (``2024年11月8日 23:59``);
- ``files``: ``name``, ``label`` (汇总表, 申报书, 无法识别, 无法读取：原因 …), ``container``;
- ``message_findings``: the sentences of the message's own findings (not ``LATE``);
- ``unmatched``: names of forms that match no row of the district's table;
- ``projects``: ``number``, ``name``, ``applicant``, ``status``, ``findings`` (sentences);
- ``counts``: projects per status, ``受理`` … ``不予受理``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from intake.models import REPLY_LABEL, Code, Project, ReplyKind, StoredAttachment, StoredMessage
from reports.labels import STATUS_ORDER, attachment_label, chinese_time

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
NO_SUBJECT = "（无主题）"


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
) -> RenderedReply:
    """Render the receipt or late notice for ``message``.

    ``projects`` are the district's current projects (after this message), ``unmatched``
    the forms of this message that match no row of the district's table.
    """
    context = reply_context(kind, message, projects, unmatched, campaign=campaign, deadline=deadline, tz=tz)
    env = environment(templates_dir)
    return RenderedReply(
        subject=reply_subject(kind, message.subject),
        text=env.get_template(f"{_template_stem(kind)}.txt.j2").render(context),
        html=env.get_template(f"{_template_stem(kind)}.html.j2").render(context),
    )


def reply_subject(kind: ReplyKind, original: str) -> str:
    """``回执：<original subject>`` on one line; ``（无主题）`` stands in for an empty subject."""
    return f"{REPLY_LABEL[kind]}：{' '.join(original.split()) or NO_SUBJECT}"


def reply_context(
    kind: ReplyKind,
    message: StoredMessage,
    projects: Sequence[Project],
    unmatched: Sequence[str],
    *,
    campaign: str,
    deadline: datetime,
    tz: tzinfo,
) -> dict[str, Any]:
    """The plain values the templates show (listed in the module docstring)."""
    district = message.district or ""
    return {
        "kind": kind.value,
        "campaign": campaign,
        "district": district,
        "office": f"{district}知识产权局",
        "subject": " ".join(message.subject.split()) or NO_SUBJECT,
        "received_at": chinese_time(message.arrival, tz),
        "deadline": chinese_time(deadline, tz),
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
    }


def _counts(projects: Sequence[Project]) -> dict[str, int]:
    counts = Counter(p.status for p in projects)
    return {s.value: counts[s] for s in STATUS_ORDER}


def _template_stem(kind: ReplyKind) -> str:
    return "receipt" if kind is ReplyKind.RECEIPT else "late"


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
