"""Who may call the service: bearer tokens (API tokens and JWTs), their scopes,
per-client rate limits and the audit stream of tool calls. Plain Python: the
MCP app (``serve_apps/auth.py``) wires these into the SDK's auth middleware."""
