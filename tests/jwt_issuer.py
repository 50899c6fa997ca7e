"""A test authorization server's signing side: RSA and EC keys made with
``cryptography`` at test time, a JWKS file, and tokens signed by PyJWT."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://issuer.test"
AUDIENCE = "wekadocs-test"


class Issuer:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # never published

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (("rsa-1", self.rsa, "RS256"), ("ec-1", self.ec, "ES256")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, *, alg: str = "RS256", kid: str | None = None, key: Any = None, sub: str = "alice",
              scope: str = "docs:read", aud: str = AUDIENCE, iss: str = ISSUER, exp_in: float = 300,
              **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "exp": int(now + exp_in), "scope": scope,
                   **claims}
        if key is None:
            key = self.ec if alg == "ES256" else self.rsa
        kid = kid or ("ec-1" if alg == "ES256" else "rsa-1")
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})
