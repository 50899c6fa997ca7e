"""Every panel of every dashboard shows data on the live stack: after a short
workload (an ingest, a reconcile, a failed re-embed, MCP calls on the deployed
service, a degraded answer, a refused Cypher statement, two git sources — one
followed through a push webhook, one whose breaker opens), each panel
expression, with its variables filled in as Grafana would, must return series
with a number from our Prometheus (scraping every 5 s in tests)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import redis
from mcp import Client
from ray import serve

from cluster.freshness import freshness_status
from cluster.jobs import run_reconcile, run_reembed
from cluster.monitoring.dashboards import build
from cluster.serve_runner import ServedApp
from cluster.source_admin import SourceAdmin
from pipelines.reembed import ReembedError
from serve_apps.mcp_app import application
from serve_apps.mcp_tools import build_mcp_server
from serve_apps.query_metrics import QueryMetrics
from tests.cluster.test_dashboards import FILES, load, substitute
from tests.conftest import SLICE_VERSION
from tests.git_repo import Repo
from wekadocs.change_queue import ChangeQueue
from wekadocs.cypher_guard import CypherGuard, GuardLimits
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.query.engine import QueryEngine
from wekadocs.query.tools import Toolbox
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig
from wekadocs.source_state import SourceState

# Ray's agents export on their own schedule (up to ~10 s), then a scrape (5 s);
# on a loaded 2-core machine one export took over 90 s (tests/prometheus_text.py).
DEADLINE_S = 240
SECRET_ENV = "WEKADOCS_DASHBOARDS_HOOK_SECRET"
SECRET = "dashboards-secret"
KEYWORD_ONLY = "/keyword-only"


def prometheus(settings: Settings, path: str, **params: Any) -> Any:
    response = httpx.get(f"http://127.0.0.1:{settings.prometheus_port}{path}", params=params, timeout=30)
    assert response.status_code == 200, f"{path} {params}: {response.text}"
    return response.json()["data"]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.5)


@ray.remote(num_cpus=0)
class GuardedServer:
    """The MCP server a replica builds (same tools, same metrics), over a
    validator that allows no LIMIT above 0, so each search's first statement
    is refused. No client argument can make the service's own validator
    refuse a statement (the templates are fixed and bounded); this is the
    cheap way to have the refusal counted, by the real code, in a process
    Ray's agent exports from."""

    def __init__(self, settings: Settings) -> None:
        self.graph = GraphStore.connect(settings)
        box = Toolbox(QueryEngine(CypherGuard(self.graph, GuardLimits(max_limit=0)), None, None))
        self.server = build_mcp_server(lambda: box, QueryMetrics())

    def search(self, query: str) -> str:
        async def call() -> str:
            async with Client(self.server) as client:
                result = await client.call_tool("search_documentation", {"query": query})
                assert result.is_error
                return str(result.content[0].text)  # type: ignore[union-attr]

        return asyncio.run(call())


def mcp_calls(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def go() -> list[Any]:
        async with Client(url) as client:
            return [await client.call_tool(tool, args) for tool, args in calls]

    return asyncio.run(go())


def github_push(url: str, repository: str, after: str, added: list[str], delivery: str) -> httpx.Response:
    """The signed push GitHub would send, to the deployed webhook app."""
    body = json.dumps({"ref": "refs/heads/main", "after": after, "repository": {"clone_url": repository},
                       "commits": [{"id": after, "added": added, "modified": [], "removed": []}]}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{url}/github", content=body, timeout=30, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
        "X-Hub-Signature-256": signature})


