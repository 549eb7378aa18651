"""Reading the receiving server's Authentication-Results (parsers/auth.py)."""

from __future__ import annotations

import pytest

from parsers.auth import authentication_failures

SENDER = "ylq-ip@example.cn"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("mx.163.com; spf=pass smtp.mailfrom=ylq-ip@example.cn; dkim=pass header.i=@example.cn", []),
        ("mx.163.com; spf=fail smtp.mailfrom=ylq-ip@example.cn", ["spf=fail"]),
        ("mx.163.com; spf=softfail (sender not allowed) smtp.mailfrom=example.cn", ["spf=softfail"]),
        ("mx.163.com; dkim=fail (bad signature) header.d=example.cn; spf=pass", ["dkim=fail"]),
        ("mx.163.com; dkim=permerror header.i=@example.cn; spf=permerror smtp.mailfrom=example.cn",
         ["dkim=permerror", "spf=permerror"]),
        ("mx.163.com; spf=none smtp.mailfrom=example.cn; dkim=none", []),
        ("mx.163.com; dkim=neutral header.d=example.cn", []),
        # a list's own signature failing is not about the district's domain
        ("mx.163.com; dkim=fail header.d=lists.other.org; spf=pass smtp.mailfrom=example.cn", []),
        ("MX.163.COM;\r\n  SPF=FAIL  smtp.mailfrom=YLQ-IP@EXAMPLE.CN", ["spf=fail"]),
    ],
)
def test_failures_are_read_from_the_topmost_header(header: str, expected: list[str]) -> None:
    """Each failing SPF/DKIM result about the From domain is reported, passes and non-results are not."""
    got = [f"{f.method}={f.result}" for f in authentication_failures([header], SENDER)]
    assert got == expected


def test_only_the_receiving_servers_header_counts() -> None:
    """A forged Authentication-Results placed below the receiving server's one is ignored, either way."""
    real, forged = "mx.163.com; spf=fail smtp.mailfrom=example.cn", "mx.163.com; spf=pass; dkim=pass"
    assert [f.method for f in authentication_failures([real, forged], SENDER)] == ["spf"]
    assert authentication_failures([forged, real], SENDER) == []


def test_no_header_is_no_evidence() -> None:
    """Without an Authentication-Results header nothing is reported as failing."""
    assert authentication_failures([], SENDER) == []


def test_describe_names_the_result_and_its_subject() -> None:
    """The description staff read names the method, the result and what it was about."""
    (failure,) = authentication_failures(["mx; dkim=fail header.d=example.cn"], SENDER)
    assert failure.describe() == "dkim=fail (example.cn)"
