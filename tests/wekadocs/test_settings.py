from __future__ import annotations

from pathlib import Path

import pytest

from wekadocs.errors import SettingsError
from wekadocs.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NEO4J_URI", "NEO4J_PASSWORD", "REDIS_URL", "QDRANT_URL", "RAY_ADDRESS",
                 "WEKADOCS_CONFIG", "WEKADOCS_NEO4J_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_embedded() -> None:
    settings = load_settings()
    assert settings.manages_neo4j and settings.manages_redis and settings.manages_ray
    assert settings.qdrant_url is None
    assert settings.bolt_uri == "bolt://127.0.0.1:7687"
    assert settings.vector_collection == "sections-1-minilm-l6-v2.1"


def test_environment_names_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "neo4j+s://graph.example.com:7687")
    monkeypatch.setenv("REDIS_URL", "redis://:s3cret@cache.example.com:6380/2")
    monkeypatch.setenv("WEKADOCS_NEO4J_PORT", "17687")
    settings = load_settings()
    assert not settings.manages_neo4j and not settings.manages_redis
    assert settings.neo4j_port == 17687
    assert settings.effective_redis_url.endswith("@cache.example.com:6380/2")


def test_masked_hides_secrets_and_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", "hunter2-long")
    monkeypatch.setenv("REDIS_URL", "redis://user:s3cret@cache.example.com:6380/0")
    shown = load_settings().masked()
    assert shown["neo4j_password"] == "********"
    assert shown["redis_url"] == "redis://user:********@cache.example.com:6380/0"
    assert "hunter2" not in repr(shown) and "s3cret" not in repr(shown)


def test_yaml_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "wekadocs.yaml"
    config.write_text("neo4j_port: 17000\nredis_port: 16000\nvector_engine: local\n")
    monkeypatch.setenv("WEKADOCS_REDIS_PORT", "16500")
    settings = load_settings(config)
    assert settings.neo4j_port == 17000
    assert settings.redis_port == 16500
    assert settings.vector_engine == "local"
    monkeypatch.setenv("WEKADOCS_CONFIG", str(config))
    assert load_settings().neo4j_port == 17000


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("NEO4J_URI", "http://graph:7474", "NEO4J_URI"),
        ("REDIS_URL", "memcached://x", "REDIS_URL"),
        ("QDRANT_URL", "grpc://q", "QDRANT_URL"),
        ("WEKADOCS_NEO4J_PORT", "70000", "WEKADOCS_NEO4J_PORT"),
        ("WEKADOCS_NEO4J_HEAP", "lots", "WEKADOCS_NEO4J_HEAP"),
        ("WEKADOCS_VECTOR_ENGINE", "faiss", "WEKADOCS_VECTOR_ENGINE"),
        ("WEKADOCS_EMBEDDING_DIMS", "-1", "WEKADOCS_EMBEDDING_DIMS"),
        ("WEKADOCS_SECTION_TOKEN_BUDGET", "-5", "WEKADOCS_SECTION_TOKEN_BUDGET"),
        ("WEKADOCS_EMBEDDING_DEVICE", "tpu", "WEKADOCS_EMBEDDING_DEVICE"),
    ],
)
def test_invalid_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert named in str(caught.value)
    assert [name for name, _ in caught.value.problems if named in name]


def test_bad_yaml_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("neo4j_port: [1, 2\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(listing)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("neo4j_prot: 1\n")
    with pytest.raises(SettingsError, match="neo4j_prot: unknown setting"):
        load_settings(unknown)


def test_a_bundled_model_brings_its_vector_size() -> None:
    assert Settings().embedding_dims == 384
    assert Settings(embedding_model="all-mpnet-base-v2").embedding_dims == 768
    assert Settings(embedding_model="/models/mine", embedding_dims=512).embedding_dims == 512


def test_a_model_that_is_not_bundled_needs_its_vector_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEKADOCS_EMBEDDING_MODEL", "/models/mine")
    with pytest.raises(SettingsError, match="WEKADOCS_EMBEDDING_DIMS"):
        load_settings(None)


@pytest.mark.parametrize("auth, host, enabled", [
    ("auto", "127.0.0.1", False), ("auto", "localhost", False), ("auto", "::1", False), ("auto", "127.0.0.2", False),
    ("auto", "0.0.0.0", True), ("auto", "::", True), ("auto", "10.1.2.3", True), ("auto", "mcp.example.com", True),
    ("on", "127.0.0.1", True), ("off", "0.0.0.0", False),
])
def test_auth_auto_is_on_unless_serve_listens_on_loopback_only(auth: str, host: str, enabled: bool) -> None:
    assert load_settings(auth=auth, serve_host=host).auth_enabled is enabled


def test_auth_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEKADOCS_AUTH", raising=False)
    assert load_settings().auth == "auto"
    monkeypatch.setenv("WEKADOCS_AUTH", "on")
    assert load_settings().auth_enabled


def test_jwt_settings_come_as_a_set() -> None:
    with pytest.raises(SettingsError, match="WEKADOCS_JWT_AUDIENCE"):
        load_settings(jwt_issuer="https://issuer.test", jwt_jwks="/tmp/jwks.json")
    full = load_settings(jwt_issuer="https://issuer.test", jwt_audience="a", jwt_jwks="/tmp/jwks.json")
    assert full.jwt_audience == "a"


def test_rate_limits_per_scope_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEKADOCS_RATE_LIMITS", '{"docs:read": {"rate": 2, "burst": 5}}')
    assert load_settings().rate_limits["docs:read"].burst == 5
    monkeypatch.setenv("WEKADOCS_RATE_LIMITS", '{"docs:read": {"rate": 0, "burst": 5}}')
    with pytest.raises(SettingsError, match="WEKADOCS_RATE_LIMITS"):
        load_settings()
