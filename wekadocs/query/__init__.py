"""The query engine: hybrid retrieval, graph templates, answers with evidence.

Plain Python: the MCP deployment (``serve_apps/mcp_app.py``), the ``eval``
command and the tests call the same :class:`~wekadocs.query.engine.QueryEngine`.
"""
