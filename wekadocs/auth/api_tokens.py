"""API tokens for scripts: minted by ``wekadocs tokens create``, kept in Redis
only as their SHA-256.

A leaked Redis dump therefore holds no usable token, and a token is shown
exactly once, when it is created. Verification looks the hash up in Redis on
every request (one GET, well under a millisecond), so ``tokens revoke`` takes
effect on every replica at the next request: nothing is cached.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import redis
import redis.asyncio
from mcp.server.auth.provider import AccessToken
from pydantic import BaseModel, ConfigDict, Field

from wekadocs.auth.scopes import SCOPES
from wekadocs.errors import AuthError, AuthUnavailable
from wekadocs.redis_errors import redis_errors

__all__ = ["TOKEN_PREFIX", "ApiToken", "ApiTokenStore", "ApiTokenVerifier", "token_hash"]

# Tells an API token from a JWT without parsing it, and makes a leaked one
# easy to find with secret scanners.
TOKEN_PREFIX = "wdk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_KEY = "wekadocs:auth"


class ApiToken(BaseModel):
    """What is stored for a token: never the token itself."""

    model_config = ConfigDict(frozen=True)

    name: str
    scopes: list[str]
    created_at: float = Field(description="unix time")

    @property
    def subject(self) -> str:
        """Who the token speaks for, in rate-limit keys and the audit stream."""
        return f"token:{self.name}"


def token_hash(token: str) -> str:
    """SHA-256 is enough here: a token has 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()


def _record_key(digest: str) -> str:
    return f"{_KEY}:token:{digest}"


_NAMES = f"{_KEY}:tokens"  # hash: name -> digest, to list and revoke by name


class ApiTokenStore:
    """Create, list and revoke tokens (the CLI's side)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def create(self, name: str, scopes: list[str]) -> tuple[str, ApiToken]:
        """Returns the token (shown once) and what is stored."""
        if not _NAME.match(name):
            raise AuthError(f"token name {name!r}: use 1-64 letters, digits, '.', '_', '-', '@'")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise AuthError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_hash(token)
        record = ApiToken(name=name, scopes=sorted(set(scopes)), created_at=time.time())
        with redis_errors("creating an API token"):
            if not self.client.hsetnx(_NAMES, name, digest):
                raise AuthError(f"a token named {name!r} exists; revoke it first or pick another name")
            self.client.set(_record_key(digest), record.model_dump_json())
        return token, record

    def list(self) -> list[ApiToken]:
        with redis_errors("listing API tokens"):
            digests = self.client.hgetall(_NAMES)
            pipe = self.client.pipeline(transaction=False)
            for digest in digests.values():
                pipe.get(_record_key(_text(digest)))
            raw = pipe.execute()
        return sorted((ApiToken.model_validate_json(r) for r in raw if r), key=lambda t: t.name)

    def revoke(self, name: str) -> ApiToken:
        with redis_errors("revoking an API token"):
            digest = self.client.hget(_NAMES, name)
            if digest is None:
                raise AuthError(f"no token named {name!r}")
            key = _record_key(_text(digest))
            pipe = self.client.pipeline(transaction=True)
            pipe.get(key)
            pipe.delete(key)
            pipe.hdel(_NAMES, name)
            raw, _, _ = pipe.execute()
        return ApiToken.model_validate_json(raw) if raw else ApiToken(name=name, scopes=[], created_at=0)


class ApiTokenVerifier:
    """The SDK's ``TokenVerifier`` for API tokens: one Redis GET per request."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        try:
            raw = await self.client.get(_record_key(token_hash(token)))
        except redis.RedisError as exc:
            raise AuthUnavailable(f"API tokens cannot be checked: Redis failed: {exc}") from exc
        if raw is None:
            return None
        record = ApiToken.model_validate_json(raw)
        return AccessToken(token=token, client_id=record.name, scopes=record.scopes, subject=record.subject,
                           claims={"token_name": record.name})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
