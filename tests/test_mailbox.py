"""intake.mailbox against Dovecot (directly and through a fault relay): limits, never deleting, FETCH parsing,
byte-bounded batches, reply search, folders."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from servers import reorder_fetch
from support import make_config, on_time, plain_mail

import intake.mailbox as mailbox_module
from intake.compose import compose
from intake.errors import MailboxError
from intake.fetchparse import FetchParseError, fetch_items
from intake.mailbox import Mailbox, MessageMeta, fetch_batches, uid_ranges
from intake.sentcopies import ReplyKeys, SentCopies, text
from intake.store import Store
from intake.worker import PollSummary, Worker


def expand(parts: list[str]) -> list[int]:
    out: list[int] = []
    for part in parts:
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def test_uid_ranges_compress_runs() -> None:
    assert uid_ranges([7, 1, 2, 3, 9, 10, 3]) == ["1:3", "7", "9:10"]
    assert uid_ranges([]) == []


@given(st.lists(st.integers(min_value=1, max_value=10_000), max_size=300))
def test_uid_ranges_cover_exactly_the_uids(uids: list[int]) -> None:
    parts = uid_ranges(uids)
    assert expand(parts) == sorted(set(uids))
    assert len(parts) <= len(set(uids))


def test_flagging_twenty_thousand_scattered_uids_stays_within_dovecots_line_limit(imap_account) -> None:
    """A first poll of a full mailbox flags thousands of UIDs; one UID STORE for all of them is over
    Dovecot's 64 KiB line ("Too long argument"). Batches of ranges flag them all, then move them."""
    imap_account.append_many((plain_mail(i), on_time(2, 9, i)) for i in range(3))
    real = imap_account.uids()
    scattered = [*real, *range(101, 40_101, 2)]  # 20,000 UIDs no run can merge, most not in the folder
    with Mailbox(imap_account.mailbox_config()) as mb:
        mb.mark_processed(scattered, "")
    flags = imap_account.server.fetch_flags(imap_account.user)
    assert all("\\Seen" in flags[u] for u in real)
    with Mailbox(imap_account.mailbox_config()) as mb:
        mb.mark_processed(scattered, "已处理")
    assert imap_account.uids() == [] and len(imap_account.uids("已处理")) == 3


# -- helpers ----------------------------------------------------------------


def poll_once(account, tmp_path: Path, **mailbox) -> PollSummary:
    """One worker poll of ``account`` (no SMTP needed: unknown senders get no reply)."""
    cfg = make_config(tmp_path / "var", imap=account.mailbox_settings(**mailbox),
                      smtp={"host": "127.0.0.1", "port": 9})
    with Store(cfg.paths.data_dir / "intake.db") as store:
        return Worker(cfg, store).poll()


def recorded_uids(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "var" / "intake.db") as db:
        return [uid for (uid,) in db.execute("SELECT uid FROM messages ORDER BY uid")]


def all_subjects(account, *folders: str) -> list[str]:
    """Subjects of every message in ``folders`` (how a test sees that a message still exists)."""
    out = []
    with account.server.mailbox(account.user) as box:
        for folder in folders:
            if folder == "INBOX" or box.folder.exists(folder):
                box.folder.set(folder, readonly=True)
                out += [m.subject for m in box.fetch(mark_seen=False, headers_only=True)]
    return sorted(out)


# -- never deleted -----------------------------------------------------------


@pytest.mark.parametrize("processed_folder", ["", "已处理"], ids=["flag-only", "move"])
def test_mail_another_client_marked_deleted_survives_a_poll(imap_account, tmp_path: Path,
                                                            processed_folder: str) -> None:
    """A message another client flagged \\Deleted is still there after a poll: no EXPUNGE is ever sent."""
    imap_account.append(plain_mail(1), on_time())
    imap_account.append(plain_mail(2), on_time(), flags=["\\Deleted"])
    summary = poll_once(imap_account, tmp_path, processed_folder=processed_folder)
    assert summary.new == 2
    assert all_subjects(imap_account, "INBOX", "已处理") == ["测试邮件 1", "测试邮件 2"]
    flags = imap_account.fetch_flags(processed_folder or "INBOX")
    assert {"\\Seen", "\\Deleted"} <= set.union(*flags.values())


