"""A raw message taken apart: sender, subject, automatic-mail signs, attachments, cloud links.

``parse_mail(raw)`` never raises: whatever the bytes, it returns a ``MailParts``,
with a ``Problem`` saying what could not be read.

Decisions:

- Headers are read raw (``compat32``, 8-bit bytes kept as surrogates) and
  decoded here: RFC 2047 encoded-words (GB2312/GBK labels read as GB18030, so
  GBK-only characters such as 镕 survive), RFC 2231 parameters with
  continuations, and raw 8-bit names (UTF-8, else GB18030).
- An attachment is any leaf part with a file name (Content-Disposition
  ``filename`` or Content-Type ``name``), any part marked ``attachment``, and
  any ``application/*`` part (signatures excepted), whatever its type.
- An attached message (``message/rfc822``, e.g. "forward as attachment") is a
  container, not a file: its named parts are attachments of this message (the
  district's files may arrive that way); the ``.eml`` itself is not listed
  (the raw message, archived whole, keeps it). Its headers never count as
  automatic-mail signs.
- Archives: ``attachments`` holds the archive itself (the intake archives
  every original) followed by its members, whose ``container`` is the
  archive's name. Only archives sent directly are opened: a zip inside a zip
  is a member sniffed ``zip``.
- Bounds: a message over ``MAX_MESSAGE_BYTES`` is read for its headers only;
  one over ``MAX_PARTS`` MIME parts keeps no attachments; both get a problem.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.feedparser
import email.parser
import email.policy
import email.utils
import html
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from email.message import Message
from urllib.parse import unquote_to_bytes, urlsplit

from parsers.archives import DEFAULT_LIMITS, Limits, expand, with_budget
from parsers.sniff import sniff
from parsers.types import Attachment, MailParts, Problem

MAX_MESSAGE_BYTES = 60 * 1024 * 1024
MAX_PARTS = 1000
MAX_ID = 500  # characters of a Message-ID kept
ARCHIVES = {"zip", "rar", "7z"}

UNREADABLE = "UNREADABLE_FILE"
CLOUD = "CLOUD_ATTACHMENT"
UNPARSEABLE = "邮件格式无法解析，附件未能读取，请重新发送"  # the last resort's reason
DEEP = "邮件结构异常（MIME 层级嵌套过深），附件未能读取，请将文件直接作为附件重新发送"
MAX_HEADER_BYTES = 1024 * 1024  # the header block read when the body is not
FEED_BYTES = 64 * 1024


class _TooManyParts(Exception):
    pass


def parse_mail(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> MailParts:
    """The parts of a raw RFC 5322 message that the intake needs. Never raises.

    When the body cannot be taken apart (MIME nested too deep for the parser, or any other
    failure), the header block is read alone, so the sender is still known, with one
    message-level problem naming what went wrong.
    """
    try:
        return _parse(raw, limits)
    except RecursionError:
        return _fallback(raw, DEEP)
    except Exception:  # noqa: BLE001 - the last line of defence: a message must never stop a poll
        return _fallback(raw, UNPARSEABLE)


def parts_from_headers(head: bytes, reason: str) -> MailParts:
    """A message known by its header block alone (e.g. fetched with BODY.PEEK[HEADER] because the whole
    message is over the size limit): sender, subject, ids and automatic-mail signs, no attachments, and one
    message-level ``UNREADABLE_FILE`` problem with ``reason``. Never raises."""
    return _fallback(head, reason)


def oversize_reason(size: int, limit: int) -> str:
    """What a district is told about a message too big to fetch."""
    mb = 1024 * 1024
    return f"邮件大小约{-(-size // mb)} MB，超过{limit // mb} MB的接收上限，附件未能读取，请压缩或分开发送"


def _fallback(raw: bytes, reason: str) -> MailParts:
    problem = (Problem(UNREADABLE, "", reason),)
    try:
        return _with_headers(_headers_only(raw), (), problem, ())
    except Exception:  # noqa: BLE001 - not even the header block reads
        return _empty(problem[0])


def _parse(raw: bytes, limits: Limits) -> MailParts:
    if len(raw) > MAX_MESSAGE_BYTES:
        reason = f"邮件超过{MAX_MESSAGE_BYTES // (1024 * 1024)} MB，未读取附件，请分开发送"
        return _with_headers(_headers_only(raw), (), (Problem(UNREADABLE, "", reason),), ())
    msg = _message(raw)
    try:
        parts = list(_walk(msg))
    except _TooManyParts:
        reason = f"邮件包含的部分超过{MAX_PARTS}个，未读取附件，请分开发送"
        return _with_headers(msg, (), (Problem(UNREADABLE, "", reason),), ())
    attachments, problems = _attachments(parts, limits)
    links = cloud_links(_bodies(parts))
    if links:
        problems.append(Problem(CLOUD, "", f"邮件正文含{len(links)}个“超大附件”下载链接，需工作人员手动下载"))
    return _with_headers(msg, tuple(attachments), tuple(problems), links)


def _message(raw: bytes) -> Message:
    """The message parsed (``compat32``), fed in slices: ``email.message_from_bytes`` would hold the whole
    message a second and a third time (as text, and in a StringIO at four bytes a character)."""
    parser = email.feedparser.BytesFeedParser(policy=email.policy.compat32)
    view = memoryview(raw)
    for start in range(0, len(raw), FEED_BYTES):
        parser.feed(view[start : start + FEED_BYTES].tobytes())
    return parser.close()


def _with_headers(
    msg: Message, attachments: tuple[Attachment, ...], problems: tuple[Problem, ...], links: tuple[str, ...]
) -> MailParts:
    name, addr = sender(msg)
    return MailParts(
        message_id=_message_id(msg),
        subject=decode_text(_unfold(raw_header(msg, "subject") or "")).strip(),
        from_addr=addr,
        from_name=name,
        date_header=_unfold(raw_header(msg, "date") or "").strip() or None,
        auto_reasons=auto_reasons(msg),
        attachments=attachments,
        problems=problems,
        cloud_links=links,
    )


def _empty(problem: Problem) -> MailParts:
    return MailParts(None, "", "", "", None, (), (), (problem,), ())


def _headers_only(raw: bytes) -> Message:
    """The header block alone (at most ``MAX_HEADER_BYTES``), for a message too big or too odd to take apart."""
    end = re.search(rb"\r?\n\r?\n", raw[:MAX_HEADER_BYTES])
    head = raw[: end.end()] if end else raw[:MAX_HEADER_BYTES]
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head, headersonly=True)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


# -- decoding header text ---------------------------------------------------------

# Chinese mailers label GBK (and GB18030) bytes "gb2312": read them all as GB18030, a
# superset, so no character is dropped. Big5 likewise carries HKSCS.
_ALIASES = {
    **dict.fromkeys(("gb2312", "gbk", "cp936", "x-gbk", "gb-2312-80", "gb2312-80", "euc-cn", "x-euc-cn",
                     "csgb2312", "chinese", "ms936", "windows-936", "gb18030", "hz-gb-2312"), "gb18030"),
    **dict.fromkeys(("big5", "big5-hkscs", "cp950", "x-big5"), "big5hkscs"),
}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def raw_header(msg: Message, name: str) -> str | None:
    """The first ``name`` header exactly as received (8-bit bytes as surrogates), or None."""
    for key, value in msg.raw_items():
        if key.strip().lower() == name:
            return str(value)
    return None


def codec_for(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, GB labels widened to GB18030; None if unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower().replace("_", "-")
    if label in _ALIASES:
        return _ALIASES[label]
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        return None
    return _ALIASES.get(name, name)


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Text from bytes: the declared charset, else UTF-8; GB18030 too when none (or ASCII/UTF-8) was declared.

    Nothing is ever dropped: undecodable bytes become U+FFFD.
    """
    codec = codec_for(label)
    guesses = ("utf-8", "gb18030") if codec in (None, "ascii", "utf-8") else ("utf-8",)
    for candidate in dict.fromkeys(c for c in (codec, *guesses) if c):
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(codec or "gb18030", "replace")


