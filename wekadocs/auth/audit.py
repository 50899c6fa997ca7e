"""The audit stream: one entry per MCP tool call, in a capped Redis stream.

An entry says who called (the token's subject), which tool, a SHA-256 of the
arguments (canonical JSON: sorted keys, no spaces; so equal calls hash
equally, and a question's text is not kept), how many results came back,
the latency and the outcome. ``XADD … MAXLEN ~`` keeps about
``audit_max_entries`` of them, trimmed in whole macro-nodes so it stays O(1).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import redis
import redis.asyncio
from pydantic import BaseModel

from wekadocs.redis_errors import redis_errors

__all__ = ["AUDIT_STREAM", "AuditEntry", "AuditLog", "AuditReader", "arguments_digest"]

AUDIT_STREAM = "wekadocs:audit"


class AuditEntry(BaseModel):
    at: float  # unix time the call ended
    subject: str  # token:<name>, jwt:<sub>, or anonymous when authentication is off
    tool: str
    args_sha256: str
    results: int  # evidence items in the answer; 0 for an error
    latency_ms: float
    outcome: Literal["ok", "error", "exception"]  # error: a tool error answered; exception: none


def arguments_digest(arguments: Any) -> str:
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class AuditLog:
    """The writing side, in the MCP replica (asyncio)."""

    def __init__(self, client: redis.asyncio.Redis, *, max_entries: int, stream: str = AUDIT_STREAM) -> None:
        self.client = client
        self.max_entries = max_entries
        self.stream = stream

    async def record(self, entry: AuditEntry) -> None:
        fields = {k: str(v) for k, v in entry.model_dump().items()}
        await self.client.xadd(self.stream, fields, maxlen=self.max_entries, approximate=True)  # type: ignore[arg-type]


class AuditReader:
    """The reading side, for ``wekadocs audit tail``."""

    def __init__(self, client: redis.Redis, *, stream: str = AUDIT_STREAM) -> None:
        self.client = client
        self.stream = stream

    def last(self, count: int) -> list[tuple[str, AuditEntry]]:
        with redis_errors("reading the audit stream"):
            rows = self.client.xrevrange(self.stream, count=count)
        return [(_text(i), _entry(f)) for i, f in reversed(rows)]

    def follow(self, after: str = "$", block_ms: int = 1000) -> Iterator[tuple[str, AuditEntry]]:
        """New entries as they come, forever (the caller stops it)."""
        last = after
        while True:
            with redis_errors("reading the audit stream"):
                answer = self.client.xread({self.stream: last}, block=block_ms, count=100)
            for _, rows in answer or []:
                for entry_id, fields in rows:
                    last = _text(entry_id)
                    yield last, _entry(fields)
            if not answer:
                time.sleep(0)  # blocked in Redis already; just go round


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(fields: dict[Any, Any]) -> AuditEntry:
    return AuditEntry.model_validate({_text(k): _text(v) for k, v in fields.items()})
