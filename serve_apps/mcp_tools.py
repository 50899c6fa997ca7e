"""The MCP server: nine tools over a :class:`~wekadocs.query.tools.Toolbox`.

Each tool's parameters are typed and described, so ``tools/list`` gives an
LLM client a JSON schema it can follow. A tool returns the ``Answer`` model,
which the SDK sends both as structured content and as JSON text. Expected
failures (``QueryError``, a refused Cypher statement) become tool errors with
the reason; the SDK itself answers unknown tools and wrong argument types.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from serve_apps.audit_middleware import AuditCalls
from serve_apps.query_metrics import QueryMetrics
from wekadocs.auth.audit import AuditLog
from wekadocs.errors import StoreError, WekadocsError
from wekadocs.query.answer import Answer
from wekadocs.query.engine import MAX_TOP_K
from wekadocs.query.query_text import MAX_QUERY_CHARS
from wekadocs.query.tools import EDGE_TYPES, MAX_DEPTH, Toolbox

__all__ = ["build_mcp_server"]

Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question, in words")]
# Every argument is bounded: a hostile client must not grow the replica's
# memory, its caches or an error message with it.
MAX_VERSION_CHARS = 100  # what a source's version label may be (source_registry.py)
MAX_PATH_PREFIX_CHARS = 500
Version = Annotated[str | None, Field(max_length=MAX_VERSION_CHARS, description=(
    "one version such as '4.4' or 'main', across every source that has it; default: the current version of "
    "each source (its highest numeric version, or for a source with named versions only, the one ingested last)"))]
PathPrefix = Annotated[str | None, Field(max_length=MAX_PATH_PREFIX_CHARS,
                                          description="only pages under this path, e.g. 'operation-guide/'")]
EdgeTypes = Annotated[list[Annotated[str, Field(max_length=40)]] | None, Field(
    max_length=len(EDGE_TYPES), description=f"edge types to follow; default all of {list(EDGE_TYPES)}")]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description=f"how many sections to return (1-{MAX_TOP_K})")]
Subject = Annotated[str, Field(min_length=1, max_length=500,
                               description="an entity name (command, setting, alert…) or a section/entity id")]

INSTRUCTIONS = (
    "Search and navigate the WEKA documentation graph. Every answer carries evidence "
    "(section id, page path, heading, anchor, version) and a confidence in 0..1; cite the evidence."
)
_READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)


def build_mcp_server(toolbox: Callable[[], Toolbox], metrics: QueryMetrics | None = None, *,
                     auth: AuthSettings | None = None, token_verifier: TokenVerifier | None = None,
                     audit: AuditLog | None = None) -> MCPServer:
    """``toolbox`` is called per request, so the server can be built before
    the stores are reachable and a replica recovers once they are. With
    ``auth`` and ``token_verifier`` the SDK requires a bearer token on ``/mcp``;
    with ``audit`` every tool call is written to the audit stream."""
    mcp: MCPServer = MCPServer(name="wekadocs", instructions=INSTRUCTIONS, auth=auth, token_verifier=token_verifier,
                               middleware=[AuditCalls(audit)] if audit else None)

    def call(tool: str, **kwargs: Any) -> Answer:
        started = time.perf_counter()
        box = toolbox()
        rejections_before = box.engine.guard.rejections
        outcome, answer = "error", None
        try:
            answer = getattr(box, tool)(**kwargs)
            outcome = "ok"
            return answer
        except StoreError as exc:
            raise ToolError(f"{tool} failed: a store is unavailable: {exc}") from exc
        except WekadocsError as exc:
            raise ToolError(f"{tool}: {exc}") from exc
        finally:
            if metrics is not None:
                elapsed = (time.perf_counter() - started) * 1000
                metrics.record(tool, outcome, elapsed, answer.diagnostics if answer else None)
                metrics.rejected(box.engine.guard.rejections - rejections_before)

    @mcp.tool(annotations=_READ_ONLY)
    def search_documentation(query: Query, version: Version = None, path_prefix: PathPrefix = None,
                             top_k: TopK = 10) -> Answer:
        """Find the documentation sections that answer a question (hybrid keyword + vector + graph)."""
        return call("search_documentation", query=query, version=version, path_prefix=path_prefix, top_k=top_k)

    @mcp.tool(annotations=_READ_ONLY)
    def traverse_relationships(
        start: Subject,
        edge_types: EdgeTypes = None,
        depth: Annotated[int, Field(ge=1, le=MAX_DEPTH, description="hops to follow")] = 1,
        version: Version = None,
        limit: TopK = 25,
    ) -> Answer:
        """What is connected to an entity or section: typed edges with the section that justifies each."""
        return call("traverse_relationships", start=start, edge_types=edge_types, depth=depth,
                    version=version, limit=limit)

    @mcp.tool(annotations=_READ_ONLY)
    def compare_systems(
        first: Annotated[str, Field(min_length=1, max_length=500, description="a command, setting or feature; or a page path")],
        second: Annotated[str, Field(min_length=1, max_length=500, description="what to compare it with (a page path: the same page)")],
        version: Version = None,
        second_version: Annotated[str | None, Field(max_length=MAX_VERSION_CHARS,
                                                    description="version for `second`; default: `version`")] = None,
    ) -> Answer:
        """Side by side: the parameters, requirements and sections of two things, or one page across two versions."""
        return call("compare_systems", first=first, second=second, version=version, second_version=second_version)

    @mcp.tool(annotations=_READ_ONLY)
    def troubleshoot_error(
        error: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="an alert or event name, or an error message")],
        version: Version = None,
        top_k: TopK = 5,
    ) -> Answer:
        """The alert/event an error message is about, the procedures and steps that resolve it, and related commands.

        Paste the name (ClockSkew) or the message as shown ("Clock skew on server"): it is matched by its words
        against the alert and event tables; when nothing matches well, the closest sections are returned."""
        return call("troubleshoot_error", error=error, version=version, top_k=top_k)

    @mcp.tool(annotations=_READ_ONLY)
    def explain_architecture(
        topic: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="a concept or component, e.g. 'tiering'")],
        version: Version = None,
        top_k: TopK = 8,
    ) -> Answer:
        """How something works: its defining sections, and what the docs' prerequisites say it requires or is required by."""
        return call("explain_architecture", topic=topic, version=version, top_k=top_k)

    @mcp.tool(annotations=_READ_ONLY)
    def disambiguate(term: Subject, version: Version = None) -> Answer:
        """The different things a term can mean here, each with the context that tells it apart."""
        return call("disambiguate", term=term, version=version)

    @mcp.tool(annotations=_READ_ONLY)
    def explain_ranking(query: Query, version: Version = None, path_prefix: PathPrefix = None,
                        top_k: TopK = 10) -> Answer:
        """Why search_documentation ranks its results as it does: every feature of every result
        (semantic, keyword, heading, coverage, graph, entity) and the weights that blend them."""
        return call("explain_ranking", query=query, version=version, path_prefix=path_prefix, top_k=top_k)

    @mcp.tool(annotations=_READ_ONLY)
    def show_path(source: Subject, target: Subject, version: Version = None) -> Answer:
        """How two entities are related: a shortest path of at most three hops inside the version (every
        section on it, and the section each edge came from), with evidence per hop."""
        return call("show_path", source=source, target=target, version=version)

    @mcp.tool(annotations=_READ_ONLY)
    def list_configs_affecting(target: Subject, version: Version = None, limit: TopK = 20) -> Answer:
        """The settings that change a command, feature or setting: a command's own parameters, and the settings documented in the same sections."""
        return call("list_configs_affecting", target=target, version=version, limit=limit)

    return mcp
