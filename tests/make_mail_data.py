"""Build tests/data/mail/*.eml and the expected result beside each (``<name>.expected.json``).

Run from the checkout: ``.venv/bin/python tests/make_mail_data.py``. The output is
deterministic (fixed boundaries, dates and zip timestamps) and committed; the
tests read it and never regenerate it. Expectations are written here by hand,
never computed by the code under test.

How each message is made: headers and MIME structure are written as raw bytes
(the stdlib ``email`` package would re-encode file names its own way), so each
file carries exactly the encoding it is named for:

- ``rfc2047_*``: names as RFC 2047 encoded-words. ``gb2312_label_gbk_bytes``
  labels GBK bytes (镕, 䶮-free) ``GB2312`` as Chinese mailers do;
  ``gbk_label_gb18030_4byte`` carries 䶮 and 𠀀 (four-byte GB18030) under a
  ``GBK`` label; ``utf8_b``/``utf8_q`` are UTF-8 in B and Q encoding;
  ``split_folded`` cuts the UTF-8 bytes mid-character over three encoded-words
  on folded lines; ``gb2312_q`` is quoted-printable GBK.
- ``rfc2231_*``: ``filename*0*=``/``filename*1*=`` continuations, percent-encoded
  GBK or UTF-8 (the UTF-8 one mixes a plain ``filename*1`` segment).
- ``raw8bit_*``: the name's GBK or UTF-8 bytes written straight into the header.
- ``octet_stream_name_only``: ``application/octet-stream`` with the name only in
  ``Content-Type`` (no Content-Disposition).
- ``zip_*``: zips built with ``zipfile``. GBK member names without the UTF-8
  flag are written under ASCII placeholders of the same length, then the bytes
  are swapped in (zipfile would set the flag). ``zip_too_many_members`` holds
  501 stored one-byte files (ratio 1:1, a few KB): only the member limit trips.
  ``zip_too_big`` declares three stored 70 MB members (ratio 1:1, 210 MB in all)
  whose data is not there: only the size limit trips, and reading any member
  would fail as corrupt, so the expected problem proves nothing was read.
  ``zip_ratio`` holds 2 MB of zeros deflated (about 1000:1): only the ratio
  trips. ``zip_encrypted`` sets the encryption flag on one stored member (what
  every ZipCrypto/AES archive declares; the intake judges by the flag and never
  tries a password). ``zip_corrupt`` is a zip cut in half. ``zip_nested`` holds
  a zip, which stays unopened.
- ``sevenzip`` is written with py7zr; ``rar_stored`` is a hand-made RAR 4
  archive with one stored member (readable without an unrar tool).
- ``cloud_*``: 163 and QQ "超大附件" bodies, each also linking plain 163/QQ pages.
- ``auto_*``: one automatic-mail sign each; ``auto_submitted_no`` is a person.
- ``path_traversal``, ``control_chars``, ``nameless_attachment``: display-name cleaning.
- ``forwarded_message``: a message/rfc822 part whose PDF is an attachment.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import tempfile
import urllib.parse
import zipfile
import zlib
from pathlib import Path

OUT = Path(__file__).parent / "data" / "mail"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DATE = (2024, 11, 5, 10, 0, 0)
SENDER = "ylq-ip@example.cn"

# -- MIME helpers --------------------------------------------------------------------


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def head(subject: bytes = b"test", sender: bytes = SENDER.encode(), extra: bytes = b"",
         ctype: bytes = b'multipart/mixed; boundary="BOUND"') -> bytes:
    return (b"From: " + sender + b"\r\nTo: xzip2019@163.com\r\nSubject: " + subject
            + b"\r\nDate: Tue, 05 Nov 2024 10:00:00 +0800\r\nMessage-ID: <case@example.cn>\r\n"
            + extra + b"MIME-Version: 1.0\r\nContent-Type: " + ctype + b"\r\n\r\n")


def part(headers: bytes, body: bytes) -> bytes:
    return b"--BOUND\r\n" + headers + b"\r\n" + body + b"\r\n"


def text_part(text: str, subtype: str = "plain") -> bytes:
    headers = f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
    return part(headers.encode(), b64(text.encode()))


def file_part(disposition: bytes | None, ctype: bytes = b"application/pdf", data: bytes = PDF) -> bytes:
    headers = b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\n"
    if disposition is not None:
        headers += b"Content-Disposition: " + disposition + b"\r\n"
    return part(headers, b64(data))


def message(parts: list[bytes], **kw: bytes) -> bytes:
    return head(**kw) + b"This is a multi-part message.\r\n\r\n" + b"".join(parts) + b"--BOUND--\r\n"


def with_file(disposition: bytes, ctype: bytes = b"application/pdf", data: bytes = PDF, **kw: bytes) -> bytes:
    return message([text_part("附件请查收。"), file_part(disposition, ctype, data)], **kw)


def ew(text: str, charset: str, enc: str = "B", codec: str | None = None) -> bytes:
    """One RFC 2047 encoded-word of ``text`` encoded with ``codec`` under the label ``charset``."""
    data = text.encode(codec or charset)
    if enc == "B":
        body = base64.b64encode(data)
    else:
        body = b"".join(bytes([c]) if c < 128 and chr(c).isalnum() else b"=%02X" % c for c in data)
    return b"=?" + charset.encode() + b"?" + enc.encode() + b"?" + body + b"?="


def pct(data: bytes) -> bytes:
    return urllib.parse.quote_from_bytes(data, safe="").encode()


# -- archives ------------------------------------------------------------------------


def zip_of(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, DATE), data, compress_type=method)
    return buf.getvalue()


def zip_gbk_names(members: list[tuple[str, bytes]]) -> bytes:
    """A zip whose names are GBK bytes without the UTF-8 flag, as Chinese Windows tools write."""
    raw = [name.encode("gbk") for name, _ in members]
    holders = [(chr(ord("A") + i) * len(r)).encode() for i, r in enumerate(raw)]
    data = zip_of([(h.decode(), d) for h, (_, d) in zip(holders, members, strict=True)])
    for h, r in zip(holders, raw, strict=True):
        data = data.replace(h, r)
    return data


def zip_declaring(sizes: list[int]) -> bytes:
    """Stored members whose directory declares ``sizes`` (compressed = uncompressed); the data is absent."""
    data = bytearray(zip_of([(f"part{i}.pdf", b"x") for i in range(len(sizes))], zipfile.ZIP_STORED))
    for offset, size in zip(_header_offsets(data, b"PK\x01\x02"), sizes, strict=True):
        struct.pack_into("<II", data, offset + 20, size, size)
    for offset, size in zip(_header_offsets(data, b"PK\x03\x04"), sizes, strict=True):
        struct.pack_into("<II", data, offset + 18, size, size)
    return bytes(data)


def zip_encrypted_flag(members: list[tuple[str, bytes]], encrypted: str) -> bytes:
    """Stored members; ``encrypted`` gets general-purpose flag bit 0 in both of its headers."""
    data = bytearray(zip_of(members, zipfile.ZIP_STORED))
    index = [n for n, _ in members].index(encrypted)
    for sig, flag_at in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):
        offset = _header_offsets(data, sig)[index]
        data[offset + flag_at] |= 1
    return bytes(data)


def _header_offsets(data: bytes | bytearray, sig: bytes) -> list[int]:
    out, pos = [], data.find(sig)
    while pos >= 0:
        out.append(pos)
        pos = data.find(sig, pos + 1)
    return out


def minimal_xlsx() -> bytes:
    return zip_of([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<workbook/>")])


def seven_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A 7z of ``members``, written from files with a fixed mtime so the bytes are reproducible."""
    import py7zr

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, py7zr.SevenZipFile(buf, "w") as sz:
        for name, data in members:
            path = Path(tmp) / name
            path.write_bytes(data)
            os.utime(path, (1730772000, 1730772000))
            sz.write(path, name)
    return buf.getvalue()


