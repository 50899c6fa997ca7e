"""The Neo4j password: the one configured, else one generated for our own server.

A constant default would be the same on every install, so anyone who can reach
a Bolt port would know it. When ``NEO4J_PASSWORD`` is unset, the first process
that needs the password of the server we run ourselves (``services up``, or a
client that happens to come first) generates a random one and stores it in the
secrets folder (``<data_dir>/secrets/NEO4J_PASSWORD``, mode 0600 in a 0700
folder); every later process of that data dir, CLI, Ray actor or Serve
replica, reads the same file. An external server's password cannot be made up:
it must be configured.
"""

from __future__ import annotations

import secrets

from wekadocs.errors import SettingsError
from wekadocs.secrets import SecretStore
from wekadocs.settings import Settings

__all__ = ["neo4j_password", "SECRET_NAME", "LEGACY_DEFAULT"]

SECRET_NAME = "NEO4J_PASSWORD"
# The constant default of earlier releases. A data dir whose server was set up
# with it, before any password was stored, keeps working with it; the
# operator changes it as docs/operations.md ("Resetting") says.
LEGACY_DEFAULT = "wekadocs-local"


def neo4j_password(settings: Settings) -> str:
    """The password to set on our own server and to connect with."""
    if settings.neo4j_password is not None:
        return settings.neo4j_password.get_secret_value()
    store = SecretStore(settings.effective_secrets_dir, environ={})
    stored = store.get(SECRET_NAME)
    if stored:
        return stored
    if not settings.manages_neo4j:
        raise SettingsError([(
            "NEO4J_PASSWORD (neo4j_password)",
            "required with NEO4J_URI: an external server's password cannot be generated",
        )])
    value = LEGACY_DEFAULT if _initialised(settings) else secrets.token_hex(24)
    return store.create(SECRET_NAME, value)


def _initialised(settings: Settings) -> bool:
    """Whether our server's data exists already (and so has its password)."""
    data = settings.data_dir / "neo4j" / "data"
    return (data / "dbms" / "auth.ini").exists() or (data / "databases").exists()
