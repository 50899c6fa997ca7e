"""The configured sources, kept in Redis so every process sees the same list."""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wekadocs.errors import WekadocsError
from wekadocs.redis_errors import redis_errors

__all__ = ["SourceConfig", "SourceRegistry", "SourceError", "repo_key"]


class SourceError(WekadocsError):
    """A source name is unknown or taken, or its configuration is invalid."""


_ENV = r"^[A-Z_][A-Z0-9_]*$"


class SourceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="lower-case slug")
    kind: Literal["git", "github", "notion", "confluence"]
    url: str = Field(min_length=1, max_length=500)
    # a branch name git accepts, never one that reads as an option
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
    docs_path: str = ""
    webhook_secret_env: str | None = Field(default=None, pattern=_ENV,
                                           description="environment variable holding the webhook secret")
    token_env: str | None = Field(default=None, pattern=_ENV,
                                  description="environment variable holding the API token (github, notion, confluence)")
    user_env: str | None = Field(default=None, pattern=_ENV,
                                 description="confluence: variable holding the account e-mail for basic auth; "
                                             "without it the token is sent as a bearer token")
    api_url: str = Field(default="", max_length=500,
                         description="API base URL when it is not the public one (GitHub Enterprise, a test server)")
    space: str = Field(default="", max_length=100, description="confluence: the space key to follow")
    version: str = Field(default="", max_length=100,
                         description="version label of the ingested pages (default: the branch, or 'latest')")
    interval_s: float = Field(default=60.0, ge=1.0, le=86_400.0, description="seconds between polls")

    @property
    def effective_version(self) -> str:
        if self.version:
            return self.version
        return self.branch if self.kind in ("git", "github") else "latest"

    @property
    def repository_key(self) -> str:
        """``host/owner/repo`` of a repository source, as a push webhook names
        it. A GitHub source may be given as plain ``OWNER/REPO`` (the README's
        way): its host is GitHub's, or the Enterprise host of ``api_url``."""
        key = repo_key(self.url)
        if self.kind == "github" and re.fullmatch(r"[^/:@]+/[^/:@]+", key):
            host = (urlsplit(self.api_url).hostname or "") if self.api_url else ""
            key = f"{host.removeprefix('api.') or 'github.com'}/{key}"
        return key


def repo_key(url: str) -> str:
    """``host/owner/repo`` for any spelling of a repository URL (https, ssh,
    scp-like, with or without ``.git``), so a webhook's repository matches
    the source that names it."""
    text = url.strip().lower()
    text = re.sub(r"^[a-z+]+://", "", text)  # scheme
    text = re.sub(r"^[^@/]+@", "", text)  # user@
    text = re.sub(r"^([^/:]+):(?!\d+/)", r"\1/", text)  # scp-like host:path
    text = re.sub(r"^([^/]+):\d+/", r"\1/", text)  # port
    return text.removesuffix("/").removesuffix(".git")


class SourceRegistry:
    def __init__(self, client: redis.Redis, *, key: str = "wekadocs:sources") -> None:
        self.client = client
        self.key = key

    def add(self, source: SourceConfig) -> None:
        with redis_errors(f"adding source {source.name}"):
            added = self.client.hsetnx(self.key, source.name, source.model_dump_json())
        if not added:
            raise SourceError(f"a source named {source.name!r} exists already")

    def get(self, name: str) -> SourceConfig:
        with redis_errors("reading a source"):
            raw = self.client.hget(self.key, name)
        if raw is None:
            raise SourceError(f"no source named {name!r}")
        return _parse(name, raw)

    def list(self) -> list[SourceConfig]:
        with redis_errors("listing sources"):
            raw = self.client.hgetall(self.key)
        return [_parse(name, value) for name, value in sorted(raw.items())]

    def remove(self, name: str) -> None:
        with redis_errors("removing a source"):
            removed = self.client.hdel(self.key, name)
        if not removed:
            raise SourceError(f"no source named {name!r}")

    def find_by_repo(self, *urls: str) -> list[SourceConfig]:
        """Repository sources naming any of ``urls`` (a webhook carries several
        spellings of one repository): one read of the registry."""
        wanted = {repo_key(url) for url in urls}
        return [s for s in self.list() if s.kind in ("git", "github") and s.repository_key in wanted]


def _parse(name: str, raw: str) -> SourceConfig:
    try:
        return SourceConfig.model_validate_json(raw)
    except ValidationError as exc:
        raise SourceError(f"source {name!r} is stored in a form this version cannot read: {exc}") from exc