def rar4_stored(name: bytes, data: bytes, method: int = 0x30) -> bytes:
    """A RAR 4 archive with one member, block by block: stored (0x30), or ``data`` labelled compressed."""
    def block(htype: int, flags: int, body: bytes, add: bytes = b"") -> bytes:
        header = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header + add

    file_body = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), 0x58A50000, 20, method,
                            len(name), 0x20) + name
    return (b"Rar!\x1a\x07\x00" + block(0x73, 0, b"\0" * 6) + block(0x74, 0x8000, file_body, data)
            + bytes.fromhex("c43d7b00400700"))


# -- the cases -------------------------------------------------------------------------


def att(filename: str, sniffed: str, container: str | None = None) -> dict:
    return {"filename": filename, "sniffed": sniffed, "container": container}


def expect(attachments: list[dict] | None = None, problems: list[str] | None = None, auto: bool = False,
           cloud_links: list[str] | None = None, subject: str = "test", from_addr: str = SENDER) -> dict:
    return {"subject": subject, "from_addr": from_addr, "attachments": attachments or [],
            "problems": problems or [], "auto": auto, "cloud_links": cloud_links or []}


def encoding_cases() -> dict[str, tuple[bytes, dict]]:
    rong = "徐州镕鑫科技有限公司申报书.pdf"  # 镕 is GBK, not GB2312
    rare = "䶮𠀀材料申报书.pdf"  # 䶮 and 𠀀 need GB18030 (𠀀 is four bytes)
    summary = "2024年徐州市高价值专利培育计划项目申报汇总表（云龙区）.xlsx"
    utf8 = summary.encode()
    cut = [utf8[:10], utf8[10:31], utf8[31:]]  # cuts fall inside characters
    split = b"\r\n ".join(b"=?UTF-8?B?" + base64.b64encode(c) + b"?=" for c in cut)
    gbk = "云龙区申报书（第一批）.pdf".encode("gbk")
    utf8_name = "鼓楼区申报汇总表.xlsx".encode()
    return {
        "rfc2047_gb2312_label_gbk_bytes": (
            with_file(b'attachment; filename="' + ew(rong, "GB2312", codec="gbk") + b'"',
                      subject=ew("关于报送申报材料的函", "GB2312", codec="gbk"),
                      sender=ew("云龙区知识产权局", "GB2312", codec="gbk") + b" <YLQ-IP@Example.CN>"),
            expect([att(rong, "pdf")], subject="关于报送申报材料的函")),
        "rfc2047_gbk_label_gb18030_4byte": (
            with_file(b"attachment;\r\n filename=\"" + ew(rare, "GBK", codec="gb18030") + b'"'),
            expect([att(rare, "pdf")])),
        "rfc2047_gb2312_q": (
            with_file(b'attachment; filename="' + ew(rong, "gb2312", "Q", codec="gbk") + b'"'),
            expect([att(rong, "pdf")])),
        "rfc2047_utf8_b": (
            with_file(b'attachment; filename="' + ew(summary, "UTF-8") + b'"',
                      ctype=b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      data=minimal_xlsx(), subject=ew("云龙区申报材料", "UTF-8")),
            expect([att(summary, "xlsx")], subject="云龙区申报材料")),
        "rfc2047_utf8_q": (
            with_file(b'attachment; filename="' + ew(rong, "utf-8", "Q") + b'"',
                      subject=ew("回复：申报", "utf-8", "Q")),
            expect([att(rong, "pdf")], subject="回复：申报")),
        "rfc2047_split_folded": (
            with_file(b"attachment;\r\n filename=\"" + split + b'"',
                      ctype=b"application/octet-stream", data=minimal_xlsx()),
            expect([att(summary, "xlsx")])),
        "rfc2231_gbk_continuations": (
            with_file(b"attachment;\r\n filename*0*=gbk''" + pct(gbk[:9]) + b";\r\n filename*1*="
                      + pct(gbk[9:])),
            expect([att("云龙区申报书（第一批）.pdf", "pdf")])),
        "rfc2231_utf8_continuations": (
            with_file(b"attachment;\r\n filename*0*=UTF-8'zh-cn'" + pct(utf8_name[:-5]) + b";\r\n filename*1="
                      + utf8_name[-5:], data=minimal_xlsx()),
            expect([att("鼓楼区申报汇总表.xlsx", "xlsx")])),
        "raw8bit_gbk": (
            with_file(b'attachment; filename="' + gbk + b'"', subject="云龙区申报".encode("gbk")),
            expect([att("云龙区申报书（第一批）.pdf", "pdf")], subject="云龙区申报")),
        "raw8bit_utf8": (
            with_file(b'attachment; filename="' + utf8_name + b'"', data=minimal_xlsx(),
                      sender="鼓楼区 <GLQ@example.cn>".encode()),
            expect([att("鼓楼区申报汇总表.xlsx", "xlsx")], from_addr="glq@example.cn")),
        "octet_stream_name_only": (
            message([file_part(None, b'application/octet-stream;\r\n name="' + ew(rong, "gb2312", codec="gbk")
                               + b'"')]),
            expect([att(rong, "pdf")])),
    }


