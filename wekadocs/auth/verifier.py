"""The one token verifier the MCP app hands to the SDK: API tokens and JWTs."""

from __future__ import annotations

import redis.asyncio
from mcp.server.auth.provider import AccessToken

from wekadocs.auth.api_tokens import TOKEN_PREFIX, ApiTokenVerifier
from wekadocs.auth.jwt_verifier import JwtVerifier
from wekadocs.settings import Settings

__all__ = ["BearerTokens", "bearer_tokens"]


class BearerTokens:
    """Sends a token to the verifier of its kind: ``wdk_…`` to Redis, anything
    else to the JWT verifier (when an issuer is configured)."""

    def __init__(self, api: ApiTokenVerifier, jwt: JwtVerifier | None) -> None:
        self.api = api
        self.jwt = jwt

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.startswith(TOKEN_PREFIX):
            return await self.api.verify_token(token)
        if self.jwt is not None:
            return await self.jwt.verify_token(token)
        return None


def bearer_tokens(settings: Settings, client: redis.asyncio.Redis) -> BearerTokens:
    jwt = None
    if settings.jwt_issuer and settings.jwt_audience and settings.jwt_jwks:
        jwt = JwtVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience, jwks=settings.jwt_jwks,
                          leeway_s=settings.jwt_leeway_s)
    return BearerTokens(ApiTokenVerifier(client), jwt)
