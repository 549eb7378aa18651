"""Load and validate ``config.toml``.

Every error names its key in one line (``ConfigError``); the CLI prints it and
exits non-zero, so a bad config never surfaces later as a traceback. The schema
below is the single source for validation and for the generated config
reference in the README (``intake config-reference``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.errors import ConfigError
from intake.registry import Registry, load_registry

# (key, type, required, default, help). Types: str, int, float, bool, datetime, list[str]
Key = tuple[str, type | str, bool, Any, str]

SCHEMA: dict[str, list[Key]] = {
    "mailbox": [
        ("host", str, True, None, "IMAP server, imap.163.com for the bureau's mailbox"),
        ("port", int, True, None, "993 for IMAPS"),
        ("ssl", bool, True, None, "true: IMAP over TLS; false: plain IMAP (local servers, tests)"),
        ("starttls", bool, False, False, "with ssl = false: upgrade the plain connection with STARTTLS (verified)"),
        ("user", str, True, None, "login name, the full address"),
        ("password_env", str, True, None, "name of the environment variable holding the password (163: the 授权码)"),
        ("folder", str, True, None, "folder to read, normally INBOX"),
        ("processed_folder", str, True, None, "move processed mail here (e.g. 已处理); empty: flag \\Seen only"),
        ("imap_id", bool, True, None, "send the RFC 2971 ID command after login (163.com requires it)"),
        ("sent_folder", str, False, "已发送", "copies of replies go here; proves a reply went out"),
        ("batch_size", int, False, 50, "messages fetched per IMAP request"),
        ("timeout_seconds", int, False, 60, "socket timeout for IMAP"),
        ("extra_folders", "list[str]", False, [],
         "more folders polled like `folder`, e.g. [\"垃圾邮件\"] (163's spam)"),
        ("ca_file", str, False, "", "extra trusted CA (PEM) for a private server; certificates are always verified"),
        ("require_authenticated", bool, False, False,
         "true: a district address whose Authentication-Results show DKIM/SPF failing is not trusted"),
        ("max_fetch_bytes", int, False, 200 * 1024 * 1024, "bytes of message bodies held in memory per fetch batch"),
    ],
    "smtp": [
        ("host", str, True, None, "SMTP server, smtp.163.com"),
        ("port", int, True, None, "465 for SSL, 25/587 for STARTTLS or plain"),
        ("ssl", bool, True, None, "connect over TLS (port 465)"),
        ("starttls", bool, True, None, "upgrade a plain connection with STARTTLS"),
        ("user", str, True, None, "login name; empty: no login (local servers)"),
        ("password_env", str, True, None, "environment variable holding the SMTP password"),
        ("sender", str, True, None, "From of every reply, e.g. 徐州市知识产权局 <xzip2019@163.com>"),
        ("max_replies_per_poll", int, False, 30, "replies sent per poll at most; the rest wait for the next poll"),
        ("timeout_seconds", int, False, 60, "socket timeout for SMTP"),
        ("ca_file", str, False, "", "extra trusted CA (PEM) for a private server; certificates are always verified"),
        ("max_replies_per_sender_per_day", int, False, 20, "replies to one address per day at most; the rest wait"),
    ],
    "schedule": [
        ("interval_minutes", int, True, None, "minutes between polls of `intake run`"),
    ],
    "campaign": [
        ("name", str, True, None, "the call's name, shown in replies"),
        ("deadline", datetime, True, None, "last instant that is on time, with its UTC offset"),
        ("timezone", str, True, None, "time zone for every time shown, Asia/Shanghai"),
        ("number_prefix", str, False, "XZ2024", "prefix of 受理编号, e.g. XZ2024-云龙-001"),
        ("program", str, False, "高价值专利培育计划", "the program of the notice this intake checks and merges"),
        ("contact", str, False, "李钦华 0516-69859237", "联系人 and 电话 printed in every reply"),
        ("paper_address", str, False, "徐州市云龙区新安路11号市市场监督管理局218室",
         "where the paper copy is delivered (named in receipts)"),
    ],
    "paths": [
        ("data_dir", str, True, None, "database, archive and ledger.xlsx; relative to the config file"),
        ("templates_dir", str, False, "", "folder with edited reply templates; empty: the built-in ones"),
        ("log_file", str, False, "", "also log to this file, rotated by size; empty: standard error only"),
        ("publish_dir", str, False, "",
         "atomic copies of ledger.xlsx and digest.html go here after each change (e.g. a share)"),
    ],
    "rules": [
        ("cap_new", float, False, 50, "funding cap for 新建 (万元)"),
        ("cap_upgrade", float, False, 40, "funding cap for 升级 (万元)"),
        ("pct_weight", float, False, 2, "one PCT application counts as this many invention patents"),
        ("enterprise_min_patents", int, False, 80, "企业: minimum 有效专利数"),
        ("enterprise_min_invention", float, False, 10, "企业: minimum 折算有效发明专利数"),
        ("academic_min_patents", int, False, 80, "高校/科研院所: minimum 有效专利数"),
        ("academic_min_invention", float, False, 20, "高校/科研院所: minimum 折算有效发明专利数"),
        ("min_ip_engineers", int, False, 1, "minimum 知识产权工程师人数 (新建)"),
        ("agency_min_staff", int, False, 15, "agency: minimum 从业人员数 (新建)"),
        ("agency_min_agents", int, False, 5, "agency: minimum 专利代理人及检索分析人员数 (新建)"),
        ("agency_min_revenue", float, False, 300, "agency: minimum 2023 revenue, 万元 (新建)"),
        ("agency_max_projects", int, False, 1, "projects one agency may join across all districts"),
        ("required_attachments", "list[str]", False, ["合作协议", "信用承诺书"],
         "documents every project must include besides its 申报书"),
        ("registry", str, False, "", "the bureau's list of past projects (.xlsx or .csv); empty: registry rules off"),
    ],
    "staff": [
        ("report_to", "list[str]", False, [], "staff addresses that get the daily digest; empty: none"),
        ("report_hour", int, False, 8, "local hour after which the daily digest is sent"),
    ],
    "parsing": [
        ("child_memory_mb", int, False, 1536, "address space of each document-parser child process (MB)"),
        ("file_timeout_seconds", int, False, 60, "wall-clock limit for reading one file; a slower parse is stopped"),
    ],
}
DISTRICT_SCHEMA: list[Key] = [
    ("name", str, True, None, "district name as shown in the ledger, e.g. 云龙区"),
    ("senders", "list[str]", True, None, "addresses this district sends from (case-insensitive)"),
    ("city_share", float, True, None, "share of funding the city carries (0.5 for the main urban districts)"),
    ("quota", int, True, None, "projects this district may put forward"),
    ("short_name", str, False, "", "name used in 受理编号; empty: the name without 区/县/市"),
]
OPTIONAL_TABLES = {"rules", "staff", "parsing"}


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int
    ssl: bool
    user: str
    password_env: str
    folder: str
    processed_folder: str
    imap_id: bool
    sent_folder: str
    batch_size: int
    timeout_seconds: int
    extra_folders: list[str] = field(default_factory=list)
    ca_file: str = ""
    require_authenticated: bool = False
    max_fetch_bytes: int = 200 * 1024 * 1024
    starttls: bool = False
    password: str = field(default="", repr=False)

    @property
    def folders(self) -> list[str]:
        """Every folder polled: ``folder`` first, then ``extra_folders``."""
        return [self.folder, *(f for f in self.extra_folders if f != self.folder)]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    ssl: bool
    starttls: bool
    user: str
    password_env: str
    sender: str
    max_replies_per_poll: int
    timeout_seconds: int
    ca_file: str = ""
    max_replies_per_sender_per_day: int = 20
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class ScheduleConfig:
    interval_minutes: int


@dataclass(frozen=True)
class CampaignConfig:
    name: str
    deadline: datetime
    timezone: str
    number_prefix: str
    program: str = "高价值专利培育计划"
    contact: str = "李钦华 0516-69859237"
    paper_address: str = "徐州市云龙区新安路11号市市场监督管理局218室"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class PathsConfig:
    data_dir: Path
    templates_dir: Path | None
    log_file: Path | None = None
    publish_dir: Path | None = None


@dataclass(frozen=True)
class RulesConfig:
    cap_new: float = 50
    cap_upgrade: float = 40
    pct_weight: float = 2
    enterprise_min_patents: int = 80
    enterprise_min_invention: float = 10
    academic_min_patents: int = 80
    academic_min_invention: float = 20
    min_ip_engineers: int = 1
    agency_min_staff: int = 15
    agency_min_agents: int = 5
    agency_min_revenue: float = 300
    agency_max_projects: int = 1
    required_attachments: tuple[str, ...] = ("合作协议", "信用承诺书")
    registry: Path | None = None
    registry_data: Registry | None = None  # the file at `registry`, read at start (intake.registry)


@dataclass(frozen=True)
class StaffConfig:
    report_to: list[str]
    report_hour: int


@dataclass(frozen=True)
class ParsingConfig:
    """Limits of the document-parser children (intake/parsepool.py)."""

    child_memory_mb: int = 1536
    file_timeout_seconds: int = 60


@dataclass(frozen=True)
class DistrictConfig:
    name: str
    senders: list[str]
    city_share: float
    quota: int
    short_name: str = ""

    @property
    def label(self) -> str:
        """The name used inside 受理编号 (云龙区 -> 云龙)."""
        if self.short_name:
            return self.short_name
        name = self.name
        return name[:-1] if len(name) > 2 and name[-1] in "区县市" else name


@dataclass(frozen=True)
class Config:
    mailbox: MailboxConfig
    smtp: SmtpConfig
    schedule: ScheduleConfig
    campaign: CampaignConfig
    paths: PathsConfig
    rules: RulesConfig
    staff: StaffConfig
    districts: list[DistrictConfig]
    source: Path | None = None
    parsing: ParsingConfig = field(default_factory=ParsingConfig)

    def district_for(self, address: str) -> DistrictConfig | None:
        """The district that sends from ``address`` (case-insensitive), if any."""
        address = address.strip().lower()
        for d in self.districts:
            if address in (s.lower() for s in d.senders):
                return d
        return None

    def district(self, name: str) -> DistrictConfig | None:
        return next((d for d in self.districts if d.name == name), None)

    def letter(self, now: datetime) -> dict[str, Any]:
        """What every reply and notice is rendered with (``reports.replies``), dated ``now``."""
        return {"campaign": self.campaign.name, "deadline": self.campaign.deadline, "tz": self.campaign.tz,
                "templates_dir": self.paths.templates_dir, "contact": self.campaign.contact,
                "paper_address": self.campaign.paper_address, "now": now}


def _check(value: Any, typ: type | str, where: str) -> Any:
    if typ == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings")
        return value
    if typ is datetime:
        if not isinstance(value, datetime):
            raise ConfigError(f"{where}: expected a date-time like 2024-11-08T23:59:59+08:00")
        if value.tzinfo is None:
            raise ConfigError(f"{where}: the deadline needs a time zone offset, e.g. +08:00")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number")
        return float(value)
    if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: expected a whole number")
    if typ in (str, bool) and not isinstance(value, typ):  # type: ignore[arg-type]
        raise ConfigError(f"{where}: expected {'true or false' if typ is bool else 'a string'}")
    return value


def _table(raw: dict[str, Any], keys: list[Key], where: str) -> dict[str, Any]:
    known = {k[0] for k in keys}
    for name in raw:
        if name not in known:
            raise ConfigError(f"{where}.{name}: unknown key")
    out = {}
    for name, typ, required, default, _help in keys:
        if name not in raw:
            if required:
                raise ConfigError(f"{where}.{name}: missing key")
            out[name] = default
            continue
        out[name] = _check(raw[name], typ, f"{where}.{name}")
    return out


def _secrets(mb: dict[str, Any], sm: dict[str, Any], need_secrets: bool) -> tuple[str, str]:
    """The IMAP and SMTP passwords from the environment; one error naming every variable that is not set."""
    wanted = [("mailbox.password_env", mb["password_env"], need_secrets),
              ("smtp.password_env", sm["password_env"], need_secrets and bool(sm["user"]))]
    missing = [f"{where}: environment variable {env} is not set"
               for where, env, required in wanted if required and os.environ.get(env) is None]
    if missing:
        raise ConfigError("; ".join(dict.fromkeys(missing)))
    return os.environ.get(mb["password_env"], ""), os.environ.get(sm["password_env"], "")


def _check_smtp(sm: dict[str, Any]) -> None:
    """Settings that contradict each other, or a From without an address, would fail every reply."""
    if sm["ssl"] and sm["starttls"]:
        raise ConfigError("smtp.starttls: cannot be true together with smtp.ssl (TLS from the start); "
                          "set one of them to false")
    _address(sm["sender"], "smtp.sender", display_name=True)


def _check_districts(districts: list[DistrictConfig]) -> None:
    """Two districts under one name (or one 受理编号 label) would merge one district's projects into another's."""
    names: dict[str, int] = {}
    labels: dict[str, int] = {}
    for i, d in enumerate(districts):
        if d.name in names:
            raise ConfigError(f"districts[{i}].name: {d.name} is already the name of districts[{names[d.name]}]")
        if d.label in labels:
            other = districts[labels[d.label]].name
            raise ConfigError(f"districts[{i}].short_name: {d.name} and {other} would both number their "
                              f"projects {d.label}; give one of them another short_name")
        names[d.name] = labels[d.label] = i


def parse_config(raw: dict[str, Any], base: Path, need_secrets: bool = True) -> Config:
    """Validate a parsed TOML document; ``base`` resolves relative paths."""
    for name in raw:
        if name not in SCHEMA and name != "districts":
            raise ConfigError(f"{name}: unknown table")
    tables: dict[str, dict[str, Any]] = {}
    for name, keys in SCHEMA.items():
        section = raw.get(name)
        if section is None:
            if name not in OPTIONAL_TABLES:
                raise ConfigError(f"{name}: missing table")
            section = {}
        if not isinstance(section, dict):
            raise ConfigError(f"{name}: expected a table")
        tables[name] = _table(section, keys, name)

    mb, sm = tables["mailbox"], tables["smtp"]
    _check_smtp(sm)
    if mb["ssl"] and mb["starttls"]:
        raise ConfigError("mailbox.starttls: cannot be true together with mailbox.ssl (TLS from the start); "
                          "set one of them to false")
    mb["password"], sm["password"] = _secrets(mb, sm, need_secrets)
    camp = tables["campaign"]
    try:
        ZoneInfo(camp["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"campaign.timezone: unknown time zone {camp['timezone']!r}") from None
    paths = tables["paths"]
    data_dir = base / paths["data_dir"]
    templates = base / paths["templates_dir"] if paths["templates_dir"] else None
    log_file = base / paths["log_file"] if paths["log_file"] else None
    publish_dir = base / paths["publish_dir"] if paths["publish_dir"] else None
    rules = tables["rules"]
    rules["required_attachments"] = tuple(rules["required_attachments"])
    rules["registry"] = base / rules["registry"] if rules["registry"] else None
    rules["registry_data"] = load_registry(rules["registry"], camp["program"]) if rules["registry"] else None
    if tables["schedule"]["interval_minutes"] < 1:
        raise ConfigError("schedule.interval_minutes: must be at least 1")
    if mb["batch_size"] < 1:
        raise ConfigError("mailbox.batch_size: must be at least 1")
    for table in (mb, sm):  # CA files are read relative to the config file, like the other paths
        table["ca_file"] = str(base / table["ca_file"]) if table["ca_file"] else ""

    districts_raw = raw.get("districts")
    if not isinstance(districts_raw, list) or not districts_raw:
        raise ConfigError("districts: at least one [[districts]] table is required")
    districts = []
    seen_senders: dict[str, str] = {}
    for i, d in enumerate(districts_raw):
        where = f"districts[{i}]"
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a table")
        dd = _table(d, DISTRICT_SCHEMA, where)
        if not dd["senders"]:
            raise ConfigError(f"{where}.senders: a district needs at least one sender address")
        if not 0 <= dd["city_share"] <= 1:
            raise ConfigError(f"{where}.city_share: must be between 0 and 1")
        dd["senders"] = [s.strip() for s in dd["senders"]]
        if dd["quota"] < 0:
            raise ConfigError(f"{where}.quota: must be 0 or more, not {dd['quota']}")
        for s in dd["senders"]:
            _address(s, f"{where}.senders")
            key = s.strip().lower()
            if key in seen_senders:
                raise ConfigError(f"{where}.senders: {s} is listed twice (already a sender of {seen_senders[key]})")
            seen_senders[key] = dd["name"]
        districts.append(DistrictConfig(**dd))
    _check_districts(districts)

    for a in tables["staff"]["report_to"]:
        _address(a, "staff.report_to", display_name=True)
    if not 0 <= tables["staff"]["report_hour"] <= 23:
        raise ConfigError("staff.report_hour: must be an hour from 0 to 23")
    if tables["parsing"]["child_memory_mb"] < 512:
        raise ConfigError("parsing.child_memory_mb: must be at least 512")
    if tables["parsing"]["file_timeout_seconds"] < 1:
        raise ConfigError("parsing.file_timeout_seconds: must be at least 1")
    return Config(
        mailbox=MailboxConfig(**mb),
        smtp=SmtpConfig(**sm),
        schedule=ScheduleConfig(**tables["schedule"]),
        campaign=CampaignConfig(**camp),
        paths=PathsConfig(data_dir=data_dir, templates_dir=templates, log_file=log_file, publish_dir=publish_dir),
        rules=RulesConfig(**rules),
        staff=StaffConfig(**tables["staff"]),
        districts=districts,
        parsing=ParsingConfig(**tables["parsing"]),
    )


def _address(value: str, where: str, *, display_name: bool = False) -> None:
    """An e-mail address (``name@domain``; with ``display_name``, ``王科员 <name@domain>`` too), or a
    ConfigError naming the key."""
    address = parseaddr(value)[1] if display_name else value.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c in address for c in " <>,;\"'"):
        raise ConfigError(f"{where}: {value!r} is not an e-mail address like name@example.cn")


def load_config(path: Path, need_secrets: bool = True) -> Config:
    """Read and validate ``path``; raises ``ConfigError`` naming the bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None
    cfg = parse_config(raw, path.resolve().parent, need_secrets)
    return Config(**{**cfg.__dict__, "source": path.resolve()})