def archive_cases() -> dict[str, tuple[bytes, dict]]:
    zipped = "云龙区申报材料.zip"

    def with_zip(data: bytes, name: str = zipped) -> bytes:
        return with_file(b'attachment; filename="' + ew(name, "UTF-8") + b'"', b"application/zip", data)

    members = [("申报书-徐州某某科技有限公司.pdf", PDF), ("申报汇总表.xlsx", minimal_xlsx())]
    return {
        "zip_gbk_names": (
            with_zip(zip_gbk_names(members)),
            expect([att(zipped, "zip"), att(members[0][0], "pdf", zipped),
                    att(members[1][0], "xlsx", zipped)])),
        "zip_utf8_flag": (
            with_zip(zip_of([("材料/" + members[0][0], PDF), ("材料/", b"")])),
            expect([att(zipped, "zip"), att(members[0][0], "pdf", zipped)])),
        "zip_too_many_members": (
            with_zip(zip_of([(f"{i:03}.txt", b"x") for i in range(501)], zipfile.ZIP_STORED)),
            expect([att(zipped, "zip")], ["UNREADABLE_FILE"])),
        "zip_too_big": (
            with_zip(zip_declaring([70 * 1024 * 1024] * 3)),
            expect([att(zipped, "zip")], ["UNREADABLE_FILE"])),
        "zip_ratio": (
            with_zip(zip_of([("zeros.pdf", b"\0" * (2 * 1024 * 1024))])),
            expect([att(zipped, "zip")], ["UNREADABLE_FILE"])),
        "zip_nested": (
            with_zip(zip_of([("inner.zip", zip_of([("a.pdf", PDF)])), ("申报书.pdf", PDF)])),
            expect([att(zipped, "zip"), att("inner.zip", "zip", zipped), att("申报书.pdf", "pdf", zipped)])),
        "zip_encrypted": (
            with_zip(zip_encrypted_flag([("密.pdf", PDF), ("公开.pdf", PDF)], "密.pdf")),
            expect([att(zipped, "zip"), att("公开.pdf", "pdf", zipped)], ["UNREADABLE_FILE"])),
        "zip_corrupt": (
            with_zip(zip_of(members)[:200]),
            expect([att(zipped, "zip")], ["UNREADABLE_FILE"])),
        "sevenzip": (
            with_zip(seven_zip(members), "申报材料.7z"),
            expect([att("申报材料.7z", "7z"), att(members[0][0], "pdf", "申报材料.7z"),
                    att(members[1][0], "xlsx", "申报材料.7z")])),
        "rar_stored": (
            with_zip(rar4_stored(b"form.pdf", PDF), "申报材料.rar"),
            expect([att("申报材料.rar", "rar"), att("form.pdf", "pdf", "申报材料.rar")])),
    }