def decode_text(value: str) -> str:
    """A header value with its encoded-words decoded and any raw 8-bit bytes read as UTF-8/GB18030.

    Whitespace between adjacent encoded-words is dropped, and adjacent words in the
    same charset are joined before decoding, so a character split across words survives.
    """
    chunks: list[tuple[bytes, str | None]] = []
    pos, last_was_word = 0, False
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        if gap and not (last_was_word and gap.isspace()):
            chunks.append((_raw_bytes(gap), None))
        chunks.append((_word_bytes(m.group(2), m.group(3)), codec_for(m.group(1).split("*")[0]) or "?"))
        pos, last_was_word = m.end(), True
    if pos < len(value):
        chunks.append((_raw_bytes(value[pos:]), None))
    return "".join(decode_bytes(data, None if codec == "?" else codec) for data, codec in _joined(chunks))


def _joined(chunks: list[tuple[bytes, str | None]]) -> list[tuple[bytes, str | None]]:
    out: list[tuple[bytes, str | None]] = []
    for data, codec in chunks:
        if out and out[-1][1] == codec:
            out[-1] = (out[-1][0] + data, codec)
        else:
            out.append((data, codec))
    return out


def _raw_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _word_bytes(encoding: str, text: str) -> bytes:
    """The bytes of one encoded-word, forgiving bad base64 padding and stray characters."""
    if encoding in "qQ":
        return binascii.a2b_qp(text.encode("ascii", "replace"), header=True)
    clean = re.sub(r"[^A-Za-z0-9+/]", "", text)
    clean = clean[: len(clean) - len(clean) % 4 if len(clean) % 4 == 1 else len(clean)]
    return base64.b64decode(clean + "=" * (-len(clean) % 4))


