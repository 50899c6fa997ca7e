"""The Grafana dashboards, written from one definition.

    python -m cluster.monitoring.dashboards.build          # (re)write the *.json next to this file
    python -m cluster.monitoring.dashboards.build --check  # exit 1, naming the files, if one differs

Four dashboards (query service, ingestion, freshness, cluster) share a
Prometheus datasource chosen by a ``${datasource}`` variable (no datasource
uid is written anywhere), one panel style and one layout rule, so they are
generated rather than hand-edited: the JSON is what Grafana imports or
provisions, this file is what a reviewer reads. ``tests/cluster/
test_dashboards.py`` fails when the JSON drifts from it, and
``test_dashboards_live.py`` evaluates every expression against the live
Prometheus. Every metric named here is one our code defines (exported by Ray
with the ``ray_`` prefix) or one Ray exports itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARD_DIR", "Dashboard", "Panel", "Row", "Target", "Variable", "dashboards", "render",
           "expressions", "main"]

DASHBOARD_DIR = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
GRID_WIDTH = 24
TAGS = ["wekadocs"]

# Budgets the alert rules use (cluster/monitoring/rules), drawn as threshold lines.
TOOL_P99_BUDGET_MS = 2500
QUEUE_FILL_ALERT = 0.8
OLDEST_PENDING_ALERT_S = 900
LOOP_STALLED_S = 300
DRIFT_ALERT = 0.005
NODE_MEMORY_ALERT = 0.9
REJECTIONS_ALERT_10M = 20

QUERY = "ray_wekadocs_query_"
INGEST = "ray_wekadocs_ingest_"
WD = "ray_wekadocs_"
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    instant: bool = False  # tables and stats of "now"
    heatmap: bool = False  # histogram buckets for a heatmap panel


@dataclass(frozen=True)
class Panel:
    title: str
    targets: Sequence[Target]
    description: str
    kind: str = "timeseries"  # timeseries | stat | gauge | state-timeline | table | heatmap
    unit: str = "short"
    width: int = 12
    height: int = 8
    thresholds: Sequence[float] = ()  # red from each value on (orange first when there are two)
    mappings: dict[int, tuple[str, str]] = field(default_factory=dict)  # value → (text, colour)
    stack: bool = False
    minimum: float | None = 0
    maximum: float | None = None


@dataclass(frozen=True)
class Row:
    title: str


@dataclass(frozen=True)
class Variable:
    """A label's values as a multi-select (All by default), used as ``label=~"$name"``."""

    name: str
    label: str
    metric: str

    @property
    def query(self) -> str:
        return f"label_values({self.metric}, {self.name})"


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    items: Sequence[Panel | Row]
    variables: Sequence[Variable] = ()

    @property
    def file_name(self) -> str:
        return f"{self.uid.removeprefix('wekadocs-')}.json"


# --------------------------------------------------------------------------- the dashboards


def _quantiles(metric: str, by: str, selector: str = "", qs: Sequence[float] = (0.5, 0.95, 0.99)) -> list[Target]:
    legend_by = " ".join(f"{{{{{label}}}}}" for label in by.split(", ") if label)
    return [Target(f"histogram_quantile({q}, sum by ({by}{', ' if by else ''}le) "
                   f"(rate({metric}_bucket{selector}[{RATE}])))", f"{legend_by} p{round(q * 100)}".strip())
            for q in qs]