def test_without_move_uidplus_expunges_only_our_copied_uids(relayed_imap) -> None:
    """Without MOVE but with UIDPLUS, ours are copied, flagged and removed by ``UID EXPUNGE <ours>``; a
    message another client flagged \\Deleted stays, and no plain EXPUNGE is sent."""
    relayed_imap.append(plain_mail(1), on_time())
    relayed_imap.append(plain_mail(2), on_time(), flags=["\\Deleted"])
    relayed_imap.relay.hide_capabilities("MOVE")
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        assert "MOVE" not in mb.capabilities and "UIDPLUS" in mb.capabilities
        mb.mark_processed([1], "已处理")
    assert all_subjects(relayed_imap, "INBOX") == ["测试邮件 2"]
    assert all_subjects(relayed_imap, "已处理") == ["测试邮件 1"]
    assert relayed_imap.relay.sent("UID EXPUNGE") == ["UID EXPUNGE 1"]
    assert not relayed_imap.relay.sent("EXPUNGE") and not relayed_imap.relay.sent("UID MOVE")


def test_without_move_or_uidplus_mail_stays_flagged_in_place(relayed_imap, caplog) -> None:
    """With neither MOVE nor UIDPLUS, processed mail is flagged \\Seen and left where it is (said once)."""
    relayed_imap.append_many([(plain_mail(1), on_time()), (plain_mail(2), on_time())])
    relayed_imap.relay.hide_capabilities("MOVE", "UIDPLUS")
    mailbox_module._warned_no_move.clear()
    with caplog.at_level(logging.WARNING), Mailbox(relayed_imap.mailbox_config()) as mb:
        mb.mark_processed([1], "已处理")
        mb.mark_processed([2], "已处理")
    assert relayed_imap.uids() == [1, 2] and relayed_imap.uids("已处理") == []
    assert all("\\Seen" in f for f in relayed_imap.fetch_flags().values())
    assert caplog.text.count("neither MOVE nor UIDPLUS") == 1
    assert not [c for c in relayed_imap.relay.commands if "EXPUNGE" in c or "COPY" in c or "MOVE" in c]


def test_flag_and_move_are_single_uid_commands_without_expunge(relayed_imap) -> None:
    """On Dovecot (MOVE offered) marking sends ``UID STORE +FLAGS.SILENT`` and ``UID MOVE`` only."""
    relayed_imap.append_many([(plain_mail(i), on_time()) for i in range(3)])
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        mb.mark_processed([1, 2, 3], "已处理")
    sent = [c for c in relayed_imap.relay.commands if c.startswith("UID")]
    assert sent == ["UID STORE 1:3 +FLAGS.SILENT (\\Seen)", 'UID MOVE 1:3 "&XfJZBHQG-"']


# -- FETCH parsing -----------------------------------------------------------

ITEMS = {"UID": b"UID 7", "INTERNALDATE": b'INTERNALDATE " 8-Nov-2024 23:59:59 +0800"',
         "RFC822.SIZE": b"RFC822.SIZE 1234"}


@pytest.mark.parametrize("order", list(itertools.permutations(ITEMS)), ids="-".join)
def test_fetch_items_parsed_in_any_order(order: tuple[str, ...]) -> None:
    """Each of the 6 orders of UID/INTERNALDATE/RFC822.SIZE gives the same items."""
    line = b"3 (" + b" ".join(ITEMS[name] for name in order) + b")"
    [response] = fetch_items([line])
    assert response.seq == 3 and response.uid == 7
    assert response.items == {"UID": 7, "INTERNALDATE": b" 8-Nov-2024 23:59:59 +0800", "RFC822.SIZE": 1234}


def test_fetch_items_with_literals_flags_and_split_responses() -> None:
    """Literals (UID after the body too), FLAGS lists, NIL, escaped quotes and a message's items spread
    over two responses are all read; unsolicited FLAGS-only responses carry no UID."""
    data = [
        (b"1 (BODY[] {5}", b"he)lo"), b" UID 10 FLAGS (\\Seen $Junk))",
        b'2 (UID 11 RFC822.SIZE 9)', b'2 (INTERNALDATE "01-Jan-2025 00:00:00 +0000" X-NOTE "a \\"q\\"" X NIL)',
        (b"3 (UID 12 BODY[HEADER.FIELDS (MESSAGE-ID)] {21}", b"Message-ID: <a@b>\r\n\r\n"), b")",
        b"4 (FLAGS (\\Deleted))", None,
    ]
    by_seq = {r.seq: r for r in fetch_items(data)}
    assert by_seq[1].uid == 10 and by_seq[1].items["BODY[]"] == b"he)lo"
    assert by_seq[1].items["FLAGS"] == [b"\\Seen", b"$Junk"]
    assert by_seq[2].items == {"UID": 11, "RFC822.SIZE": 9, "INTERNALDATE": b"01-Jan-2025 00:00:00 +0000",
                               "X-NOTE": b'a "q"', "X": None}
    assert by_seq[3].items["BODY[HEADER.FIELDS (MESSAGE-ID)]"] == b"Message-ID: <a@b>\r\n\r\n"
    assert by_seq[4].uid is None


