"""One error tree for the whole service.

Adapters translate driver exceptions into these at a single seam (``raise ...
from exc``), so callers, the CLI and the MCP/HTTP handlers only ever match on
our classes. Every error carries a message a user can act on.
"""

from __future__ import annotations

__all__ = [
    "WekadocsError",
    "SettingsError",
    "ServiceError",
    "ServiceStartError",
    "MissingToolError",
    "StoreError",
    "GraphStoreError",
    "VectorStoreError",
    "VectorStoreUnavailable",
    "CollectionNotFound",
    "ParseError",
    "QueryError",
    "CypherRejected",
    "AuthError",
    "AuthUnavailable",
    "BackupError",
]


class WekadocsError(Exception):
    """Base of every error this project raises on purpose."""


class SettingsError(WekadocsError):
    """Settings are invalid; the message names each offending setting."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"  {name}: {why}" for name, why in problems]
        super().__init__("invalid settings:\n" + "\n".join(lines))


class ServiceError(WekadocsError):
    """A local service (Neo4j, Redis) could not be managed."""


class ServiceStartError(ServiceError):
    """A service did not come up; the message names its log file."""

    def __init__(self, service: str, reason: str, log_file: str | None = None) -> None:
        self.service = service
        self.log_file = log_file
        where = f" (see {log_file})" if log_file else ""
        super().__init__(f"{service} did not start: {reason}{where}")


class MissingToolError(ServiceError):
    """A program a service needs (java, mvn, redis-server) is not installed."""

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        super().__init__(f"{tool} is not installed or not on PATH: {hint}")


class StoreError(WekadocsError):
    """A store (graph, vectors, cache) rejected or failed an operation."""


class GraphStoreError(StoreError):
    """Neo4j failed or refused an operation."""


class VectorStoreError(StoreError):
    """The vector store failed or refused an operation."""


class VectorStoreUnavailable(VectorStoreError):
    """The vector store cannot be reached; callers may degrade gracefully."""


class CollectionNotFound(VectorStoreError):
    """A collection or alias does not exist."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"vector collection or alias {name!r} does not exist")


class ParseError(WekadocsError):
    """One input file could not be parsed; the run goes on without it."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class QueryError(WekadocsError):
    """A query or tool call was invalid; the message says what to change."""


class CypherRejected(QueryError):
    """The Cypher validator refused a statement before (or instead of) running it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Cypher rejected: {reason}")


class AuthError(WekadocsError):
    """An API token could not be created or revoked (a name taken, unknown, or malformed)."""


class AuthUnavailable(WekadocsError):
    """A bearer token cannot be checked right now (Redis or the issuer's JWKS
    unreachable): the edge answers 503, not 401, so clients retry rather than
    discard a good token."""


class BackupError(WekadocsError):
    """A backup could not be taken, or a restore was refused or failed its
    verification; the message says which part and what to do."""