def query_service() -> Dashboard:
    tools = '{tool=~"$tool"}'
    calls = f"{QUERY}tool_latency_ms_count"
    return Dashboard(
        uid="wekadocs-query-service",
        title="WekaDocs · Query service",
        description="The MCP tools: latency per tool and per retrieval stage, throughput, errors, degraded "
                    "answers and Cypher rejections. A slow tool: find its stage in 'Time per call by stage'.",
        variables=[Variable("tool", "Tool", calls)],
        items=[
            Row("Overview"),
            Panel("Calls per second", [Target(f"sum(rate({calls}{tools}[{RATE}]))", "calls/s")],
                  "MCP tool calls of every outcome.", kind="stat", unit="reqps", width=6, height=4),
            Panel("p99 latency, all selected tools",
                  [Target(f"histogram_quantile(0.99, sum by (le) (rate({QUERY}tool_latency_ms_bucket{tools}[{RATE}])))",
                          "p99")],
                  f"The QueryToolLatencyHigh budget is {TOOL_P99_BUDGET_MS} ms per tool.", kind="stat", unit="ms",
                  width=6, height=4, thresholds=(1000, TOOL_P99_BUDGET_MS)),
            Panel("Degraded answers (15 min)",
                  [Target(f"sum(increase({QUERY}degraded_answers_total{tools}[15m]))", "degraded")],
                  "Answers given from keyword + graph only: the vector store was unreachable "
                  "(alert QueryAnswersDegraded).", kind="stat", width=6, height=4, thresholds=(1,)),
            Panel("Cypher rejections (10 min)",
                  [Target(f"sum(increase({QUERY}cypher_rejections_total[10m]))", "rejected")],
                  f"Statements the validator refused; over {REJECTIONS_ALERT_10M} fires CypherRejectionsSpike.",
                  kind="stat", width=6, height=4, thresholds=(1, REJECTIONS_ALERT_10M)),

            Row("Latency"),
            Panel("p99 latency by tool", _quantiles(f"{QUERY}tool_latency_ms", "tool", tools, (0.99,)),
                  "End to end inside the replica, from the tool's arguments to its answer. "
                  f"Line: the {TOOL_P99_BUDGET_MS} ms budget.", unit="ms", thresholds=(TOOL_P99_BUDGET_MS,)),
            Panel("p50 / p95 latency by tool", _quantiles(f"{QUERY}tool_latency_ms", "tool", tools, (0.5, 0.95)),
                  "Typical and slow calls per tool.", unit="ms"),
            Panel("Time per call by stage (mean)",
                  [Target(f"sum by (stage) (rate({QUERY}stage_ms_sum[{RATE}])) "
                          f"/ sum by (stage) (rate({QUERY}stage_ms_count[{RATE}]))", "{{stage}}")],
                  "Mean milliseconds a search spends in each retrieval stage (scope, keyword, vector, expand, "
                  "details, rank; every tool that searches reports them, without a tool label). keyword and "
                  "vector run side by side. The stage whose line rose with the tool's p99 is the slow one.",
                  unit="ms"),
            Panel("p95 latency by stage", _quantiles(f"{QUERY}stage_ms", "stage", "", (0.95,)),
                  "The slow tail of each stage: a stage whose p95 is far above its mean is slow for some "
                  "queries only (a large version, an expensive graph expansion).", unit="ms"),
            Panel("Tool latency distribution",
                  [Target(f"sum by (le) (increase({QUERY}tool_latency_ms_bucket{tools}[{RATE}]))", "{{le}}",
                          heatmap=True)],
                  "Calls per latency bucket (ms) over time, for the selected tools.", kind="heatmap",
                  unit="ms", width=24),

            Row("Throughput and errors"),
            Panel("Calls per second by tool and outcome",
                  [Target(f"sum by (tool, outcome) (rate({calls}{tools}[{RATE}]))", "{{tool}} {{outcome}}")],
                  "outcome=error: the call ended in an error (bad arguments, a store failing, a refused "
                  "statement).", unit="reqps", stack=True),
            Panel("Error ratio by tool",
                  [Target(f'sum by (tool) (rate({calls}{{tool=~"$tool", outcome="error"}}[{RATE}])) '
                          f"/ sum by (tool) (rate({calls}{tools}[{RATE}]))", "{{tool}}")],
                  "Share of calls ending in an error; QueryToolErrorsHigh fires above 10 % for 10 minutes. "
                  "Only tools that had an error in the window are drawn.", unit="percentunit", maximum=1,
                  thresholds=(0.1,)),
            Panel("HTTP requests per second at the Serve proxy by status",
                  [Target(f"sum by (application, status_code) (rate(ray_serve_num_http_requests_total[{RATE}]))",
                          "{{application}} {{status_code}}")],
                  "Every HTTP request the Serve proxy routed (MCP and webhooks), by HTTP status: 401/403 are "
                  "refused tokens, 429 rate limits, 5xx failures before a tool ran.", unit="reqps"),

            Row("Degraded answers and refused statements"),
            Panel("Degraded answers per second by tool",
                  [Target(f"sum by (tool) (rate({QUERY}degraded_answers_total{tools}[{RATE}]))", "{{tool}}")],
                  "Answers without the vector store. Replicas retry the store every 30 s; see "
                  "docs/operations.md#queryanswersdegraded.", unit="reqps"),
            Panel("Cypher rejections per second",
                  [Target(f"sum(rate({QUERY}cypher_rejections_total[{RATE}]))", "rejected/s")],
                  "Statements the Cypher validator refused before Neo4j saw them.", unit="reqps"),
        ],
    )


