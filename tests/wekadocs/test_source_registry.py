"""The source registry against the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from pydantic import ValidationError

from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceError, SourceRegistry


@pytest.fixture
def registry(settings: Settings, stack: object) -> Iterator[SourceRegistry]:
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    key = f"test:sources:{uuid.uuid4().hex[:8]}"
    yield SourceRegistry(client, key=key)
    client.delete(key)
    client.close()


def test_add_get_list_find_remove(registry: SourceRegistry) -> None:
    docs = SourceConfig(name="docs", kind="git", url="https://example.com/acme/docs.git", docs_path="docs")
    wiki = SourceConfig(name="wiki", kind="confluence", url="https://acme.atlassian.net/wiki")
    registry.add(docs)
    registry.add(wiki)
    assert registry.get("docs") == docs
    assert [s.name for s in registry.list()] == ["docs", "wiki"]
    assert registry.find_by_repo("git@example.com:acme/docs") == [docs]
    assert registry.find_by_repo("https://acme.atlassian.net/wiki") == []  # not a repository source
    with pytest.raises(SourceError, match="exists already"):
        registry.add(docs)
    registry.remove("docs")
    with pytest.raises(SourceError, match="no source named 'docs'"):
        registry.get("docs")
    with pytest.raises(SourceError, match="no source named 'docs'"):
        registry.remove("docs")


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValidationError, match="name"):
        SourceConfig(name="Bad Name!", kind="git", url="x")
    with pytest.raises(ValidationError, match="kind"):
        SourceConfig(name="ok", kind="svn", url="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="webhook_secret_env"):
        SourceConfig(name="ok", kind="git", url="x", webhook_secret_env="lower-case")
    for branch in ("--upload-pack=touch x", "-b", "", "main\nother", "a b"):
        with pytest.raises(ValidationError, match="branch"):  # never an option or two words on git's command line
            SourceConfig(name="ok", kind="git", url="x", branch=branch)
    assert SourceConfig(name="ok", kind="git", url="x", branch="release/4.4_x").branch == "release/4.4_x"