# -- file names ----------------------------------------------------------------------

_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')


def part_filename(part: Message) -> str | None:
    """The part's file name as sent (decoded, not yet cleaned), or None when it has none."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = raw_header(part, header)
        name = _param(_params(_unfold(value)), param) if value else None
        if name and name.strip():
            return name
    return None


def _params(header: str) -> dict[str, str]:
    """A MIME header's parameters, keys lower-cased, quoted values unquoted (first wins)."""
    out: dict[str, str] = {}
    for m in _PARAM.finditer(header):
        out.setdefault(m.group(1).lower(), _unquote(m.group(2).strip()))
    return out


def _unquote(value: str) -> str:
    """A quoted-string's content; only ``\\"`` and ``\\\\`` are escapes (Windows paths stay intact)."""
    if not value.startswith('"'):
        return value
    inner = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
    return re.sub(r'\\(["\\])', r"\1", inner)


def _param(params: dict[str, str], key: str) -> str | None:
    """An RFC 2231 parameter (continued, encoded or plain), RFC 2047 words inside it decoded."""
    pieces = sorted(
        (int(m.group(1)), k) for k in params if (m := re.fullmatch(re.escape(key) + r"\*(\d+)\*?", k))
    )
    if pieces:
        return _rfc2231([(k.endswith("*"), params[k]) for _, k in pieces])
    if key + "*" in params:
        return _rfc2231([(True, params[key + "*"])])
    if key in params:
        return decode_text(params[key])
    return None


def _rfc2231(segments: list[tuple[bool, str]]) -> str:
    """Join RFC 2231 segments; the first encoded one may carry ``charset'language'``."""
    charset, data = None, b""
    for i, (encoded, value) in enumerate(segments):
        if encoded and i == 0 and value.count("'") >= 2:
            charset, _lang, value = value.split("'", 2)
        data += unquote_to_bytes(_raw_bytes(value)) if encoded else _raw_bytes(value)
    text = decode_bytes(data, charset)
    return decode_text(text) if "=?" in text else text


