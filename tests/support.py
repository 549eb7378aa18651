"""Helpers for the integration tests: configs pointing at the test servers, sample district mail."""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from intake.compose import compose
from intake.config import Config, parse_config

ROOT = Path(__file__).resolve().parents[1]
CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2024, 11, 8, 23, 59, 59, tzinfo=CST)
SENDERS = {
    "云龙区": "yunlong-ip@example.cn",
    "鼓楼区": "gulou-ip@example.cn",
    "泉山区": "quanshan-ip@example.cn",
    "徐州经济技术开发区": "xzkfq-ip@example.cn",
}


def on_time(day: int = 5, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2024, 11, day, hour, minute, tzinfo=CST)


def make_config(
    data_dir: Path,
    *,
    imap: dict[str, Any] | None = None,
    smtp: dict[str, Any] | None = None,
    **tables: dict[str, Any],
) -> Config:
    """The shipped config with the mailbox/SMTP pointed at test servers (passwords via env)."""
    raw = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    raw["mailbox"].update({"ssl": False, "processed_folder": "", "imap_id": True, **(imap or {})})
    raw["smtp"].update({"ssl": False, "starttls": False, "user": "", **(smtp or {})})
    for name, values in tables.items():
        raw.setdefault(name, {}).update(values)
    for i, (name, sender) in enumerate(SENDERS.items()):
        raw["districts"][i]["senders"] = [sender]
        assert raw["districts"][i]["name"] == name
    raw["paths"]["data_dir"] = str(data_dir)
    return parse_config(raw, data_dir)


def imap_settings(host: str, port: int, user: str, password: str, **extra: Any) -> dict[str, Any]:
    """Mailbox keys for a test account; the password goes through an environment variable."""
    env = f"TEST_IMAP_PW_{abs(hash(user))}"
    os.environ[env] = password
    return {"host": host, "port": port, "user": user, "password_env": env, **extra}


def plain_mail(i: int, sender: str = "someone@elsewhere.cn", arrival: datetime | None = None) -> bytes:
    """A small message without attachments."""
    return compose(sender=sender, subject=f"测试邮件 {i}", body=f"第{i}封", message_id=f"<m{i}@test.example>",
                   arrival=arrival or on_time())


def config_toml(cfg: Config) -> str:
    """A config file equivalent to ``cfg`` (for tests that run the CLI in a subprocess)."""
    mb, sm = cfg.mailbox, cfg.smtp
    districts = "\n".join(
        f'[[districts]]\nname = "{d.name}"\nsenders = ["{d.senders[0]}"]\ncity_share = {d.city_share}\n'
        f"quota = {d.quota}\n" + (f'short_name = "{d.short_name}"\n' if d.short_name else "")
        for d in cfg.districts
    )
    return f"""
[mailbox]
host = "{mb.host}"
port = {mb.port}
ssl = false
user = "{mb.user}"
password_env = "{mb.password_env}"
folder = "{mb.folder}"
processed_folder = "{mb.processed_folder}"
imap_id = {str(mb.imap_id).lower()}
batch_size = {mb.batch_size}

[smtp]
host = "{sm.host}"
port = {sm.port}
ssl = false
starttls = false
user = "{sm.user}"
password_env = "{sm.password_env}"
sender = "{sm.sender}"

[schedule]
interval_minutes = {cfg.schedule.interval_minutes}

[campaign]
name = "{cfg.campaign.name}"
deadline = {cfg.campaign.deadline.isoformat()}
timezone = "Asia/Shanghai"

[paths]
data_dir = "{cfg.paths.data_dir}"

{districts}"""