def ingestion() -> Dashboard:
    src = '{source=~"$source"}'
    return Dashboard(
        uid="wekadocs-ingestion",
        title="WekaDocs · Ingestion and re-embedding",
        description="Ingest jobs, change-consumer batches, re-embed and reconcile jobs: sections written, "
                    "embeddings computed or reused, failures, batch latency, re-embed outcomes and drift. "
                    "The re-embed job reports as source 'reembed', reconcile repairs as '*'.",
        variables=[Variable("source", "Source", f"{INGEST}batch_seconds_count")],
        items=[
            Row("Throughput"),
            Panel("Sections per second by source and outcome",
                  [Target(f"sum by (source, outcome) (rate({INGEST}sections_total{src}[{RATE}]))",
                          "{{source}} {{outcome}}")],
                  "Sections written to or deleted from the graph. Counted when a run or micro-batch ends, so "
                  "a long job shows as one step.", unit="short", stack=True),
            Panel("Documents per second by source and outcome",
                  [Target(f"sum by (source, outcome) (rate({INGEST}documents_total{src}[{RATE}]))",
                          "{{source}} {{outcome}}")],
                  "Documents (pages) written or deleted.", unit="short", stack=True),
            Panel("Embeddings per second: computed vs reused",
                  [Target(f"sum by (source) (rate({INGEST}embeddings_computed_total{src}[{RATE}]))",
                          "{{source}} computed"),
                   Target(f"sum by (source) (rate({INGEST}embeddings_reused_total{src}[{RATE}]))", "{{source}} reused")],
                  "Section texts encoded by a model, against texts whose stored vector was reused (same text "
                  "already embedded). Computed counts as each embedding batch is stored.", unit="short"),
            Panel("Embedding reuse ratio (1 h)",
                  [Target(f"sum(increase({INGEST}embeddings_reused_total{src}[1h])) / (sum(increase("
                          f"{INGEST}embeddings_reused_total{src}[1h])) + sum(increase({INGEST}embeddings_computed_total{src}[1h])))",
                          "reused share")],
                  "Share of texts needing a vector that got a stored one. Low after a model change (every text "
                  "is new to the new collection), high for edits that move text around.", kind="stat",
                  unit="percentunit", maximum=1, width=6),
            Panel("Files that failed (1 h)",
                  [Target(f"sum by (source) (increase({INGEST}failures_total{src}[1h]))", "{{source}}")],
                  "Files that could not be read or parsed; the job's report lists them with the reason.",
                  kind="stat", width=6, thresholds=(1,)),

            Row("Latency"),
            Panel("Batch latency by stage (p50 / p95)",
                  _quantiles(f"{INGEST}batch_seconds", "stage", src, (0.5, 0.95)),
                  "stage=graph: one graph write batch; stage=embed: one embedding batch stored. A slow embed "
                  "stage with idle CPUs: too few embedding actors (WEKADOCS_EMBEDDING_ACTORS).", unit="s"),
            Panel("Batches per second by source and stage",
                  [Target(f"sum by (source, stage) (rate({INGEST}batch_seconds_count{src}[{RATE}]))",
                          "{{source}} {{stage}}")],
                  "How often graph and embedding batches complete.", unit="short"),

            Row("Re-embed and reconcile"),
            Panel("Re-embed jobs: last end by version and outcome",
                  [Target("max by (embedding_version, outcome) (last_over_time("
                          "ray_wekadocs_reembed_last_run_timestamp_seconds[1d])) * 1000", instant=True)],
                  "When a re-embed job of each embedding version last ended, per outcome (within a day). A "
                  "failure newer than the success fires ReembedJobFailed; the alias did not move.",
                  kind="table", unit="dateTimeAsIso"),
            Panel("Vector drift at the last reconcile",
                  [Target("max by (collection) (last_over_time(ray_wekadocs_vector_drift_ratio[1d]))",
                          "{{collection}}")],
                  f"Vectors missing, stale or extra over sections; VectorDriftHigh fires above "
                  f"{DRIFT_ALERT:.1%}. `wekadocs reconcile --repair` brings it to 0.", unit="percentunit",
                  thresholds=(DRIFT_ALERT,)),
        ],
    )