@pytest.mark.parametrize("bad", [b"1 (UID 5", b'1 (UID 5 INTERNALDATE "open)', b"1 (BODY[] {9}\r\nshort)"])
def test_fetch_items_refuses_broken_responses(bad: bytes) -> None:
    """A cut-short response is an error, never a silently wrong value."""
    with pytest.raises(FetchParseError):
        fetch_items([bad])


@pytest.mark.parametrize("order", list(itertools.permutations(ITEMS)), ids="-".join)
def test_meta_through_a_server_that_reorders_fetch_items(relayed_imap, order: tuple[str, ...]) -> None:
    """A server answering FETCH items in any order still gives every UID its date and size."""
    relayed_imap.append_many([(plain_mail(i), on_time(5, 10, i)) for i in range(3)])
    relayed_imap.relay.rewrite = reorder_fetch(order)
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        metas = mb.meta([1, 2, 3])
    assert [m.uid for m in metas] == [1, 2, 3] and metas.missing == []
    assert [m.internaldate for m in metas] == [on_time(5, 10, i) for i in range(3)]
    assert all(m.size > 100 for m in metas)
    assert relayed_imap.relay.sent("UID FETCH")[0].endswith("(UID INTERNALDATE RFC822.SIZE)")


def test_meta_asks_again_for_a_left_out_internaldate_and_reports_what_stays_missing(relayed_imap) -> None:
    """INTERNALDATE left out of the first answer is asked for alone; UIDs without a complete answer
    (left out twice, or gone) are reported as missing, never dropped silently."""
    relayed_imap.append_many([(plain_mail(i), on_time(5, 10, i)) for i in range(3)])
    drop_date = reorder_fetch(["RFC822.SIZE", "UID"], drop=["INTERNALDATE"])
    relayed_imap.relay.rewrite = lambda line: drop_date(line) if b"RFC822.SIZE" in line else line
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        metas = mb.meta([1, 2, 3])
    assert [m.uid for m in metas] == [1, 2, 3] and metas.missing == []
    relayed_imap.relay.rewrite = reorder_fetch(["UID"], drop=["INTERNALDATE"])
    told: list[tuple[int, str]] = []
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        metas = mb.meta([2, 3, 99], on_missing=lambda uid, why: told.append((uid, why)))
    assert list(metas) == [] and metas.missing == [2, 3, 99]
    assert told == [(2, "FETCH answer without INTERNALDATE"), (3, "FETCH answer without INTERNALDATE"),
                    (99, "not in the FETCH answer (expunged meanwhile?)")]


def test_poll_through_a_reordering_server_records_every_message(relayed_imap, tmp_path: Path) -> None:
    """A poll where FETCH answers come as RFC822.SIZE, INTERNALDATE, UID records every message."""
    relayed_imap.append_many([(plain_mail(i), on_time()) for i in range(4)])
    relayed_imap.relay.rewrite = reorder_fetch(["RFC822.SIZE", "INTERNALDATE", "UID"])
    summary = poll_once(relayed_imap, tmp_path)
    assert summary.new == 4 and recorded_uids(tmp_path) == [1, 2, 3, 4]


def test_fetch_reports_a_body_that_does_not_come_back(imap_account) -> None:
    """A UID whose body is not in the answer (gone since SEARCH) is passed to ``on_missing``."""
    imap_account.append(plain_mail(1), on_time())
    told: list[int] = []
    with Mailbox(imap_account.mailbox_config()) as mb:
        [meta] = mb.meta([1])
        ghost = MessageMeta(42, meta.internaldate, 10)
        got = list(mb.fetch([meta, ghost], on_missing=lambda uid, why: told.append(uid)))
    assert [f.uid for f in got] == [1] and b"Message-ID: <m1@test.example>" in got[0].raw
    assert told == [42]


# -- fetch batches bounded by bytes -------------------------------------------