def body_cases() -> dict[str, tuple[bytes, dict]]:
    link163 = ("https://mail.163.com/large-attachment-download/index.html"
               "?p=X-NETEASE-HUGE-ATTACHMENT&file=djAyZG1m&title=申报材料.zip")
    html163 = (f'<div>从网易邮箱发来的超大附件</div><a href="{link163.replace("&", "&amp;")}">'
               "申报材料.zip</a>"
               '<a href="https://mail.163.com/">网易邮箱</a> <a href="https://www.163.com/news">新闻</a>')
    qq_old = "https://mail.qq.com/cgi-bin/ftnExs_download?k=0d6162347c50eb99&t=exs_ftn_download&code=3ab49ebe"
    qq_new = "https://wx.mail.qq.com/ftn/download?func=3&k=abc123&key=def456"
    text_qq = f"超大附件：\n申报材料.zip {qq_old}\n汇总表.xlsx {qq_new}。\nQQ邮箱 https://mail.qq.com/ 首页\n"
    forwarded = with_file(b'attachment; filename="' + ew("申报书.pdf", "GBK") + b'"',
                          sender=b"company@example.com")
    return {
        "no_attachments": (message([text_part("材料稍后补发。")]), expect()),
        "cloud_163": (
            message([text_part(html163, "html")]),
            expect([], ["CLOUD_ATTACHMENT"], cloud_links=[link163])),
        "cloud_qq": (
            message([text_part(text_qq)]),
            expect([], ["CLOUD_ATTACHMENT"], cloud_links=[qq_old, qq_new])),
        "forwarded_message": (
            message([text_part("转发"), part(b'Content-Type: message/rfc822; name="fwd.eml"\r\n'
                                              b'Content-Disposition: attachment; filename="fwd.eml"\r\n',
                                              forwarded)]),
            expect([att("申报书.pdf", "pdf")])),
        "path_traversal": (
            message([file_part(b'attachment; filename="../../etc/passwd"', b"application/octet-stream",
                               b"root:x:0:0\n"),
                     file_part(b'attachment; filename="C:\\\\x\\\\y.pdf"'),
                     file_part(b'attachment; filename="..\\..\\z.pdf"')]),
            expect([att("passwd", "text"), att("y.pdf", "pdf"), att("z.pdf", "pdf")])),
        "control_chars": (
            message([file_part(b'attachment; filename="' + ew("申报\x07书\u202e.pdf", "UTF-8") + b'"'),
                     file_part(b'attachment; filename="' + ew("../..", "UTF-8") + b'"')]),
            expect([att("申报书.pdf", "pdf"), att("附件2.pdf", "pdf")])),
        "nameless_attachment": (
            message([text_part("见附件"),
                     file_part(b"attachment", b"application/octet-stream", minimal_xlsx())]),
            expect([att("附件1.xlsx", "xlsx")])),
    }


