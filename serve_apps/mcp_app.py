"""The MCP query service as a Ray Serve deployment.

The MCP server speaks streamable HTTP at ``/mcp``, *stateless* and with JSON
responses: with server-side sessions and two replicas, a client's second
request reaches the replica that never saw its ``initialize`` and fails with
"Session not found". Stateless, any replica answers any request.

``@serve.ingress()`` without an app defers building it to the replica
(``__serve_build_asgi_app__``): a built Starlette app holds locks and a task
group and does not pickle. The replica connects to the stores on its first
request and keeps the connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx
import redis.asyncio
from mcp.server.transport_security import TransportSecuritySettings
from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import request_response

from serve_apps.auth import UnavailableAs503, edge_auth
from serve_apps.mcp_tools import build_mcp_server
from serve_apps.query_metrics import QueryMetrics
from serve_apps.request_body import BoundedBody
from wekadocs.auth.audit import AuditLog
from wekadocs.auth.rate_limit import RateLimiter
from wekadocs.auth.scopes import DOCS_READ, METRICS_READ
from wekadocs.errors import WekadocsError
from wekadocs.graph_store import GraphStore
from wekadocs.query.assembly import open_toolbox
from wekadocs.query.tools import Toolbox
from wekadocs.settings import Settings
from wekadocs.vectors import VectorStore

__all__ = ["MCPDeployment", "NoEventStream", "application", "MCP_PATH"]

MCP_PATH = "/mcp"
REOPEN_S = 30.0  # how often a degraded replica tries the vector store again
# A tool call's arguments are bounded far below this (a query, a path, a few names).
MAX_BODY_BYTES = 1_000_000
# Metric families /metrics passes through from the node's Ray metrics agent.
_EXPORTED = ("ray_wekadocs_query_", "ray_serve_")


@serve.deployment(name="MCPServer")
@serve.ingress()
class MCPDeployment:
    def __init__(self, settings: Settings, open_vectors: Callable[[], VectorStore] | None) -> None:
        """``open_vectors`` opens the vector store inside the replica (in a
        Ray cluster: a client of the store's owner actor); None serves
        keyword + graph only."""
        self.settings = settings
        self.open_vectors = open_vectors
        self.metrics = QueryMetrics()
        self._toolbox: Toolbox | None = None
        self._graph: GraphStore | None = None
        self._opened_at = 0.0
        self._lock = threading.Lock()

    def toolbox(self) -> Toolbox:
        """Connect on first use; a failed connection is retried by the next
        request. While the vector store is missing or failing, it is re-opened
        at most every ``REOPEN_S`` (in a Ray cluster this starts a new owner
        actor when the old one is gone), so a replica recovers by itself."""
        with self._lock:
            if self._toolbox is None:
                self._graph = self._graph or GraphStore.connect(self.settings)
                self._toolbox = open_toolbox(self.settings, self._open_vectors(), graph=self._graph)
                return self._toolbox
            engine = self._toolbox.engine
            wanted = self.open_vectors is not None and (engine.vectors is None or engine.vector_failure)
            if wanted and time.monotonic() - self._opened_at > REOPEN_S:
                vectors = self._open_vectors()
                if vectors is not None and engine.serving is not None:
                    engine.vectors, engine.vector_failure = vectors, None
                elif vectors is not None:  # started without vectors: load the model now
                    self._toolbox = open_toolbox(self.settings, vectors, graph=self._graph)
            return self._toolbox

    def _open_vectors(self) -> VectorStore | None:
        self._opened_at = time.monotonic()
        if self.open_vectors is None:
            return None
        try:
            return self.open_vectors()
        except (WekadocsError, RuntimeError) as exc:
            print(f"vector store unavailable, answering from keyword + graph: {exc}")
            return None

    def __serve_build_asgi_app__(self) -> Any:
        """With authentication on, ``/mcp`` needs a token with ``docs:read``
        and ``/metrics`` one with ``metrics:read``; ``/health`` stays open
        (Serve and Kubernetes probe it)."""
        redis_client = redis.asyncio.Redis.from_url(self.settings.effective_redis_url, decode_responses=True,
                                                    socket_timeout=5, socket_connect_timeout=5)
        auth = edge_auth(self.settings, redis_client)
        audit = AuditLog(redis_client, max_entries=self.settings.audit_max_entries)
        mcp = build_mcp_server(self.toolbox, self.metrics, auth=auth.settings if auth else None,
                               token_verifier=auth.verifier if auth else None, audit=audit)

        @mcp.custom_route("/health", methods=["GET"])
        async def health(request: Request) -> Response:
            return await _health(self)

        async def metrics(request: Request) -> Response:
            return await _metrics(self.settings)

        mcp.custom_route("/metrics", methods=["GET"])(
            auth.require(request_response(metrics), METRICS_READ) if auth else metrics)
        if auth:
            auth.add_root_metadata(mcp)
        app = mcp.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=transport_security(self.settings),
        )
        if auth:
            auth.limit_rates(app, RateLimiter(redis_client, self.settings.rate_limits),
                             {MCP_PATH: DOCS_READ, "/metrics": METRICS_READ})
        # Outermost of the app's middleware, so around the SDK's token check
        # and inside Starlette's catch-all that would make it a 500.
        app.add_middleware(UnavailableAs503)
        return BoundedBody(NoEventStream(app, MCP_PATH), max_bytes=MAX_BODY_BYTES)

    def check_health(self) -> None:
        """Serve's health check: a replica whose graph connection broke is replaced."""
        if self._toolbox is not None:
            self._toolbox.engine.versions()


class NoEventStream:
    """``GET /mcp`` answers 405, as the MCP specification allows a server
    that offers no event stream.

    A stateless server never sends a message of its own, yet the SDK answers
    a GET by opening an event stream that stays silent until the client
    leaves: each such request held one of the replica's request slots, and a
    few dozen idle ones starved real calls. Clients treat the 405 as "no
    stream here" and carry on with POST."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path.rstrip("/")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].rstrip("/") == self.path:
            refusal = PlainTextResponse("this stateless MCP server offers no event stream; use POST",
                                        status_code=405, headers={"Allow": "POST, DELETE"})
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: Host and Origin must name this service.

    Requests with any other Host header get 421. Local names are always
    allowed; ``mcp_allowed_hosts`` adds the names clients really use (the
    ingress hostname, the service DNS name).
    """
    hosts = ["127.0.0.1", "localhost", "[::1]", *settings.mcp_allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for host in hosts for h in (host, f"{host}:*")],
        allowed_origins=[o for host in hosts for o in (f"http://{host}", f"http://{host}:*",
                                                        f"https://{host}", f"https://{host}:*")],
    )


