"""The MCP service on a real Ray Serve deployment, driven by the official MCP client."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import ray
from mcp import Client

from cluster.serve_runner import SERVE_CONFIG, ServedApp, load_serve_config
from cluster.vector_owner import owner_name
from serve_apps.mcp_app import REOPEN_S
from tests.conftest import SLICE_VERSION as VERSION
from tests.conftest import graph_fingerprint
from tests.prometheus_text import wait_for_series
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings

# A known question per tool about the slice (its version passed: other modules
# add sources, and a call without a version covers each source's current one),
# and a page its evidence must cite.
TOOLS = {
    "search_documentation": {"query": "fixed port for NFS mountd", "top_k": 3},
    "traverse_relationships": {"start": "ClockSkew"},
    "compare_systems": {"first": "weka nfs global-config set", "second": "weka nfs interface-group add"},
    "troubleshoot_error": {"error": "Clock skew on server"},
    "explain_architecture": {"topic": "tiering"},
    "disambiguate": {"term": "mountd"},
    "explain_ranking": {"query": "deactivate a license", "top_k": 3},
    "show_path": {"source": "DriveCriticalWarnings", "target": "weka cluster drive deactivate"},
    "list_configs_affecting": {"target": "weka nfs global-config set"},
}
NFS = "additional-protocols/nfs-support/nfs-support-1.md"
ALERTS = "operation-guide/alerts/list-of-alerts.md"
CITES = {
    "search_documentation": NFS, "traverse_relationships": ALERTS, "compare_systems": NFS,
    "troubleshoot_error": ALERTS, "explain_architecture": "weka-system-overview/", "disambiguate": NFS,
    "explain_ranking": "licensing/", "show_path": ALERTS, "list_configs_affecting": NFS,
}


def call(url: str, tool: str, arguments: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with Client(url) as client:
            return await client.call_tool(tool, arguments)

    return asyncio.run(go())


def test_the_serve_config_validates_and_autoscales() -> None:
    schema = load_serve_config(SERVE_CONFIG)
    deployment = schema.applications[0].deployments[0]
    assert schema.applications[0].import_path == "cluster.serve_runner:build_app"
    assert deployment.autoscaling_config["min_replicas"] >= 1
    assert deployment.autoscaling_config["max_replicas"] > deployment.autoscaling_config["min_replicas"]
    assert [(a.name, a.route_prefix) for a in schema.applications] == [
        ("wekadocs-mcp", "/"), ("wekadocs-webhooks", "/webhooks")]


def test_the_webhook_app_is_served_beside_mcp(served: ServedApp) -> None:
    assert httpx.get(f"{served.webhooks_url}/health", timeout=30).json()["status"] == "ok"
    unknown = httpx.post(f"{served.webhooks_url}/github", json={"repository": {"clone_url": "https://x/y.git"}},
                         headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d1"}, timeout=30)
    assert unknown.status_code == 401  # unsigned: not even told whether the repository is configured
    broken = httpx.post(f"{served.webhooks_url}/github", content=b"{oops",
                        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d2"}, timeout=30)
    assert broken.status_code == 401  # the signature is checked before the body is parsed


def test_initialize_and_list_tools(served: ServedApp) -> None:
    async def go() -> Any:
        async with Client(served.url) as client:
            return client.server_capabilities, await client.list_tools()

    capabilities, listed = asyncio.run(go())
    assert capabilities.tools is not None
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == set(TOOLS)
    search = tools["search_documentation"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["top_k"]["maximum"] == 50
    assert all(tool.description for tool in tools.values())


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_answers_with_evidence(served: ServedApp, tool: str) -> None:
    result = call(served.url, tool, dict(TOOLS[tool], version=VERSION))
    assert not result.is_error, result.content
    structured = result.structured_content
    paths = [evidence["path"] for evidence in structured["evidence"]]
    assert any(path.startswith(CITES[tool]) for path in paths), (tool, paths)
    assert set(structured) >= {"answer", "evidence", "confidence", "diagnostics"}
    assert 0.0 <= structured["confidence"] <= 1.0
    assert json.loads(result.content[0].text)["answer"] == structured["answer"]
    for evidence in structured["evidence"]:
        assert set(evidence) == {"section_id", "document_id", "path", "heading", "anchor", "version",
                                 "score", "snippet"}
        assert evidence["version"] == VERSION


@pytest.mark.parametrize("tool, arguments, message", [
    ("search_documentation", {"query": ""}, "query"),
    ("search_documentation", {"query": "x" * 100_000}, "query"),
    ("search_documentation", {"query": "license", "top_k": 10**6}, "top_k"),
    ("search_documentation", {"query": 42}, "query"),
    ("search_documentation", {"query": "license", "version": "0.1"}, "not ingested"),
    ("traverse_relationships", {"start": "ClockSkew", "depth": 9}, "depth"),
    ("search_documentation", {"query": "license", "version": "4" * 10_000}, "version"),
    ("search_documentation", {"query": "license", "path_prefix": "a/" * 100_000}, "path_prefix"),
    ("traverse_relationships", {"start": "ClockSkew", "edge_types": [7] * 100_000}, "edge_types"),
    ("compare_systems", {"first": "a", "second": "b", "second_version": "x" * 1_000}, "second_version"),
    ("no_such_tool", {}, "no_such_tool"),
])
def test_bad_calls_are_tool_errors(served: ServedApp, graph: GraphStore, tool: str,
                                   arguments: dict[str, Any], message: str) -> None:
    before = graph_fingerprint(graph)
    result = call(served.url, tool, arguments)
    assert result.is_error
    assert message in result.content[0].text
    assert len(result.content[0].text) < 5_000  # a reason, not the argument echoed back or an error per item
    assert graph_fingerprint(graph) == before


def test_injection_attempts_change_nothing(served: ServedApp, graph: GraphStore) -> None:
    before = graph_fingerprint(graph)
    for text in ['"}) MATCH (n) DETACH DELETE n //', "CALL apoc.load.json('file:///etc/passwd')"]:
        for tool, key in (("search_documentation", "query"), ("troubleshoot_error", "error"),
                          ("traverse_relationships", "start")):
            call(served.url, tool, {key: text})  # an answer or a clear error; never a write
    assert graph_fingerprint(graph) == before


def test_unknown_host_header_is_refused(served: ServedApp) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Host": "evil.example.com"}
    response = httpx.post(served.url, json=body, headers=headers, timeout=30)
    assert response.status_code == 421


def test_get_on_the_endpoint_is_refused_at_once_so_idle_streams_cannot_hold_the_replica(served: ServedApp) -> None:
    """Stateless MCP sends nothing of its own: a GET would open an event
    stream that stays silent and holds a request slot until the client
    leaves. 40 of them at once are each answered 405, and a call made beside
    them is answered."""
    headers = {"Accept": "text/event-stream"}

    async def go() -> tuple[list[int], Any]:
        async with httpx.AsyncClient(timeout=20) as client:
            gets = [client.get(served.url, headers=headers) for _ in range(40)]
            responses = await asyncio.gather(*gets)
        async with Client(served.url) as mcp_client:
            listed = await mcp_client.list_tools()
        return [r.status_code for r in responses], listed

    statuses, listed = asyncio.run(go())
    assert statuses == [405] * 40  # an idle stream would have hit the 20 s timeout instead
    assert "search_documentation" in {tool.name for tool in listed.tools}


def test_health_and_metrics(served: ServedApp) -> None:
    health = httpx.get(served.health_url, timeout=30).json()
    assert health["status"] == "ok" and VERSION in health["versions"]
    call(served.url, "search_documentation", {"query": "license"})
    wait_for_series(served.url.replace("/mcp", "/metrics"), {
        "search_documentation's latency": ("ray_wekadocs_query_tool_latency_ms_count", 'tool="search_documentation"'),
        "stage timings": ("ray_wekadocs_query_stage_ms_count", 'stage="'),
    })


def test_idle_and_trickling_clients_do_not_delay_a_call(served: ServedApp) -> None:
    """100 clients hold connections open: 40 never finish their headers, 40
    trickle a tool call's body to /mcp and 20 a push to the webhooks, one byte
    a second. A search made beside them is answered within a second of the
    same search alone, and each trickler is cut off with 408 at the body
    deadline instead of holding its slot for as long as it likes."""
    url = httpx.URL(served.url)
    host, port = url.host, url.port
    assert port is not None
    hooks_path = httpx.URL(served.webhooks_url).path + "/github"

    async def timed_search() -> float:
        started = time.perf_counter()
        async with Client(served.url) as client:
            result = await client.call_tool("search_documentation", {"query": "fixed port for NFS mountd"})
        assert not result.is_error and result.structured_content["evidence"]
        return time.perf_counter() - started

    async def idle() -> None:
        _, writer = await asyncio.open_connection(host, port)
        writer.write(f"POST {url.path} HTTP/1.1\r\nHost: {host}\r\n".encode())  # and never the end
        await writer.drain()
        try:
            await asyncio.sleep(3600)
        finally:
            writer.close()

    async def trickle(path: str, extra: str) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: 500\r\n{extra}\r\n").encode())
        answer = asyncio.create_task(reader.readline())
        try:
            for _ in range(40):  # far past the body deadline
                if answer.done():
                    break
                writer.write(b" ")
                await writer.drain()
                await asyncio.wait({answer}, timeout=1)
            status_line = await asyncio.wait_for(answer, timeout=30)
        except (ConnectionError, asyncio.TimeoutError):
            return 0
        finally:
            writer.close()
        return int(status_line.split()[1]) if status_line else 0

    async def go() -> tuple[list[float], list[float], list[int]]:
        await timed_search()  # warm
        alone = [await timed_search() for _ in range(3)]
        idlers = [asyncio.create_task(idle()) for _ in range(40)]
        mcp_accept = "Accept: application/json, text/event-stream\r\n"
        hook_headers = "X-GitHub-Event: push\r\nX-GitHub-Delivery: slow-1\r\nX-Hub-Signature-256: sha256=00\r\n"
        tricklers = [asyncio.create_task(trickle(url.path, mcp_accept)) for _ in range(40)]
        tricklers += [asyncio.create_task(trickle(hooks_path, hook_headers)) for _ in range(20)]
        await asyncio.sleep(2)  # every connection open, the tricklers routed to the replicas
        beside = [await timed_search() for _ in range(3)]
        statuses = await asyncio.gather(*tricklers)
        for task in idlers:
            task.cancel()
        await asyncio.gather(*idlers, return_exceptions=True)
        return alone, beside, statuses

    alone, beside, statuses = asyncio.run(go())
    assert sorted(beside)[1] <= sorted(alone)[1] + 1.0, (alone, beside)  # medians
    assert statuses == [408] * 60, statuses


def test_without_the_vector_store_answers_are_degraded_then_recover(served: ServedApp, settings: Settings) -> None:
    """Runs last in this module: it kills the vector store's owner actor."""
    owner = ray.get_actor(owner_name(settings), namespace=settings.ray_namespace)
    ray.kill(owner, no_restart=True)
    # ray.kill only asks: search once the owner is gone, or the search may still reach it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ray.get_actor(owner_name(settings), namespace=settings.ray_namespace)
        except ValueError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the vector store's owner actor was still alive 60 s after ray.kill")
    result = call(served.url, "search_documentation", {"query": "fixed port for NFS mountd"})
    assert not result.is_error
    assert result.structured_content["diagnostics"]["degraded"] is True
    assert result.structured_content["evidence"]
    # The replica re-opens the store (a new owner actor) within REOPEN_S: answers recover.
    deadline = time.monotonic() + REOPEN_S + 60
    while time.monotonic() < deadline:
        again = call(served.url, "search_documentation", {"query": "fixed port for NFS mountd"})
        if not again.structured_content["diagnostics"]["degraded"]:
            break
        time.sleep(2)
    assert again.structured_content["diagnostics"]["degraded"] is False
    assert httpx.get(served.health_url, timeout=30).json()["status"] == "ok"
