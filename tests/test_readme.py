"""The README's configuration table must list exactly the settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from wekadocs.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_configuration_table_matches_settings() -> None:
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.M))
    actual = {Settings.env_name(name) for name in Settings.model_fields}
    assert documented == actual
