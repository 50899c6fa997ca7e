"""The scopes a bearer token may carry, and who needs which."""

from __future__ import annotations

__all__ = ["DOCS_READ", "METRICS_READ", "SCOPES"]

DOCS_READ = "docs:read"  # every MCP tool (they only read)
METRICS_READ = "metrics:read"  # /metrics
SCOPES = (DOCS_READ, METRICS_READ)
