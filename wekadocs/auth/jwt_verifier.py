"""JWT access tokens from an external OAuth 2.1 authorization server.

PyJWT checks the signature, ``exp``/``nbf``/``iat`` (with a leeway for clock
skew), ``iss`` and ``aud``; we never parse or verify a signature ourselves.
Only RS256 and ES256 are accepted, and a key only signs with its own
algorithm: a token that names ``none``, an HMAC algorithm, or an RSA key
under ES256 is refused before any cryptography runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken

from wekadocs.errors import AuthUnavailable, SettingsError

__all__ = ["ALGORITHMS", "JwtVerifier"]

ALGORITHMS = ("RS256", "ES256")


class JwtVerifier:
    """The SDK's ``TokenVerifier`` for JWTs signed by keys in a JWKS file or URL.

    A URL is fetched by PyJWT's ``PyJWKClient`` (cached five minutes, refetched
    once when an unknown ``kid`` shows up, i.e. after a key rotation); a file
    is re-read when it changes."""

    def __init__(self, *, issuer: str, audience: str, jwks: str, leeway_s: float = 30.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._client: jwt.PyJWKClient | None = None
        self._path: Path | None = None
        if jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(jwks, lifespan=300, timeout=5)
        else:
            self._path = Path(jwks).expanduser()
            self._keys: dict[str, jwt.PyJWK] = {}
            self._loaded_mtime = -1.0
            self._lock = threading.Lock()
            self._file_keys()  # a missing or broken file stops the replica at start, by name

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.count(".") != 2 or len(token) > 16_384:
            return None
        if self._client is not None:  # may fetch the JWKS: keep the event loop free
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)

    def verify(self, token: str) -> AccessToken | None:
        """None for any token that is not valid for us (the edge answers 401)."""
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in ALGORITHMS:
                return None
            key = self._signing_key(token, header.get("kid"))
            if key is None or key.algorithm_name != algorithm:
                return None
            claims = jwt.decode(
                token, key.key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway_s, options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthUnavailable(f"the issuer's signing keys cannot be fetched: {exc}") from exc
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims["sub"]),
            scopes=_scopes(claims),
            # The SDK's bearer backend compares expires_at with its own clock and
            # no leeway; give it the same allowance PyJWT just applied.
            expires_at=int(claims["exp"] + self.leeway_s),
            subject=f"jwt:{claims['sub']}",
            claims=claims,
        )

    def _signing_key(self, token: str, kid: Any) -> jwt.PyJWK | None:
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError:
                raise
            except jwt.PyJWKClientError:  # no key with that kid, even after a refetch
                return None
        keys = self._file_keys()
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(str(kid))

    def _file_keys(self) -> dict[str, jwt.PyJWK]:
        assert self._path is not None
        with self._lock:
            try:
                mtime = self._path.stat().st_mtime
                if mtime != self._loaded_mtime:
                    data = json.loads(self._path.read_text(encoding="utf-8"))
                    jwks = jwt.PyJWKSet.from_dict(data)
                    self._keys = {str(k.key_id or i): k for i, k in enumerate(jwks.keys)}
                    self._loaded_mtime = mtime
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                if self._loaded_mtime < 0:
                    raise SettingsError([("WEKADOCS_JWT_JWKS", f"cannot read the JWKS {self._path}: {exc}")]) from exc
                # A file being rewritten: keep serving the keys read last.
            return self._keys


def _scopes(claims: dict[str, Any]) -> list[str]:
    """RFC 9068 ``scope`` (space-separated), or ``scp`` as some issuers send it."""
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list):
        return [str(s) for s in raw]
    return []