def test_fetch_batches_bound_count_and_bytes() -> None:
    """Batches hold at most ``max_count`` messages and ``max_bytes`` bytes; a bigger message goes alone."""
    def metas(*sizes: int) -> list[MessageMeta]:
        return [MessageMeta(i + 1, on_time(), s) for i, s in enumerate(sizes)]

    def sizes(batches) -> list[list[int]]:
        return [[m.size for m in b] for b in batches]

    assert sizes(fetch_batches(metas(40, 40, 40, 500, 10, 10), 50, 100)) == [[40, 40], [40], [500], [10, 10]]
    assert sizes(fetch_batches(metas(1, 1, 1, 1, 1), 2, 100)) == [[1, 1], [1, 1], [1]]
    assert sizes(fetch_batches(metas(100, 100), 5, 100)) == [[100], [100]]
    assert list(fetch_batches([], 5, 100)) == []


def test_fetch_requests_stay_within_max_fetch_bytes(relayed_imap) -> None:
    """Against Dovecot, each body FETCH asks for at most ``max_fetch_bytes`` by RFC822.SIZE (one message
    over the budget alone), and every body comes back."""
    small = [(plain_mail(i), on_time()) for i in range(6)]
    big = compose(sender="big@elsewhere.cn", subject="大邮件", body="很长" * 4000, message_id="<big@x>",
                  arrival=on_time())
    relayed_imap.append_many([*small[:3], (big, on_time()), *small[3:]])
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        metas = mb.meta(mb.uids_from(1))
    sizes = {m.uid: m.size for m in metas}
    budget = 2 * max(s for u, s in sizes.items() if u != 4) + 1  # two small ones fit, never three
    assert sizes[4] > budget
    with Mailbox(relayed_imap.mailbox_config(max_fetch_bytes=budget, batch_size=50)) as mb:
        got = [f.uid for f in mb.fetch(metas)]
    assert got == [1, 2, 3, 4, 5, 6, 7]
    requests = [c.split()[2] for c in relayed_imap.relay.sent("UID FETCH") if "BODY.PEEK[]" in c]
    batches = [expand(r.split(",")) for r in requests]
    assert batches == [[1, 2], [3], [4], [5, 6], [7]]
    assert all(sum(sizes[u] for u in b) <= budget for b in batches if b != [4])


# -- find_replies ---------------------------------------------------------------


def find_replies(mb: Mailbox, folder: str, message_id: str | None = None, in_reply_to: str | None = None,
                 outcome: str | None = None) -> bool:
    """The poll's one look at the Sent folder (``reply_headers`` + ``SentCopies``) asked for one reply: a
    message with Message-ID ``message_id``, or one answering ``in_reply_to`` with ``X-Intake-Outcome:
    outcome``, each value compared whole."""
    keys = ReplyKeys(text(message_id or ""), text(in_reply_to or ""), text(outcome or ""))
    copies = SentCopies([keys])
    mb.reply_headers(folder, [keys], copies.add_headers)
    return copies.holds(keys)


def sent_reply(message_id: str, in_reply_to: str, outcome: str) -> bytes:
    return compose(sender="xzip2019@163.com", subject="回执", body="已收到", message_id=message_id,
                   arrival=on_time(), headers=[("In-Reply-To", in_reply_to), ("X-Intake-Outcome", outcome)])


def test_find_replies_by_message_id_or_by_original_and_outcome(imap_account) -> None:
    """The Sent folder is searched by the reply's Message-ID, or by In-Reply-To plus X-Intake-Outcome;
    the folder selected before is selected again afterwards."""
    imap_account.append(sent_reply("<r1@163.com>", "<orig1@district.cn>", "receipt"), on_time(), folder="已发送")
    with Mailbox(imap_account.mailbox_config()) as mb:
        inbox_validity = mb.uidvalidity
        assert find_replies(mb, "已发送", message_id="<r1@163.com>")
        assert not find_replies(mb, "已发送", message_id="<r2@163.com>")
        assert find_replies(mb, "已发送", in_reply_to="<orig1@district.cn>", outcome="receipt")
        assert not find_replies(mb, "已发送", in_reply_to="<orig1@district.cn>", outcome="late")
        assert not find_replies(mb, "已发送", in_reply_to="<orig2@district.cn>", outcome="receipt")
        assert not find_replies(mb, "没有这个文件夹", message_id="<r1@163.com>")
        assert mb.folder == "INBOX" and mb.uidvalidity == inbox_validity
        assert mb.uids_from(1) == []  # INBOX again, not 已发送


