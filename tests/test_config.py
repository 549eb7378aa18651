"""Configuration: the shipped file is valid, and every kind of bad config is one line naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from intake.config import load_config, parse_config
from intake.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config.toml"
SECRETS = {"INTAKE_IMAP_PASSWORD": "s3cret-imap", "INTAKE_SMTP_PASSWORD": "s3cret-smtp"}


def shipped() -> dict:
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def test_shipped_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped config.toml is complete and valid, with the guide's values."""
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    cfg = load_config(SHIPPED)
    assert cfg.mailbox.host == "imap.163.com" and cfg.mailbox.imap_id
    assert cfg.campaign.deadline.utcoffset().total_seconds() == 8 * 3600
    assert [d.name for d in cfg.districts] == ["云龙区", "鼓楼区", "泉山区", "徐州经济技术开发区"]
    assert cfg.rules.cap_new == 50 and cfg.rules.agency_max_projects == 1
    assert cfg.mailbox.password == "s3cret-imap"
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg)


def test_rules_table_is_optional() -> None:
    """A config without [rules] gets the guide's defaults."""
    raw = shipped()
    del raw["rules"]
    cfg = parse_config(raw, ROOT, need_secrets=False)
    assert cfg.rules.pct_weight == 2 and cfg.rules.academic_min_invention == 20


def _drop(path: str):
    def edit(raw: dict) -> None:
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        del node[last]
    return edit


def _set(path: str, value: object):
    def edit(raw: dict) -> None:
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _district(key: str, value: object):
    def edit(raw: dict) -> None:
        raw["districts"][0][key] = value
    return edit


BAD = [
    ("missing key", _drop("mailbox.host"), "mailbox.host"),
    ("missing table", _drop("smtp"), "smtp"),
    ("unknown key", _set("mailbox.hots", "x"), "mailbox.hots"),
    ("unknown table", _set("extra", {}), "extra"),
    ("wrong type", _set("mailbox.port", "993"), "mailbox.port"),
    ("bool for int", _set("schedule.interval_minutes", True), "schedule.interval_minutes"),
    ("deadline without zone", _set("campaign.deadline", tomllib.loads("d = 2024-11-08T23:59:59")["d"]),
     "campaign.deadline"),
    ("deadline as text", _set("campaign.deadline", "2024-11-08"), "campaign.deadline"),
    ("district without senders", _district("senders", []), "districts[0].senders"),
    ("district missing quota", lambda raw: raw["districts"][0].pop("quota"), "districts[0].quota"),
    ("unknown time zone", _set("campaign.timezone", "Mars/Olympus"), "campaign.timezone"),
    ("no districts", lambda raw: raw.pop("districts"), "districts"),
    ("unknown rules key", _set("rules.cap_neww", 1), "rules.cap_neww"),
    ("sender not an address", _district("senders", ["云龙区知识产权局"]), "districts[0].senders"),
    ("staff address", _set("staff", {"report_to": ["wang@", "x"]}), "staff.report_to"),
    ("staff hour", _set("staff", {"report_hour": 24}), "staff.report_hour"),
    ("two districts, one name", lambda raw: raw["districts"][1].update(name="云龙区"), "districts[1].name"),
    ("two districts, one label", lambda raw: raw["districts"][1].update(short_name="云龙"), "districts[1].short_name"),
    ("sender in two districts", lambda raw: raw["districts"][1].update(senders=["YUNLONG-ip@example.cn"]),
     "districts[1].senders"),
    ("sender twice in one district", _district("senders", ["a@example.cn", " a@example.cn"]),
     "districts[0].senders"),
    ("negative quota", _district("quota", -1), "districts[0].quota"),
    ("ssl and starttls", _set("smtp.starttls", True), "smtp.starttls"),
    ("imap ssl and starttls", _set("mailbox.starttls", True), "mailbox.starttls"),
    ("sender without address", _set("smtp.sender", "徐州市知识产权局"), "smtp.sender"),
    ("sender with a bad address", _set("smtp.sender", "徐州市知识产权局 <xzip2019>"), "smtp.sender"),
]