async def _health(deployment: MCPDeployment) -> Response:
    def probe() -> dict[str, Any]:
        box = deployment.toolbox()
        report: dict[str, Any] = {"graph": "ok", "versions": box.engine.versions()}
        engine = box.engine
        try:
            if engine.vectors is None or engine.serving is None:
                report["vectors"] = "not configured"
            else:
                serving = engine.serving.current(engine.vectors)
                report.update(vectors="ok", collection=serving.collection, model=serving.model.name)
        except WekadocsError as exc:
            report["vectors"] = f"unavailable: {exc}"
        return report

    try:
        report = await anyio.to_thread.run_sync(probe)
    except WekadocsError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    report["status"] = "ok" if report["vectors"] == "ok" else "degraded"
    return JSONResponse(report)


async def _metrics(settings: Settings) -> Response:
    """This node's query and Serve metrics, in Prometheus text format.

    Prometheus should scrape every node's metrics agent directly (see
    docs/operations.md); this route is for a quick look from the MCP port.
    """
    url = f"http://127.0.0.1:{settings.ray_metrics_port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            body = (await client.get(url)).text
    except httpx.HTTPError as exc:
        return PlainTextResponse(f"# metrics agent unreachable at {url}: {exc}\n", status_code=503)
    lines = [line for line in body.splitlines()
             if any(line.startswith(p) or line.startswith(f"# HELP {p}") or line.startswith(f"# TYPE {p}")
                    for p in _EXPORTED)]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


def application(settings: Settings, open_vectors: Callable[[], VectorStore] | None,
                options: dict[str, Any] | None = None) -> Application:
    """The app bound to settings, with deployment options from the Serve config."""
    deployment = MCPDeployment.options(**options) if options else MCPDeployment
    return deployment.bind(settings, open_vectors)
