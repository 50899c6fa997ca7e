"""Bearer-token authentication of the MCP app, with the ``mcp`` SDK's own pieces.

The SDK does the protocol: given ``AuthSettings`` and a ``TokenVerifier``,
its streamable HTTP app runs ``BearerAuthBackend`` on every request, wraps
``/mcp`` in ``RequireAuthMiddleware`` (401 with ``WWW-Authenticate: Bearer
… resource_metadata="…"``, 403 ``insufficient_scope``) and serves the RFC 9728
protected resource metadata at ``/.well-known/oauth-protected-resource/mcp``.
This module supplies the settings, the verifier (``wekadocs.auth``), the same
guard for ``/metrics`` with its own scope, the metadata at the root path too
(clients that do not insert the resource path look there), and the one place
where "cannot check a token now" becomes 503 instead of a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware

from wekadocs.auth.rate_limit import RateLimiter
from wekadocs.auth.scopes import DOCS_READ, SCOPES
from wekadocs.auth.verifier import BearerTokens, bearer_tokens
from wekadocs.errors import AuthUnavailable, StoreError
from wekadocs.settings import Settings

__all__ = ["EdgeAuth", "RateLimited", "UnavailableAs503", "edge_auth", "ROOT_METADATA_PATH"]

ROOT_METADATA_PATH = "/.well-known/oauth-protected-resource"
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class EdgeAuth:
    """What ``MCPServer`` needs to require tokens, and how to guard other routes."""

    settings: AuthSettings
    verifier: BearerTokens
    metadata_url: AnyHttpUrl

    def require(self, app: ASGIApp, scope: str) -> RequireAuthMiddleware:
        """The SDK's guard around one more ASGI app (``/metrics``)."""
        return RequireAuthMiddleware(app, [scope], self.metadata_url)

    def limit_rates(self, app: Any, limiter: RateLimiter, paths: dict[str, str]) -> None:
        """Add the rate limit to the SDK's app, innermost of its middleware:
        after the bearer token is read, before routing."""
        app.user_middleware.append(Middleware(RateLimited, limiter=limiter, paths=paths))

    def add_root_metadata(self, mcp: MCPServer) -> None:
        metadata = ProtectedResourceMetadata(
            resource=self.settings.resource_server_url,  # type: ignore[arg-type]
            authorization_servers=[self.settings.issuer_url],
            scopes_supported=list(SCOPES),
            resource_name="wekadocs",
        )
        mcp.custom_route(ROOT_METADATA_PATH, methods=["GET"])(ProtectedResourceMetadataHandler(metadata).handle)


def edge_auth(settings: Settings, client: redis.asyncio.Redis) -> EdgeAuth | None:
    """None when authentication is off (``WEKADOCS_AUTH=off``, or ``auto`` on loopback)."""
    if not settings.auth_enabled:
        return None
    resource = settings.effective_mcp_resource_url
    parts = urlsplit(resource)
    # With API tokens only there is no authorization server; the resource's own
    # origin is named (the SDK requires one), where discovery finds nothing.
    issuer = settings.jwt_issuer or f"{parts.scheme}://{parts.netloc}"
    auth = AuthSettings(  # strings, not AnyHttpUrl: they keep a path-less issuer free of a trailing "/"
        issuer_url=issuer,  # type: ignore[arg-type]
        resource_server_url=resource,  # type: ignore[arg-type]
        required_scopes=[DOCS_READ],
        validate_token_resource=False,  # our JWT verifier checks `aud` itself; API tokens have none
    )
    return EdgeAuth(auth, bearer_tokens(settings, client), build_resource_metadata_url(auth.resource_server_url))  # type: ignore[arg-type]


class UnavailableAs503:
    """The edge's answer when a token cannot be checked (Redis or the JWKS
    unreachable): 503 with ``Retry-After``, never a 500 and never a 401 that
    would make a client throw away a good token."""

    def __init__(self, app: ASGIApp, retry_after_s: int = 5) -> None:
        self.app = app
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except (AuthUnavailable, StoreError) as exc:
            if started:  # a reply is on its way: nothing else can be sent
                raise
            body = json.dumps({"error": "temporarily_unavailable", "error_description": str(exc)}).encode()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(self.retry_after_s).encode())]})
            await send({"type": "http.response.body", "body": body})


class RateLimited:
    """429 with ``Retry-After`` for a client over its rate on a guarded path.

    Sits inside the SDK's authentication middleware, so the client is the
    token's subject; requests without a valid token pass through to the
    SDK's 401. Each path is charged to the scope that guards it."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, paths: dict[str, str]) -> None:
        self.app = app
        self.limiter = limiter
        self.paths = {path.rstrip("/"): scope for path, scope in paths.items()}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        guarded = self.paths.get(scope["path"].rstrip("/")) if scope["type"] == "http" else None
        user = scope.get("user")
        if guarded is None or not isinstance(user, AuthenticatedUser):
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.take(guarded, user.access_token.subject or f"client:{user.username}")
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(decision.retry_after_s))
        body = json.dumps({"error": "rate_limited", "error_description":
                           f"over the {guarded} rate of this client; retry in {retry} s"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode())]})
        await send({"type": "http.response.body", "body": body})
