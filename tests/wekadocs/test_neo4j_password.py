"""The Neo4j password: configured, or generated once per data dir and kept private."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from wekadocs.errors import SettingsError
from wekadocs.neo4j_password import LEGACY_DEFAULT, SECRET_NAME, neo4j_password
from wekadocs.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NEO4J_URI", "NEO4J_PASSWORD", "WEKADOCS_CONFIG", "WEKADOCS_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)


def fresh(data_dir: Path, **values: object) -> Settings:
    return load_settings(data_dir=data_dir, **values)


def test_the_default_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = fresh(tmp_path / "a")
    first = neo4j_password(settings)
    assert len(first) >= 24 and first != LEGACY_DEFAULT
    stored = settings.effective_secrets_dir / SECRET_NAME
    assert stored.read_text() == first
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert neo4j_password(fresh(tmp_path / "a")) == first  # another process of the same data dir
    assert neo4j_password(fresh(tmp_path / "b")) != first  # another install, another password


def test_racing_first_users_agree(tmp_path: Path) -> None:
    settings = fresh(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(lambda _: neo4j_password(settings), range(32)))
    assert len(seen) == 1
    assert not [p for p in settings.effective_secrets_dir.iterdir() if p.name != SECRET_NAME]


def test_an_explicit_password_wins_and_is_not_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", "chosen-by-operator")
    settings = load_settings(data_dir=tmp_path)
    assert neo4j_password(settings) == "chosen-by-operator"
    assert not (settings.effective_secrets_dir / SECRET_NAME).exists()
    assert neo4j_password(fresh(tmp_path, neo4j_password=SecretStr("from-yaml-1"))) == "from-yaml-1"


def test_a_server_set_up_with_the_old_constant_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "neo4j" / "data" / "databases").mkdir(parents=True)
    assert neo4j_password(fresh(tmp_path)) == LEGACY_DEFAULT
    assert (tmp_path / "secrets" / SECRET_NAME).read_text() == LEGACY_DEFAULT


def test_an_external_server_needs_its_password(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="NEO4J_PASSWORD.*required with NEO4J_URI"):
        neo4j_password(fresh(tmp_path, neo4j_uri="bolt://graph.example.com:7687"))
    assert not (tmp_path / "secrets").exists()
