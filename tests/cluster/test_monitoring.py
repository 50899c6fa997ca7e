"""Our Prometheus, started with the test stack (``services.up(monitoring=True)``),
scrapes the live service: every Ray node's agent, our metrics, our rules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from mcp import Client

from cluster import services
from cluster.jobs import run_reconcile, run_reembed
from cluster.prometheus_server import RULES_DIR, PrometheusServer
from cluster.serve_runner import ServedApp
from pipelines.reembed import ReembedError
from tests.cluster.test_alert_rules import alerts
from tests.conftest import SLICE_VERSION
from wekadocs.settings import Settings

# Ray's agents export on their own schedule (up to ~10 s), then a scrape
# (5 s in tests); on a loaded 2-core machine an export once took over 90 s.
DEADLINE_S = 240


def query(settings: Settings, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query",
                         params={"query": promql}, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["data"]["result"])


def wait_for(settings: Settings, promql: str, accept: Any = bool) -> list[dict[str, Any]]:
    """Poll until ``promql`` returns series that ``accept`` takes; the last answer."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        result = query(settings, promql)
        if result and accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus had no acceptable series for {promql} within {DEADLINE_S} s: {result}")
        time.sleep(2)


def test_prometheus_is_a_recorded_service_with_our_rules(settings: Settings, stack: object) -> None:
    shown = {r.name: r for r in services.status(settings)}["prometheus"]
    assert shown.state == "running" and shown.address == f"http://127.0.0.1:{settings.prometheus_port}"
    server = PrometheusServer(settings)
    config = server.config_file.read_text()
    assert str(server.discovery_file) in config and f"{RULES_DIR}/*.yml" in config
    loaded = httpx.get(f"{shown.address}/api/v1/rules", params={"type": "alert"}, timeout=30).json()
    names = {rule["name"] for group in loaded["data"]["groups"] for rule in group["rules"]}
    assert names == set(alerts())
    listening = httpx.get(f"{shown.address}/api/v1/status/flags", timeout=30).json()["data"]
    assert listening["web.listen-address"] == f"127.0.0.1:{settings.prometheus_port}"


def test_every_ray_node_and_our_query_metrics_are_scraped(settings: Settings, served: ServedApp) -> None:
    async def search() -> Any:
        async with Client(served.url) as client:
            return await client.call_tool("search_documentation",
                                          {"query": "fixed port for NFS mountd", "version": SLICE_VERSION})

    assert not asyncio.run(search()).is_error
    latency = wait_for(settings, 'ray_wekadocs_query_tool_latency_ms_count{tool="search_documentation"}')
    assert sum(float(series["value"][1]) for series in latency) >= 1
    # Every target Ray's discovery file lists answers, the head's metrics agent among them
    # (listed under the node's own IP address, whatever address the head was given).
    targets = wait_for(settings, 'up{job="ray"}', accept=lambda r: all(s["value"][1] == "1" for s in r))
    assert f":{settings.ray_metrics_port}" in {":" + s["metric"]["instance"].rsplit(":", 1)[1] for s in targets}
    # Ray's own node metrics arrive too (the memory alert reads them).
    assert wait_for(settings, "ray_node_mem_total")


def test_job_outcomes_reach_prometheus_and_the_rules(settings: Settings, ingested: dict[str, int],
                                                     ray_connection: object) -> None:
    report = run_reconcile(settings, repair=False)
    drift = wait_for(settings, f'ray_wekadocs_vector_drift_ratio{{collection="{report.collection}"}}')
    assert {round(float(s["value"][1]), 6) for s in drift} == {round(report.drift_pct / 100, 6)}

    version = "monitoring-test-bad!"  # refused by the job at once: not a valid version label
    with pytest.raises(ReembedError):
        run_reembed(settings, embedding_version=version, model=settings.embedding_model, dims=None, switch=False)
    wait_for(settings, f'ray_wekadocs_reembed_last_run_timestamp_seconds{{embedding_version="{version}",'
                       'outcome="failed"}')
    # The rule reads it: the alert fires for this version.
    wait_for(settings, f'ALERTS{{alertname="ReembedJobFailed",embedding_version="{version}",alertstate="firing"}}')