@pytest.fixture(scope="module")
def workload(settings: Settings, graph: GraphStore, served: ServedApp, slice_root: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    admin = SourceAdmin(settings)
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    state, writer = SourceState(client), GraphWriter(graph)
    tag = uuid.uuid4().hex[:6]
    good, broken = f"dash-{tag}", f"dash-broken-{tag}"
    guarded = GuardedServer.remote(settings)  # type: ignore[attr-defined]
    base = served.url.removesuffix("/mcp")
    started = time.time()
    try:
        # Maintenance jobs: drift from a reconcile, and a re-embed that fails at once (a bad version).
        run_reconcile(settings, repair=False)
        with pytest.raises(ReembedError):
            run_reembed(settings, embedding_version=f"dash-bad!{tag}", model=settings.embedding_model, dims=None,
                        switch=False)

        # A git source followed by the consumer: a page copied from the slice (its vectors are
        # reused), a page of its own (embedded), a page no parser takes (a failure).
        repo = Repo(tmp_path_factory.mktemp("dashboards") / "docs-repo")
        copied = min(slice_root.rglob("*.md"), key=lambda p: p.stat().st_size)
        repo.write("docs/copied.md", copied.read_bytes())
        repo.write("docs/own.md", f"# Dashboards {tag}\n\nA page about panels and the queries behind them.\n")
        repo.write("docs/unreadable.md", b"# Not UTF-8 \xff\xfe\n")
        repo.commit("three pages")
        admin.add(SourceConfig(name=good, kind="git", url=str(repo.root), docs_path="docs", interval_s=3600,
                               webhook_secret_env=SECRET_ENV), environ={SECRET_ENV: SECRET})

        def applied(path: str) -> bool:
            return path in writer.documents(good, "main")

        wait_until(lambda: applied("own.md") and applied("copied.md"), "the first poll of the git source applied")
        # A push through the deployed webhook app: queued, then applied by the consumer.
        repo.write("docs/pushed.md", f"# Pushed {tag}\n\nA page that arrived with a push webhook.\n")
        second = repo.commit("a pushed page")
        pushed = github_push(served.webhooks_url, str(repo.root), second, ["docs/pushed.md"], f"push-{tag}")
        assert pushed.status_code == 202 and pushed.json()["accepted"] == 1, pushed.text
        wait_until(lambda: applied("pushed.md"), "the pushed page applied")

        # A source that cannot be reached: polls fail until its breaker opens; a push for it
        # is queued and left pending for a retry.
        missing = str(tmp_path_factory.mktemp("dashboards-gone") / "no-such-repo")
        admin.add(SourceConfig(name=broken, kind="git", url=missing, docs_path="docs", interval_s=3600,
                               webhook_secret_env=SECRET_ENV), environ={SECRET_ENV: SECRET})
        for _ in range(12):
            if state.status(broken).get("breaker") == "open":
                break
            polls = int(state.status(broken).get("polls", 0))
            admin.poll_now(broken)
            wait_until(lambda: int(state.status(broken).get("polls", 0)) > polls, "a poll of the broken source", 60)
        assert state.status(broken).get("breaker") == "open", state.status(broken)
        retried = int(freshness_status(settings)["consumer"].get("retry_later", 0))
        ghost = github_push(served.webhooks_url, missing, "0" * 40, ["docs/ghost.md"], f"ghost-{tag}")
        assert ghost.status_code == 202 and ghost.json()["accepted"] == 1, ghost.text
        wait_until(lambda: int(freshness_status(settings)["consumer"].get("retry_later", 0)) > retried,
                   "the consumer leaving the unreachable source's event for a retry", 90)

        serve.run(application(settings, None, {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0}}),
                  name="dashboards-keyword-only", route_prefix=KEYWORD_ONLY, blocking=False)
        wait_until(lambda: _answers(f"{base}{KEYWORD_ONLY}/health"), "the keyword-only app answering", 180)
        # Ray exports a new series with all it observed so far, so rates only see what comes
        # after a series' first scrape: the calls run once, and again once Prometheus has them.
        for round_ in range(2):
            _query_calls(served.url, f"{base}{KEYWORD_ONLY}/mcp", guarded)
            if round_ == 0:
                wait_until(lambda: all(prometheus(settings, "/api/v1/query", query=q)["result"] for q in (
                    'ray_wekadocs_query_tool_latency_ms_count{tool="traverse_relationships",outcome="error"}',
                    "ray_wekadocs_query_degraded_answers_total", "ray_wekadocs_query_cypher_rejections_total")),
                    "the query metrics in Prometheus", DEADLINE_S)
        # The same for the consumer's histograms: one more push once Prometheus holds the series.
        wait_until(lambda: bool(prometheus(settings, "/api/v1/query",
                                           query="ray_wekadocs_change_age_seconds_count")["result"]),
                   "the consumer's metrics in Prometheus", DEADLINE_S)
        repo.write("docs/late.md", f"# Late {tag}\n\nA page pushed after the first scrape.\n")
        third = repo.commit("a late page")
        late = github_push(served.webhooks_url, str(repo.root), third, ["docs/late.md"], f"late-{tag}")
        assert late.status_code == 202 and late.json()["accepted"] == 1, late.text
        wait_until(lambda: applied("late.md"), "the late page applied")
        yield {"good": good, "broken": broken, "started": started}
    finally:
        for name in (good, broken):
            if any(c.name == name for c in admin.list()):
                admin.remove(name)
        ray.kill(guarded)
        # The unreachable source's event waits for its next delivery (30 s) to be dropped:
        # drop it now, as the consumer would, so the modules after this one find the queue empty.
        queue = ChangeQueue(client, capacity=settings.queue_capacity)
        queue.ack([d for d in queue.reclaim(f"dashboards-{tag}", 0, count=1000) if d.event.source in (good, broken)])
        client.close()
        admin.client.close()


