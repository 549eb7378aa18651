"""parse_mail over imap-tools' real-client corpus (../shared/corpora, read in place, never copied).

Each message's data file (messages_data/*.py) holds what imap-tools reads from it,
attachment file names included. imap-tools lists a ``message/rfc822`` part as an
attachment; parse_mail opens it instead (see parsers/mail.py), so those names are
compared through ``part_filename`` on the part itself.
"""

from __future__ import annotations

import email
import email.policy
import runpy
from pathlib import Path

import pytest

from parsers import mail

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "imap-tools-messages"
MESSAGES = sorted((CORPUS / "messages").rglob("*.eml")) if CORPUS.is_dir() else []

pytestmark = pytest.mark.skipif(not MESSAGES, reason=f"imap-tools corpus not found at {CORPUS}")


def expected_attachments(eml: Path) -> list[dict]:
    data = CORPUS / "messages_data" / eml.relative_to(CORPUS / "messages").with_suffix(".py")
    return runpy.run_path(str(data))["DATA"]["attachments"] if data.exists() else []


def with_attachments() -> list[Path]:
    return [eml for eml in MESSAGES if any(a["filename"] for a in expected_attachments(eml))]


def ident(p: Path) -> str:
    return str(p.relative_to(CORPUS / "messages"))


@pytest.mark.parametrize("eml", MESSAGES, ids=ident)
def test_parses_without_giving_up(eml: Path):
    """Every corpus message is taken apart without reaching the last-resort handler."""
    parts = mail.parse_mail(eml.read_bytes())
    assert mail.UNPARSEABLE not in [p.reason for p in parts.problems]


@pytest.mark.parametrize("eml", with_attachments(), ids=ident)
def test_file_names_match_imap_tools(eml: Path):
    """Named file parts decode to the names imap-tools expects, in order."""
    expected = [a["filename"] for a in expected_attachments(eml)
                if a["filename"] and a["content_type"] != "message/rfc822"]
    parts = mail.parse_mail(eml.read_bytes())
    assert [a.filename for a in parts.attachments] == expected


@pytest.mark.parametrize("eml", with_attachments(), ids=ident)
def test_attached_message_names_match_imap_tools(eml: Path):
    """Names on message/rfc822 parts (opened, not listed, by parse_mail) decode as imap-tools expects."""
    expected = [a["filename"] for a in expected_attachments(eml)
                if a["filename"] and a["content_type"] == "message/rfc822"]
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.compat32)
    ours = [mail.part_filename(p) for p in msg.walk() if mail.content_type(p) == "message/rfc822"]
    assert [n for n in ours if n] == expected