@pytest.mark.parametrize("hostile", ['x" OR ALL "', "<a\r\nb@x>\r\nA1 LOGOUT", '<"quoted"@x>', "<back\\slash@x>",
                                     "<中文@x>", "\r\n", ""])
def test_find_replies_never_lets_a_value_break_the_command(imap_account, hostile: str) -> None:
    """Quotes, CR/LF, backslashes and non-ASCII in a sender's Message-ID are searched as text: no match,
    no error, the session stays usable (a bare ``"x" OR ALL ""`` would have matched everything)."""
    imap_account.append(sent_reply("<r1@163.com>", "<orig1@district.cn>", "receipt"), on_time(), folder="已发送")
    with Mailbox(imap_account.mailbox_config()) as mb:
        assert not find_replies(mb, "已发送", message_id=hostile)
        assert not find_replies(mb, "已发送", in_reply_to=hostile, outcome="receipt")
        assert find_replies(mb, "已发送", message_id="<r1@163.com>")


def test_find_replies_matches_quoted_and_non_ascii_ids_exactly(imap_account) -> None:
    """A Message-ID with quotes or Chinese characters is found when it is there."""
    imap_account.append(sent_reply('<"q"@163.com>', "<原件@district.cn>", "receipt"), on_time(), folder="已发送")
    with Mailbox(imap_account.mailbox_config()) as mb:
        assert find_replies(mb, "已发送", message_id='<"q"@163.com>')
        assert find_replies(mb, "已发送", in_reply_to="<原件@district.cn>", outcome="receipt")


def test_find_replies_compares_whole_values_not_the_servers_substrings(imap_account) -> None:
    """IMAP SEARCH matches parts of values: a copy whose Message-ID is ``<r1@163.com> (copy)`` or whose outcome
    is ``receipt-old`` is another message, and finds nothing; the exact values still find their copy."""
    odd = (b"From: xzip2019@163.com\r\nMessage-ID: <r1@163.com> (copy)\r\nIn-Reply-To: <d1@district.cn>\r\n"
           b"X-Intake-Outcome: receipt-old\r\nSubject: x\r\n\r\nbody\r\n")
    imap_account.append(odd, on_time(), folder="已发送")
    imap_account.append(sent_reply("<r2@163.com>", "<d2@district.cn>", "receipt"), on_time(), folder="已发送")
    with Mailbox(imap_account.mailbox_config()) as mb:
        assert not find_replies(mb, "已发送", message_id="<r1@163.com>")
        assert not find_replies(mb, "已发送", in_reply_to="<d1@district.cn>", outcome="receipt")
        assert find_replies(mb, "已发送", message_id="<R2@163.com>")
        assert find_replies(mb, "已发送", in_reply_to="<d2@district.cn>", outcome="receipt")


def test_find_replies_reads_raw_utf8_folded_and_lower_case_headers(imap_account) -> None:
    """A copy whose In-Reply-To is raw 8-bit UTF-8 and folded, with lower-case field names (as another client
    or a server-side copy may write it), is found by the Chinese original and outcome."""
    raw = ("From: xzip2019@163.com\r\nmessage-id: <r8@163.com>\r\nin-reply-to:\r\n\t<原件8@district.cn>\r\n"
           "x-intake-outcome:  receipt \r\nSubject: x\r\n\r\nbody\r\n").encode()
    imap_account.append(raw, on_time(), folder="已发送")
    with Mailbox(imap_account.mailbox_config()) as mb:
        assert find_replies(mb, "已发送", in_reply_to="<原件8@district.cn>", outcome="receipt")
        assert not find_replies(mb, "已发送", in_reply_to="<原件@district.cn>", outcome="receipt")
        assert find_replies(mb, "已发送", message_id="<r8@163.com>")