def _query_calls(service: str, keyword_only: str, guarded: Any) -> None:
    """The deployed service: several tools, one call that ends in an error; the same
    deployment class serving keyword + graph only (no vector store): degraded answers; and
    a statement the validator refuses, counted by the real MCP server's metrics."""
    answers = mcp_calls(service, [
        ("search_documentation", {"query": "fixed port for NFS mountd", "version": SLICE_VERSION}),
        ("search_documentation", {"query": "how licensing works", "version": SLICE_VERSION}),
        ("explain_ranking", {"query": "background tasks", "version": SLICE_VERSION}),
        ("troubleshoot_error", {"error": "NFS mountd port", "version": SLICE_VERSION}),
        ("explain_architecture", {"topic": "alerts", "version": SLICE_VERSION}),
        ("traverse_relationships", {"start": "NFS", "edge_types": ["NOT_AN_EDGE"], "version": SLICE_VERSION}),
    ])
    assert [a.is_error for a in answers] == [False] * 5 + [True]
    degraded = mcp_calls(keyword_only, [
        ("search_documentation", {"query": "fixed port for NFS mountd", "version": SLICE_VERSION})] * 2)
    assert all(a.structured_content["diagnostics"]["degraded"] for a in degraded)
    assert "LIMIT" in ray.get(guarded.search.remote("refused statement"), timeout=120)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def _empty(settings: Settings, board: dict[str, Any], window: str) -> list[str]:
    """'panel: expression (why)' for each target that returns no series now,
    or only NaN."""
    empty = []
    for title, expr in build.expressions(board):
        query = substitute(expr, {"__rate_interval": window})
        result = prometheus(settings, "/api/v1/query", query=query)["result"]
        if not result:
            empty.append(f"'{title}': {query} (no series)")
        elif all(math.isnan(float(series["value"][1])) for series in result):
            # NaN: a quantile or ratio of nothing. +Inf is data: a quantile above the largest
            # bucket (a first call on a loaded 2-core machine can take over 10 s).
            empty.append(f"'{title}': {query} (only NaN)")
    return empty


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_panel_of_the_dashboard_shows_data(settings: Settings, workload: dict[str, Any], path: Path) -> None:
    """Rates are taken over a window reaching back to the start of the
    workload (Grafana's would be 4 scrapes): a panel must draw a number for
    what happened then, not only name a series."""
    board = load(path)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        window = f"{math.ceil((time.time() - workload['started']) / 60) + 1}m"
        empty = _empty(settings, board, window)
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not empty, f"{path.name}: panels that showed no data within {DEADLINE_S} s:\n" + "\n".join(empty)
    # Each variable offers values (Grafana's label_values is the label's values on that metric).
    for variable in board["templating"]["list"][1:]:
        metric, label = variable["definition"].removeprefix("label_values(").removesuffix(")").split(", ")
        values = prometheus(settings, f"/api/v1/label/{label}/values", **{"match[]": metric})
        assert values, f"{path.name}: variable {variable['name']} has no values"


def test_the_panels_show_what_the_workload_did(settings: Settings, workload: dict[str, Any]) -> None:
    """A few panels read back exactly: the open breaker, the reused vectors, the failed page."""
    def value(expr: str) -> dict[str, float]:
        result = prometheus(settings, "/api/v1/query", query=expr)["result"]
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}

    good, broken = workload["good"], workload["broken"]
    wait_until(lambda: list(value(f'max by (source) (ray_wekadocs_source_breaker_state{{source="{broken}"}})')
                            .values()) == [2.0], "the breaker panel showing the source open", DEADLINE_S)
    wait_until(lambda: sum(value(f'ray_wekadocs_ingest_embeddings_reused_total{{source="{good}"}}').values()) >= 1,
               "reused embeddings of the copied page", DEADLINE_S)
    wait_until(lambda: sum(value(f'ray_wekadocs_ingest_failures_total{{source="{good}"}}').values()) >= 1,
               "the unreadable page counted as a failure", DEADLINE_S)