def display_name(name: str | None, number: int, sniffed: str, content_type: str) -> str:
    """A safe display name: no directories, no control characters, never empty (附件N.ext)."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs")).strip()
    if name.strip(". "):
        return name[-200:] if len(name) > 200 else name
    return f"附件{number}{_extension(sniffed, content_type)}"


def _extension(sniffed: str, content_type: str) -> str:
    """The fallback name's extension: the sniffed document type, else the content type's."""
    if sniffed and sniffed not in ("text", "image", "unknown"):
        return "." + sniffed
    guessed = mimetypes.guess_extension(content_type) if content_type else None
    return guessed or (".txt" if sniffed == "text" else "")


# -- sender and ids -----------------------------------------------------------


def sender(msg: Message) -> tuple[str, str]:
    """(display name, bare lower-cased address) of ``From``; the address is "" when there is none."""
    raw = _unfold(raw_header(msg, "from") or "")
    name, addr = email.utils.parseaddr(raw)
    addr = decode_text(addr).strip().lower()
    if "@" not in addr or any(c.isspace() for c in addr):
        addr = ""
    return decode_text(name).strip(), addr


def _message_id(msg: Message) -> str | None:
    """The Message-ID with every space and control character removed, also ones inside encoded-words
    (an encoded CR/LF must never reach a reply's In-Reply-To); None when nothing is left."""
    value = decode_text(re.sub(r"\s+", "", raw_header(msg, "message-id") or ""))
    value = "".join(c for c in value if not c.isspace() and unicodedata.category(c)[0] not in "CZ")
    return value[:MAX_ID] or None


# -- automatic mail -----------------------------------------------------------

# Spec section 2, exactly: these and nothing else (List-Unsubscribe, X-Auto-Response-Suppress and the
# other List-* headers are added to people's mail by gateways and clients; they are no sign).
_PRESENT = {"x-autoreply", "x-autorespond", "list-id"}
_PRECEDENCE = {"bulk", "junk", "list"}
_ROBOTS = {"mailer-daemon", "postmaster"}


def auto_reasons(msg: Message) -> tuple[str, ...]:
    """Why this message looks automatic (spec section 2); empty when written by a person.

    Also a ``multipart/report`` (a delivery or read report, RFC 6522): a bounce is automatic mail
    whoever sends it (spec section 5), even from a server that sets none of the headers.
    """
    reasons = [r for k, v in msg.raw_items() if (r := _header_reason(k, v))]
    local = sender(msg)[1].partition("@")[0]
    if local in _ROBOTS:
        reasons.append(f"sender is {local.upper() if local == 'mailer-daemon' else local}")
    if content_type(msg) == "multipart/report":
        report = _header_params(msg, "content-type").get("report-type", "report")
        reasons.append(f"multipart/report ({report})")
    return tuple(dict.fromkeys(reasons))


def _header_reason(key: str, raw_value: str) -> str | None:
    """The reason one header field gives, or None. Cheap for the fields that are no sign."""
    name = key.strip().lower()
    if name not in _PRESENT and name not in ("auto-submitted", "precedence", "return-path"):
        return None
    value = _unfold(raw_value).strip()
    low = value.lower()
    shown = f"{key.strip()}: {decode_text(value)[:80]}"
    if name == "auto-submitted":
        return shown if low.split("(")[0].strip() not in ("no", "") else None
    if name == "precedence":
        return shown if low.split("(")[0].strip() in _PRECEDENCE else None
    if name == "return-path":
        return "Return-Path: <>" if re.fullmatch(r"<\s*>", value) else None
    return shown


# -- walking the MIME tree ------------------------------------------------------


def _walk(msg: Message) -> Iterator[Message]:
    """Every part, depth first, attached messages included; at most ``MAX_PARTS``."""
    stack, seen = [msg], 0
    while stack:
        part = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            raise _TooManyParts
        yield part
        stack.extend(reversed(_children(part)))


def _children(part: Message) -> list[Message]:
    """Sub-parts; an attached message sent base64 or quoted-printable (against RFC 2046) is decoded first."""
    if not part.is_multipart():  # get_payload() on a leaf may decode with a broken charset
        return []
    children = [p for p in part.get_payload() if isinstance(p, Message)]
    cte = _unfold(raw_header(part, "content-transfer-encoding") or "").strip().lower()
    encoded = cte in ("base64", "quoted-printable")
    if content_type(part) == "message/rfc822" and encoded and len(children) == 1:
        return [_decoded_message(children[0], cte)]
    return children


def _decoded_message(wrapped: Message, cte: str) -> Message:
    """The message inside an encoded message/rfc822 part; the part as parsed when it will not decode."""
    try:
        encoded = wrapped.as_bytes() if wrapped.keys() else _raw_bytes(str(wrapped.get_payload()))
        data = base64.b64decode(encoded) if cte == "base64" else binascii.a2b_qp(encoded)
    except (ValueError, TypeError, LookupError):  # binascii.Error and UnicodeError are ValueErrors
        return wrapped
    return _message(data)


def content_type(part: Message) -> str:
    """The part's lower-cased ``type/subtype`` from the raw header; ``text/plain`` when missing or bad."""
    value = _unfold(raw_header(part, "content-type") or "").split(";")[0].strip().lower()
    return value if re.fullmatch(r"[\w.+-]+/[\w.+-]+", value) else "text/plain"


def _header_params(part: Message, name: str) -> dict[str, str]:
    return _params(_unfold(raw_header(part, name) or ""))


def _is_attachment(part: Message) -> bool:
    if part.is_multipart():
        return False
    disposition = _unfold(raw_header(part, "content-disposition") or "").split(";")[0].strip().lower()
    if part_filename(part) is not None or disposition == "attachment":
        return True
    ctype = content_type(part)
    return ctype.startswith("application/") and not ctype.endswith("signature")


def _attachments(parts: list[Message], limits: Limits) -> tuple[list[Attachment], list[Problem]]:
    """Each file part, then the members of the archives among them, within one size budget."""
    out: list[Attachment] = []
    problems: list[Problem] = []
    spent = 0
    for number, part in enumerate(filter(_is_attachment, parts), start=1):
        att = _attachment(part, number)
        out.append(att)
        if att.sniffed in ARCHIVES:
            members, found = expand(att, with_budget(limits, spent))
            spent += sum(len(m.data) for m in members)
            out.extend(replace(m, filename=display_name(m.filename, 1, m.sniffed, "")) for m in members)
            problems.extend(replace(p, filename=display_name(p.filename, 1, "", "")) for p in found)
    return out, problems


def _attachment(part: Message, number: int) -> Attachment:
    data, name, ctype = _payload(part), part_filename(part), content_type(part)
    sniffed = sniff(data, name or "")
    return Attachment(display_name(name, number, sniffed, ctype), data, ctype, sniffed)


def _payload(part: Message) -> bytes:
    if part.is_multipart():
        return b""
    payload = part.get_payload()
    cte = _unfold(raw_header(part, "content-transfer-encoding") or "").strip().lower()
    if cte == "base64" and isinstance(payload, str) and payload.isascii():
        try:  # straight from the text: no ASCII copy of the whole part first (as get_payload(decode=True) makes)
            return binascii.a2b_base64(payload)
        except (binascii.Error, ValueError):
            pass  # the email package's forgiving decoder below
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


# -- bodies and cloud attachments -------------------------------------------------


def _bodies(parts: list[Message]) -> list[str]:
    """The text and HTML bodies (parts that are not attachments), decoded."""
    return [
        decode_bytes(_payload(p), _header_params(p, "content-type").get("charset"))
        for p in parts
        if content_type(p) in ("text/plain", "text/html") and not _is_attachment(p)
    ]


_URL = re.compile(r"https?://[^\s\"'<>()\[\]{}]+", re.IGNORECASE)

# (host, path prefix) of NetEase and Tencent "超大附件" download pages. Conservative:
# a plain link to 163.com or qq.com is not a cloud attachment.
_CLOUD_PAGES = (
    ("mail.163.com", "/large-attachment-download"),
    ("mail.126.com", "/large-attachment-download"),
    ("mail.yeah.net", "/large-attachment-download"),
    ("dashi.163.com", "/html/cloud-attachment-download"),
    ("dashi.163.com", "/html/cloud_attachment"),
    ("fs.163.com", "/fs/display"),
    ("fs.mail.163.com", "/"),
    ("fs.qiye.163.com", "/fs/display"),
    ("mail.qq.com", "/cgi-bin/ftnexs_download"),
    ("exmail.qq.com", "/cgi-bin/ftnexs_download"),
    ("wx.mail.qq.com", "/ftn/download"),
    ("iwx.mail.qq.com", "/ftn/download"),
)


def cloud_links(bodies: list[str]) -> tuple[str, ...]:
    """NetEase/QQ "超大附件" download links found in the bodies, in order, each once."""
    urls = (u.rstrip(".,;，。；") for body in bodies for u in _URL.findall(html.unescape(body)))
    return tuple(dict.fromkeys(u for u in urls if is_cloud_link(u)))


def is_cloud_link(url: str) -> bool:
    """Whether ``url`` is a NetEase or QQ large-attachment download page."""
    try:
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), parts.path.lower()
    except ValueError:
        return False
    if "x-netease-huge-attachment" in parts.query.lower():
        return True
    return any(host == h and path.startswith(p) for h, p in _CLOUD_PAGES)