def test_reply_headers_look_once_for_many_replies_in_chunks(relayed_imap, monkeypatch) -> None:
    """All the replies of a stage in one look: one EXAMINE, the keys searched a few at a time (a Chinese one
    alone, as a literal), the candidates' header fields fetched a chunk at a time, INBOX selected again.
    Every copy is found, across more than one SEARCH and one FETCH chunk, and only those."""
    from intake.sentcopies import ReplyKeys, SentCopies

    monkeypatch.setattr(mailbox_module, "SEARCH_KEYS_PER_COMMAND", 3)
    monkeypatch.setattr(mailbox_module, "HEADERS_PER_FETCH", 2)
    copies = [sent_reply(f"<r{i}@163.com>", f"<o{i}@district.cn>", "receipt") for i in range(5)]
    copies.append(sent_reply("<r5@163.com>", "<原件5@district.cn>", "receipt"))
    others = [sent_reply(f"<x{i}@163.com>", f"<other{i}@district.cn>", "late") for i in range(3)]
    relayed_imap.append_many([(m, on_time()) for m in [*copies, *others]], folder="已发送")
    wanted = [ReplyKeys(f"<new{i}@163.com>", f"<o{i}@district.cn>", "receipt") for i in range(4)]
    wanted += [ReplyKeys("<r4@163.com>"), ReplyKeys("<new5@163.com>", "<原件5@district.cn>", "receipt"),
               ReplyKeys("<absent@163.com>", "<absent@district.cn>", "receipt")]
    relay = relayed_imap.relay
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        before = len(relay.commands)
        found = SentCopies(wanted)
        assert mb.reply_headers("已发送", wanted, found.add_headers) == 6
        commands = relay.commands[before:]
        assert mb.folder == "INBOX" and mb.uids_from(1) == []
    assert [k.message_id for k in wanted if found.holds(k)] == [k.message_id for k in wanted[:-1]]
    assert sum(c.startswith("EXAMINE") for c in commands) == 1
    searches = [c for c in commands if c.startswith("UID SEARCH")]
    assert len(searches) == 5  # 12 ASCII keys, 3 a command, and the Chinese original alone
    assert sum("CHARSET UTF-8" in c for c in searches) == 1
    fetches = [c for c in commands if c.startswith("UID FETCH")]
    assert len(fetches) == 3 and all("HEADER.FIELDS" in c for c in fetches)


# -- folders ---------------------------------------------------------------------


def test_select_switches_between_folders_with_chinese_names(imap_account) -> None:
    """``select`` returns each folder's own UIDVALIDITY (Chinese names too) and one session reads both."""
    imap_account.append(plain_mail(1), on_time())
    imap_account.append_many([(plain_mail(2), on_time()), (plain_mail(3), on_time())], folder="垃圾邮件")
    with Mailbox(imap_account.mailbox_config()) as mb:
        assert mb.uidvalidity == imap_account.uidvalidity()
        spam = mb.select("垃圾邮件")
        assert spam == mb.uidvalidity == imap_account.uidvalidity("垃圾邮件") and mb.folder == "垃圾邮件"
        assert mb.uids_from(1) == [1, 2] and [m.uid for m in mb.meta([1, 2])] == [1, 2]
        mb.mark_processed([1], "已处理")
        assert mb.select("INBOX") == imap_account.uidvalidity()
        assert mb.uids_from(1) == [1]
    assert imap_account.uids("垃圾邮件") == [2] and len(imap_account.uids("已处理")) == 1


def test_select_of_a_missing_folder_says_which(imap_account) -> None:
    """Selecting a folder that does not exist is a ``MailboxError`` naming it."""
    with Mailbox(imap_account.mailbox_config()) as mb, pytest.raises(MailboxError, match="不存在"):
        mb.select("不存在")


# -- the fault relay itself ---------------------------------------------------------


def test_relay_refuses_chosen_commands_in_a_chosen_folder(relayed_imap) -> None:
    """``ImapRelay.refuse`` answers NO to a command in one folder only, for a number of times or always."""
    relayed_imap.append(plain_mail(1), on_time())
    relayed_imap.append(sent_reply("<r1@163.com>", "<o@x>", "receipt"), on_time(), folder="已发送")
    relay = relayed_imap.relay
    relay.refuse("UID SEARCH", folder="已发送").refuse("UID MOVE", count=1)
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        assert mb.uids_from(1) == [1]
        with pytest.raises(MailboxError, match="refused on purpose"):
            find_replies(mb, "已发送", message_id="<r1@163.com>")
        with pytest.raises(MailboxError, match="refused on purpose"):
            mb.mark_processed([1], "已处理")
        mb.mark_processed([1], "已处理")
    assert relay.refused == ["UID SEARCH", "UID MOVE"]
    assert relayed_imap.uids() == [] and relayed_imap.uids("已处理") == [1]
    relay.allow_all()
    with Mailbox(relayed_imap.mailbox_config()) as mb:
        assert find_replies(mb, "已发送", message_id="<r1@163.com>")