def freshness() -> Dashboard:
    src = '{source=~"$source"}'
    return Dashboard(
        uid="wekadocs-freshness",
        title="WekaDocs · Freshness",
        description="The change queue, the source pollers and their breakers, the consumer, and how long a "
                    "pushed change takes to become searchable.",
        variables=[Variable("source", "Source", f"{WD}source_breaker_state")],
        items=[
            Row("Queue"),
            Panel("Queue fill", [Target(f"max({WD}queue_fill_ratio)", "fill")],
                  f"Depth over capacity; from {QUEUE_FILL_ALERT:.0%} webhooks answer 503 and pollers pause "
                  "(QueueBackPressure).", kind="gauge", unit="percentunit", width=6, maximum=1,
                  thresholds=(0.5, QUEUE_FILL_ALERT)),
            Panel("Oldest pending event", [Target(f"max({WD}queue_oldest_pending_seconds)", "age")],
                  f"Age of the oldest delivered, unacknowledged event; QueueOldestPendingOld fires past "
                  f"{OLDEST_PENDING_ALERT_S} s.", kind="stat", unit="s", width=6,
                  thresholds=(60, OLDEST_PENDING_ALERT_S)),
            Panel("Queue depth, pending and lag",
                  [Target(f"max({WD}queue_depth)", "depth (waiting or in flight)"),
                   Target(f"max({WD}queue_pending)", "pending (delivered, not acknowledged)"),
                   Target(f"max({WD}queue_lag)", "lag (never delivered)")],
                  "Lag growing: the consumer does not keep up or is down. Pending growing with lag flat: "
                  "events fail and wait for a retry.", unit="short"),
            Panel("Oldest pending age over time", [Target(f"max({WD}queue_oldest_pending_seconds)", "oldest pending")],
                  "A saw-tooth is normal; a line that only rises is an event that keeps failing.", unit="s",
                  thresholds=(OLDEST_PENDING_ALERT_S,)),
            Panel("Push → searchable (queued to applied)",
                  _quantiles(f"{WD}change_age_seconds", "", "", (0.5, 0.95, 0.99)),
                  "Age of the oldest event of each applied micro-batch: from the moment a webhook or poller "
                  "queued it to the moment its pages were in the graph with vectors (searchable).", unit="s"),

            Row("Sources"),
            Panel("Breaker state by source",
                  [Target(f"max by (source) ({WD}source_breaker_state{src})", "{{source}}")],
                  "Closed: polled normally. Open: polling failed repeatedly and the source is skipped "
                  "(SourceBreakerOpen after 5 min). Half-open: one trial poll.", kind="state-timeline",
                  mappings={0: ("closed", "green"), 1: ("half-open", "orange"), 2: ("open", "red")},
                  width=24, height=6, minimum=None),
            Panel("Polls per minute by source and outcome",
                  [Target(f"sum by (source, status) (rate({WD}source_polls_total{src}[{RATE}])) * 60",
                          "{{source}} {{status}}")],
                  "status: polled, failed, breaker_open, rate_limited, paused (back-pressure), queue_full.",
                  unit="short"),
            Panel("Events queued per second by source",
                  [Target(f"sum by (source) (rate({WD}source_events_queued_total{src}[{RATE}]))", "{{source}}")],
                  "Change events a poller found and queued (webhook pushes queue theirs in the webhook app).",
                  unit="short"),

            Row("Consumer"),
            Panel("Changes applied and left for retry per second",
                  [Target(f"sum by (source) (rate({WD}changes_applied_total{src}[{RATE}]))", "{{source}} applied"),
                   Target(f"sum(rate({WD}changes_retry_later_total[{RATE}]))", "left for retry")],
                  "Retry: a source or one of our stores failed; the events stay pending and are claimed again.",
                  unit="short"),
            Panel("Micro-batch duration (p50 / p95)",
                  _quantiles(f"{WD}change_step_seconds", "", "", (0.5, 0.95)),
                  "One consumer step: read events, fetch pages, write graph and vectors, acknowledge.", unit="s"),
            Panel("Loop heartbeat age",
                  [Target(f"time() - max by (loop) ({WD}loop_heartbeat_timestamp_seconds > 0)", "{{loop}}")],
                  f"Seconds since each running loop (consume, sources-watch, poll-<source>) went round; a live "
                  f"loop beats at least every 15 s. FreshnessLoopStalled fires past {LOOP_STALLED_S} s.",
                  unit="s", width=24, thresholds=(60, LOOP_STALLED_S)),
        ],
    )