@pytest.mark.parametrize(("case", "edit", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_the_key(case: str, edit, key: str) -> None:
    """Each kind of bad config raises ConfigError whose one-line message starts with the key."""
    raw = shipped()
    edit(raw)
    with pytest.raises(ConfigError) as err:
        parse_config(raw, ROOT, need_secrets=False)
    text = str(err.value)
    assert text.startswith(key) and "\n" not in text


def test_unset_password_variable_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset password variable is reported by key and variable name."""
    monkeypatch.delenv("INTAKE_IMAP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"^mailbox\.password_env: environment variable INTAKE_IMAP_PASSWORD"):
        parse_config(shipped(), ROOT, need_secrets=True)


def test_every_unset_password_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """With both password variables unset, the one line names both keys and both variables."""
    monkeypatch.delenv("INTAKE_IMAP_PASSWORD", raising=False)
    monkeypatch.delenv("INTAKE_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_config(shipped(), ROOT, need_secrets=True)
    text = str(err.value)
    assert "\n" not in text and text.startswith("mailbox.password_env")
    assert "INTAKE_IMAP_PASSWORD" in text and "smtp.password_env" in text and "INTAKE_SMTP_PASSWORD" in text


def test_only_the_unset_password_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the IMAP variable set, only the SMTP one is reported."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "x")
    monkeypatch.delenv("INTAKE_SMTP_PASSWORD", raising=False)
    only_smtp = r"^smtp\.password_env: environment variable INTAKE_SMTP_PASSWORD is not set$"
    with pytest.raises(ConfigError, match=only_smtp):
        parse_config(shipped(), ROOT, need_secrets=True)


def test_a_zero_quota_and_a_padded_sender_are_accepted() -> None:
    """Quota 0 is allowed (a district with no places), and a sender written with spaces still matches."""
    raw = shipped()
    raw["districts"][0].update(quota=0, senders=[" Yunlong-IP@example.cn "])
    cfg = parse_config(raw, ROOT, need_secrets=False)
    assert cfg.districts[0].quota == 0
    assert cfg.district_for("yunlong-ip@example.cn").name == "云龙区"


def _write(tmp_path: Path, raw_text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(raw_text, encoding="utf-8")
    return p


CLI_CASES = [
    ("missing key", lambda t: t.replace('host = "imap.163.com"\n', ""), "mailbox.host"),
    ("wrong type", lambda t: t.replace("port = 993", 'port = "993"'), "mailbox.port"),
    ("unknown key", lambda t: t.replace("[schedule]\n", "[schedule]\nintervall = 3\n"), "schedule.intervall"),
    ("no time zone", lambda t: t.replace("23:59:59+08:00", "23:59:59"), "campaign.deadline"),
    ("no senders", lambda t: t.replace('senders = ["yunlong-ip@example.cn"]', "senders = []"),
     "districts[0].senders"),
    ("not toml", lambda t: t + "\n[[[", "config.toml"),
    ("district name twice", lambda t: t.replace('name = "鼓楼区"', 'name = "云龙区"'), "districts[1].name"),
    ("ssl and starttls", lambda t: t.replace("starttls = false", "starttls = true"), "smtp.starttls"),
]


@pytest.mark.parametrize(("case", "edit", "key"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_config_one_line(tmp_path: Path, case: str, edit, key: str) -> None:
    """`intake poll --config` with a bad config prints one line naming the key and exits non-zero."""
    path = _write(tmp_path, edit(SHIPPED.read_text(encoding="utf-8")))
    env = {**os.environ, **SECRETS}
    r = subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--config", str(path)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in r.stderr


def test_cli_unset_password_one_line(tmp_path: Path) -> None:
    """An unset password variable stops `intake poll` with one line and no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    r = subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--config", str(SHIPPED)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "INTAKE_IMAP_PASSWORD" in r.stderr
    assert "INTAKE_SMTP_PASSWORD" in r.stderr, "every unset variable is named, not only the first"
