"""The configuration reference (docs/CONFIG.md) is generated from the schema and cannot drift from it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from support import ROOT

from intake.config import DISTRICT_SCHEMA, SCHEMA
from intake.configdoc import render_config_reference

DOC = ROOT / "docs" / "CONFIG.md"


def sections(markdown: str) -> dict[str, set[str]]:
    """``{"[mailbox]": {"host", ...}, "[[districts]]": {...}}``: the keys documented under each heading."""
    out: dict[str, set[str]] = {}
    current = ""
    for line in markdown.splitlines():
        if heading := re.fullmatch(r"## `(.+)`", line):
            current = heading.group(1)
            out[current] = set()
        elif key := re.match(r"\| `([a-z_]+)` \|", line):
            out[current].add(key.group(1))
    return out


def test_docs_config_md_is_the_generated_reference() -> None:
    """docs/CONFIG.md is exactly what the schema renders (regenerate: python -m intake.configdoc)."""
    assert DOC.read_text(encoding="utf-8") == render_config_reference()


def test_every_schema_key_is_documented_under_its_table() -> None:
    """One section per table, one row per key, nothing missing or extra."""
    documented = sections(render_config_reference())
    expected = {f"[{t}]": {k[0] for k in keys} for t, keys in SCHEMA.items()}
    expected["[[districts]]"] = {k[0] for k in DISTRICT_SCHEMA}
    assert documented == expected


def test_every_key_of_the_shipped_config_is_documented() -> None:
    """Each key written in the shipped config.toml has a row in its table's section."""
    shipped = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    documented = sections(DOC.read_text(encoding="utf-8"))
    for table, values in shipped.items():
        if table == "districts":
            for district in values:
                assert set(district) <= documented["[[districts]]"], district
        else:
            assert set(values) <= documented[f"[{table}]"], table


def test_required_keys_have_no_default_and_optional_ones_show_theirs() -> None:
    """Required keys leave the default empty; an optional key shows its default as TOML."""
    text = render_config_reference()
    assert "| `host` | string | yes |  |" in text
    assert '| `sent_folder` | string | no | `"已发送"` |' in text
    assert "| `report_to` | list of strings | no | `[]` |" in text
    assert "| `cap_new` | number | no | `50` |" in text


def test_module_prints_the_reference() -> None:
    """``python -m intake.configdoc`` prints the same text (the CLI command can wrap it)."""
    out = subprocess.run([sys.executable, "-m", "intake.configdoc"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out == render_config_reference()