def cluster() -> Dashboard:
    return Dashboard(
        uid="wekadocs-cluster",
        title="WekaDocs · Ray cluster",
        description="Serve replicas, actors and node resources, from the metrics Ray exports itself.",
        items=[
            Row("Serve"),
            Panel("Healthy replicas by deployment",
                  [Target("sum by (application, deployment) (ray_serve_deployment_replica_healthy)",
                          "{{application}}/{{deployment}}")],
                  "Replicas passing their health check (MCPServer: autoscaled 1-2 on one machine).", unit="short"),
            Panel("Replicas started in the range",
                  [Target("count by (application, deployment) "
                          "(last_over_time(ray_serve_deployment_replica_starts_total[$__range]))",
                          "{{application}}/{{deployment}}")],
                  "Each replica process exports its own start: a count above the healthy replicas means "
                  "replicas were replaced (crashes, autoscaling); ServeReplicaRestarts fires on over 3 in "
                  "15 minutes.", kind="stat", unit="short"),
            Panel("Replica request latency (p95)",
                  [Target("histogram_quantile(0.95, sum by (application, deployment, le) "
                          f"(rate(ray_serve_deployment_processing_latency_ms_bucket[{RATE}])))",
                          "{{application}}/{{deployment}}")],
                  "Time a replica spent on each request, as Serve measures it (includes the MCP protocol "
                  "around the tool).", unit="ms"),
            Panel("Requests in flight per replica",
                  [Target("sum by (deployment, replica) (ray_serve_replica_processing_queries)", "{{replica}}")],
                  "Against max_ongoing_requests (16 for MCPServer) and the autoscaling target (4).",
                  unit="short"),

            Row("Actors and tasks"),
            Panel("Actors by state",
                  [Target('sum by (State) (ray_actors{Source="gcs"})', "{{State}}")],
                  "Every actor the GCS knows: the Serve controller, proxies and replicas, the vector store "
                  "owner, the freshness supervisor and consumer, embedding actors during a job.",
                  unit="short"),
            Panel("Alive actors by class",
                  [Target('sum by (Name) (ray_actors{Source="executor", State!="DEAD"})', "{{Name}}")],
                  "Actor processes by class name on the nodes.", unit="short", stack=True),

            Row("Nodes"),
            Panel("CPU utilization by node",
                  [Target("avg by (instance) (ray_node_cpu_utilization)", "{{instance}}")],
                  "Percent of the node's CPUs busy (all processes, not only Ray's).", unit="percent",
                  maximum=100),
            Panel("Memory used by node",
                  [Target("sum by (instance) (ray_node_mem_used) / sum by (instance) (ray_node_mem_total)",
                          "{{instance}}")],
                  f"NodeMemoryNearLimit fires above {NODE_MEMORY_ALERT:.0%} for 5 minutes; Ray's memory "
                  "monitor kills workers at 95 %.", unit="percentunit", maximum=1,
                  thresholds=(0.8, NODE_MEMORY_ALERT)),
            Panel("Ray CPU resources: used and total",
                  [Target('sum by (instance) (ray_resources{Name="CPU", State="USED"})', "{{instance}} used"),
                   Target('sum(ray_resources{Name="CPU"})', "cluster total")],
                  "Logical CPUs reserved by tasks, actors and replicas against what the nodes offer; a job "
                  "waiting for CPUs shows here as used = total.", unit="short"),
            Panel("Object store memory by location",
                  [Target("sum by (Location) (ray_object_store_memory)", "{{Location}}")],
                  "Objects in shared memory, spilled to disk, or in worker heaps.", unit="bytes", stack=True),
            Panel("Metrics targets up",
                  [Target('up{job="ray"}', "{{instance}}")],
                  "Every node's metrics agent Prometheus scrapes (1 = scraped); RayMetricsTargetDown fires on 0.",
                  unit="short", maximum=1, width=24, height=6),
        ],
    )