def auto_cases() -> dict[str, tuple[bytes, dict]]:
    body = [text_part("This is an automatic reply.")]
    signs = {
        "auto_submitted": b"Auto-Submitted: auto-replied\r\n",
        "precedence_bulk": b"Precedence: bulk\r\n",
        "precedence_junk": b"Precedence: junk\r\n",
        "precedence_list": b"Precedence: list\r\n",
        "x_autoreply": b"X-Autoreply: yes\r\n",
        "x_autorespond": b"X-Autorespond: on vacation\r\n",
        "list_id": b"List-Id: <news.example.cn>\r\n",
        "return_path_empty": b"Return-Path: <>\r\n",
    }
    cases = {f"auto_{k}" if not k.startswith("auto_") else k: (message(body, extra=v), expect(auto=True))
             for k, v in signs.items()}
    cases["auto_mailer_daemon"] = (message(body, sender=b"Mail Delivery System <MAILER-DAEMON@163.com>"),
                                   expect(auto=True, from_addr="mailer-daemon@163.com"))
    cases["auto_postmaster"] = (message(body, sender=b"<Postmaster@example.cn>"),
                                expect(auto=True, from_addr="postmaster@example.cn"))
    status = part(b"Content-Type: message/delivery-status\r\n", b"Reporting-MTA: dns; mx.example.cn\r\n")
    report = (head(ctype=b'multipart/report; report-type=delivery-status; boundary="BOUND"')
              + text_part("Delivery failed") + status + b"--BOUND--\r\n")
    cases["auto_multipart_report"] = (report, expect(auto=True))
    person = b"Auto-Submitted: no\r\nPrecedence: normal\r\n"
    cases["auto_submitted_no"] = (message(body, extra=person), expect())
    # Added to people's mail by gateways and Outlook: no sign of automatic mail (spec section 2 lists them not).
    cases["auto_list_unsubscribe"] = (message(body, extra=b"List-Unsubscribe: <mailto:leave@example.cn>\r\n"),
                                      expect())
    cases["auto_x_auto_response_suppress"] = (message(body, extra=b"X-Auto-Response-Suppress: All\r\n"), expect())
    return cases


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    cases = {**encoding_cases(), **archive_cases(), **body_cases(), **auto_cases()}
    for name, (raw, expected) in cases.items():
        (OUT / f"{name}.eml").write_bytes(raw)
        (OUT / f"{name}.expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n",
                                                   encoding="utf-8")
    print(f"wrote {len(cases)} messages to {OUT}")


if __name__ == "__main__":
    main()
