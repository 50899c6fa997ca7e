"""JWT access tokens: what PyJWT accepts for us and what it must refuse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest

from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer
from wekadocs.auth.jwt_verifier import JwtVerifier
from wekadocs.errors import AuthUnavailable, SettingsError


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def verifier(issuer: Issuer, tmp_path: Path) -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=str(issuer.write_jwks(tmp_path / "jwks.json")),
                       leeway_s=30)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_gives_subject_and_scopes(verifier: JwtVerifier, issuer: Issuer, alg: str) -> None:
    access = asyncio.run(verifier.verify_token(issuer.token(alg=alg, scope="docs:read metrics:read")))
    assert access is not None
    assert access.subject == "jwt:alice" and access.scopes == ["docs:read", "metrics:read"]
    assert access.claims is not None and access.claims["iss"] == ISSUER


def test_clock_skew_within_the_leeway_is_accepted(verifier: JwtVerifier, issuer: Issuer) -> None:
    assert verifier.verify(issuer.token(exp_in=-10)) is not None
    assert verifier.verify(issuer.token(exp_in=-120)) is None


@pytest.mark.parametrize("case", ["wrong audience", "wrong issuer", "expired", "bad signature", "unknown kid",
                                  "rsa key under ES256", "HS256 with the public key", "alg none",
                                  "no sub", "tampered payload", "garbage"])
def test_invalid_tokens_are_refused(verifier: JwtVerifier, issuer: Issuer, case: str) -> None:
    good = issuer.token()
    token = {
        "wrong audience": lambda: issuer.token(aud="another-service"),
        "wrong issuer": lambda: issuer.token(iss="https://evil.test"),
        "expired": lambda: issuer.token(exp_in=-3600),
        "bad signature": lambda: issuer.token(key=issuer.other_rsa),
        "unknown kid": lambda: issuer.token(kid="rsa-2"),
        "rsa key under ES256": lambda: _resign(good, "ES256", "rsa-1"),
        "HS256 with the public key": lambda: _hs256_with(good, json.dumps(issuer.jwks()["keys"][0]).encode()),
        "alg none": lambda: _resign(good, "none", "rsa-1", signature=""),
        "no sub": lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 2**40}, issuer.rsa, algorithm="RS256",
                                     headers={"kid": "rsa-1"}),
        "tampered payload": lambda: _tamper(good),
        "garbage": lambda: "a.b.c",
    }[case]()
    assert asyncio.run(verifier.verify_token(token)) is None


def test_a_missing_jwks_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="WEKADOCS_JWT_JWKS"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=str(tmp_path / "nope.json"))


@pytest.fixture
def jwks_server(issuer: Issuer) -> Iterator[str]:
    body = json.dumps(issuer.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


def test_keys_from_a_jwks_url(jwks_server: str, issuer: Issuer) -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks_server)
    assert asyncio.run(verifier.verify_token(issuer.token(alg="ES256"))) is not None
    assert asyncio.run(verifier.verify_token(issuer.token(aud="x"))) is None


def test_an_unreachable_jwks_url_is_unavailable_not_invalid(issuer: Issuer) -> None:
    from cluster.processes import free_port

    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=f"http://127.0.0.1:{free_port()}/jwks.json")
    with pytest.raises(AuthUnavailable):
        verifier.verify(issuer.token())


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _enc(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resign(token: str, alg: str, kid: str, signature: str | None = None) -> str:
    _, payload, sig = token.split(".")
    header = _enc(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{payload}.{sig if signature is None else signature}"


def _hs256_with(token: str, secret: bytes) -> str:
    """The algorithm-confusion attack: HMAC keyed with the published public key
    (built by hand, as an attacker would: PyJWT refuses to sign it)."""
    header = _enc(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = token.split(".")[1]
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_enc(mac)}"


def _tamper(token: str) -> str:
    header, payload, sig = token.split(".")
    claims = json.loads(_b64(payload))
    claims["scope"] = "docs:read metrics:read admin"
    return f"{header}.{_enc(json.dumps(claims).encode())}.{sig}"
