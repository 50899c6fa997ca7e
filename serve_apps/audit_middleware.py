"""Every ``tools/call`` into the audit stream, as an MCP server middleware.

It wraps the SDK's whole handling of a call (argument validation, unknown
tools, the tool itself), so calls the SDK refuses are audited too. The
caller is read from the SDK's auth context (``get_access_token``); with
authentication off every call is ``anonymous``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from wekadocs.auth.audit import AuditEntry, AuditLog, arguments_digest

__all__ = ["AuditCalls"]

log = logging.getLogger(__name__)


class AuditCalls:
    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        started = time.perf_counter()
        params = ctx.params or {}
        outcome, results = "exception", 0
        try:
            result = await call_next(ctx)
            outcome, results = _outcome(result)
            return result
        finally:
            token = get_access_token()
            entry = AuditEntry(
                at=time.time(), subject=(token.subject or f"client:{token.client_id}") if token else "anonymous",
                tool=str(params.get("name", ""))[:200], args_sha256=arguments_digest(params.get("arguments")),
                results=results, latency_ms=round((time.perf_counter() - started) * 1000, 2),
                outcome=outcome,  # type: ignore[arg-type]
            )
            try:
                await self.audit.record(entry)
            except redis.RedisError as exc:
                # The answer is not withheld for a lost audit line; the log says so.
                log.warning("audit entry lost (Redis failed: %s): %s", exc, entry.model_dump_json())


def _outcome(result: HandlerResult) -> tuple[str, int]:
    data = result.model_dump(by_alias=True) if hasattr(result, "model_dump") else (result or {})
    if data.get("isError"):
        return "error", 0
    structured = data.get("structuredContent") or {}
    evidence = structured.get("evidence") if isinstance(structured, dict) else None
    return "ok", len(evidence) if isinstance(evidence, list) else 0
