"""The configuration reference (docs/CONFIG.md), generated from ``intake.config.SCHEMA``.

The schema validates the config and documents it, so the two cannot drift apart;
a test compares docs/CONFIG.md with ``render_config_reference()``. Regenerate with
``python -m intake.configdoc > docs/CONFIG.md`` (or ``intake config-reference``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from intake.config import DISTRICT_SCHEMA, OPTIONAL_TABLES, SCHEMA, Key

TYPE_NAMES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", datetime: "date-time",
    "list[str]": "list of strings",
}
HEADER = """\
# Configuration reference

<!-- Generated from intake/config.py (SCHEMA) by `intake config-reference`; do not edit by hand. -->

`config.toml` is TOML. Every table below is required unless marked optional; in an
optional table, or for a key that is not required, a missing key takes its default.
An unknown table or key, a wrong type, or a password variable that is not set in the
environment stops every command with one line naming the key (exit code 2).
Secrets are never written in the file: the `*_env` keys name environment variables.
"""


def render_config_reference() -> str:
    """Markdown: one section per table, one row per key (type, required, default, description)."""
    parts = [HEADER]
    for name, keys in SCHEMA.items():
        note = "Optional table: leave it out to take every default." if name in OPTIONAL_TABLES else ""
        parts.append(_section(f"[{name}]", note, keys))
    parts.append(_section("[[districts]]", "One table per district; at least one is required.",
                          DISTRICT_SCHEMA))
    return "\n".join(parts)


def _section(title: str, note: str, keys: list[Key]) -> str:
    lines = [f"## `{title}`", ""]
    if note:
        lines += [note, ""]
    lines += ["| key | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
    for name, typ, required, default, help_text in keys:
        shown = "" if required else f"`{_toml(default)}`"
        lines.append(f"| `{name}` | {TYPE_NAMES[typ]} | {'yes' if required else 'no'} | {shown} | "
                     f"{_cell(help_text)} |")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """A default as it would be written in config.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    print(render_config_reference(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
