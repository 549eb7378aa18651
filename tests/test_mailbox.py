"""intake.mailbox: IMAP commands kept within the server's limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support import on_time, plain_mail

from intake.mailbox import Mailbox, uid_ranges


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