def dashboards() -> list[Dashboard]:
    return [query_service(), ingestion(), freshness(), cluster()]


# --------------------------------------------------------------------------- rendering


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for n, item in enumerate(dashboard.items, start=1):
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            panels.append({"id": n, "type": "row", "title": item.title, "collapsed": False, "panels": [],
                           "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}})
            y += 1
            continue
        if x + item.width > GRID_WIDTH:
            y += row_height
            x = row_height = 0
        panels.append(_panel(n, item, {"h": item.height, "w": item.width, "x": x, "y": y}))
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": dashboard.description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [{"title": "WekaDocs dashboards", "type": "dashboards", "tags": TAGS, "asDropdown": True,
                   "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": [_datasource_variable(), *map(_query_variable, dashboard.variables)]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": dashboard.title,
        "uid": dashboard.uid,
        "version": 1,
    }


def _panel(panel_id: int, panel: Panel, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "color": {"mode": "palette-classic"}, "mappings": [],
                                "thresholds": _thresholds(panel.thresholds)}
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    options: dict[str, Any] = {}
    if panel.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            str(value): {"text": text, "color": colour, "index": i}
            for i, (value, (text, colour)) in enumerate(sorted(panel.mappings.items()))}}]
        defaults["color"] = {"mode": "thresholds"}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if panel.stack else 0, "showPoints": "never",
            "spanNulls": False, "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"}}
        options = {"legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                              "calcs": ["mean", "max", "lastNotNull"]},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    elif panel.kind in ("stat", "gauge"):
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "orientation": "auto", "textMode": "auto", "colorMode": "value", "graphMode": "area",
                   "justifyMode": "auto", "showThresholdLabels": False, "showThresholdMarkers": True}
    elif panel.kind == "state-timeline":
        defaults["custom"] = {"fillOpacity": 80, "lineWidth": 0}
        options = {"showValue": "auto", "mergeValues": True, "rowHeight": 0.8, "alignValue": "left",
                   "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "single", "sort": "none"}}
    elif panel.kind == "table":
        options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}}
    elif panel.kind == "heatmap":
        options = {"calculate": False, "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges",
                                                              "exponent": 0.5, "steps": 64, "fill": "dark-orange"},
                   "yAxis": {"axisPlacement": "left", "unit": panel.unit}, "rowsFrame": {"layout": "auto"},
                   "legend": {"show": True}, "tooltip": {"mode": "single", "yHistogram": True},
                   "cellValues": {"unit": "short"}, "filterValues": {"le": 1e-9}}
    result: dict[str, Any] = {
        "id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE, "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [_target(t, chr(ord("A") + i)) for i, t in enumerate(panel.targets)],
    }
    if panel.kind == "table":
        result["transformations"] = [{"id": "labelsToFields", "options": {"mode": "columns"}},
                                     {"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    return result


def _target(target: Target, ref_id: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": target.expr, "legendFormat": target.legend,
            "range": not target.instant, "instant": target.instant, "refId": ref_id,
            "format": "heatmap" if target.heatmap else ("table" if target.instant else "time_series")}


def _thresholds(values: Sequence[float]) -> dict[str, Any]:
    colours = ["orange", "red"] if len(values) == 2 else ["red"] * len(values)
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": colour, "value": value} for colour, value in zip(colours, values)]
    return {"mode": "absolute", "steps": steps}


def _datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "regex": "", "skipUrlSync": False}


def _query_variable(variable: Variable) -> dict[str, Any]:
    return {"name": variable.name, "label": variable.label, "type": "query", "datasource": DATASOURCE,
            "definition": variable.query,
            "query": {"query": variable.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [], "refresh": 2,
            "regex": "", "skipUrlSync": False, "sort": 1}


# --------------------------------------------------------------------------- reading them back


def expressions(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every target of a dashboard's JSON."""
    for panel in document["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target["expr"]


def _text(dashboard: Dashboard) -> str:
    return json.dumps(render(dashboard), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.monitoring.dashboards.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for dashboard in dashboards():
        path = DASHBOARD_DIR / dashboard.file_name
        text = _text(dashboard)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date, run `python -m cluster.monitoring.dashboards.build`: {', '.join(stale)}",
              file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {DASHBOARD_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
