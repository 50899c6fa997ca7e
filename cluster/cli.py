"""The ``wekadocs`` command line.

Each command loads the settings once, calls into ``cluster``/``wekadocs``, and
prints either a readable summary or (``--json``) one JSON object on the last
line. Errors of our own print as one clear message and exit non-zero; only
bugs show a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from cluster import services as local_services
from wekadocs.change_event import ChangeEvent
from wekadocs.errors import SettingsError, WekadocsError
from wekadocs.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_object(_State).settings  # type: ignore[union-attr]


class _State:
    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None
        self.report_stream: Any = None  # set by _stdout_for_the_report_only

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings


def _reports_errors(func: F) -> F:
    """Turn our errors into a one-line message and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except WekadocsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _stdout_for_the_report_only(ctx: click.Context, as_json: bool) -> bool:
    """For a ``--json`` command that runs on Ray: from here on, whatever is written
    to stdout goes to stderr, and only the report reaches the real stdout.

    Ray's driver prints the errors raylets push (a lost node, a task retried) on
    stdout from a thread of its own, whatever ``log_to_driver`` says, and may do
    so after the report; the report must stay the last line. Returns whether
    the driver should forward worker logs (not in JSON mode)."""
    if as_json:
        state = ctx.find_object(_State)
        sys.stdout.flush()
        state.report_stream = os.fdopen(os.dup(1), "w")  # type: ignore[union-attr]
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    return not as_json


def _emit(as_json: bool, payload: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        state = click.get_current_context().find_object(_State)
        stream = state.report_stream if state is not None else None
        click.echo(json.dumps(payload, default=str), file=stream)
        if stream is not None:
            stream.flush()
    else:
        for line in lines:
            click.echo(line)


@click.group()
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML settings file (default: $WEKADOCS_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """WekaDocs GraphRAG: documentation graph + vectors, served over MCP on Ray."""
    ctx.obj = _State(config)


# --- services ------------------------------------------------------------------


@cli.group()
def services() -> None:
    """Local Neo4j, Redis and Ray head (embedded defaults), and Ray worker nodes."""


def _service_lines(reports: list[local_services.ServiceReport]) -> list[str]:
    lines = []
    for r in reports:
        extra = f" version {r.version}" if r.version else ""
        pid = f" pid {r.pid}" if r.pid else ""
        detail = f" ({r.detail})" if r.detail else ""
        lines.append(f"{r.name:<10} {r.state:<11} {r.address}{extra}{pid}{detail}")
    return lines


def _node_lines(nodes: list[dict[str, Any]]) -> list[str]:
    lines = [f"{len(nodes)} Ray node{'s' if len(nodes) != 1 else ''} alive:"] if nodes else []
    for node in nodes:
        offers = ", ".join(f"{k} {v:g}" for k, v in sorted(node["resources"].items()))
        lines.append(f"  {node['name']:<14} {node['node_id'][:12]}  {offers}")
    return lines


@services.command("up")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Ray worker nodes to keep joined to the head (0 removes them; "
                   "default: as many as now).")
@click.option("--worker-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs each worker node offers (default: what it runs with, 1 for a new one).")
@click.option("--monitoring/--no-monitoring", default=None,
              help="Start (or stop) Prometheus scraping every Ray node, with our alert rules "
                   "(default: keep it as it is).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def services_up(ctx: click.Context, workers: int | None, worker_cpus: int | None, monitoring: bool | None,
                as_json: bool) -> None:
    """Start what is not running; wait until each service answers."""
    from cluster.ray_workers import list_nodes

    settings = _settings(ctx)
    reports = local_services.up(settings, workers=workers, worker_cpus=worker_cpus, monitoring=monitoring)
    nodes = list_nodes(settings)
    lines = _service_lines(reports) + _node_lines(nodes)
    if settings.dashboard_url:
        lines.append(f"Ray dashboard: {settings.dashboard_url}  (token: `ray get-auth-token`)")
    _emit(as_json, {"services": [local_services.report_dict(r) for r in reports], "nodes": nodes}, lines)


@services.command("down")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def services_down(ctx: click.Context, as_json: bool) -> None:
    """Stop exactly what `services up` started."""
    reports = local_services.down(_settings(ctx))
    _emit(as_json, {"services": [local_services.report_dict(r) for r in reports]},
          _service_lines(reports))


@services.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def services_status(ctx: click.Context, as_json: bool) -> None:
    """State, address and version of each service; the Ray nodes alive and what each offers."""
    from cluster.ray_workers import list_nodes

    settings = _settings(ctx)
    reports = local_services.status(settings)
    nodes = list_nodes(settings)
    _emit(as_json, {"services": [local_services.report_dict(r) for r in reports], "nodes": nodes},
          _service_lines(reports) + _node_lines(nodes))


# --- config ----------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Effective settings."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings, secrets masked."""
    values = _settings(ctx).masked()
    width = max(len(Settings.env_name(name)) for name in values)
    lines = [f"{Settings.env_name(name):<{width}}  {value}" for name, value in values.items()]
    _emit(as_json, values, lines)


# --- schema ----------------------------------------------------------------------


@cli.group()
def schema() -> None:
    """Neo4j constraints, indexes and the schema version."""


def _schema_output(as_json: bool, status: Any) -> None:
    payload = {
        "schema_version": status.schema_version,
        "constraints": status.constraints,
        "indexes": status.indexes,
        "missing": status.missing,
    }
    lines = [f"schema version: {status.schema_version or '(none)'}"]
    lines += [f"constraint {c['name']}: {c['labels']} {c['properties']}" for c in status.constraints]
    lines += [
        f"index {i['name']} ({i['type']}, {i['state']}): {i['labels']} {i['properties']}"
        for i in status.indexes
    ]
    if status.missing:
        lines.append("missing: " + ", ".join(status.missing) + " (run `wekadocs schema apply`)")
    _emit(as_json, payload, lines)


@schema.command("apply")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def schema_apply(ctx: click.Context, as_json: bool) -> None:
    """Create missing constraints and indexes (idempotent)."""
    from wekadocs.graph_schema import apply_schema
    from wekadocs.graph_store import GraphStore

    with GraphStore.connect(_settings(ctx)) as graph:
        _schema_output(as_json, apply_schema(graph))


@schema.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def schema_status_cmd(ctx: click.Context, as_json: bool) -> None:
    """List constraints and indexes."""
    from wekadocs.graph_schema import schema_status
    from wekadocs.graph_store import GraphStore

    with GraphStore.connect(_settings(ctx)) as graph:
        _schema_output(as_json, schema_status(graph))


# --- vectors ---------------------------------------------------------------------


@cli.group()
def vectors() -> None:
    """The vector store: collections and the alias readers use."""


@vectors.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def vectors_init(ctx: click.Context, as_json: bool) -> None:
    """Create this embedding version's collection and point the alias at it if unset."""
    from cluster.vector_admin import init_collection

    payload = init_collection(_settings(ctx))
    _emit(as_json, payload, [f"{k}: {v}" for k, v in payload.items()])


@vectors.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def vectors_status(ctx: click.Context, as_json: bool) -> None:
    """Every collection: its model, points, coverage of the graph, and which one the alias serves."""
    from cluster.vector_admin import status

    payload = status(_settings(ctx))
    lines = [f"{payload['engine']}: alias {payload['alias']} serves {payload['serving']}; "
             f"{payload['sections']} sections in the graph"]
    for c in payload["collections"]:
        coverage = "?" if c["coverage"] is None else f"{100 * c['coverage']:.1f}%"
        lines.append(f"{'*' if c['serving'] else ' '} {c['embedding_version']:<20} {c['model']} ({c['dims']}d) "
                     f"{c['state']:<8} {c['points']} points, coverage {coverage}  [{c['name']}]")
    lines += [f"  unrecorded collection: {name}" for name in payload["unrecorded"]]
    _emit(as_json, payload, lines)


@vectors.command("switch")
@click.argument("embedding_version")
@click.option("--json", "as_json", is_flag=True, help="Last line: one JSON object.")
@click.pass_context
@_reports_errors
def vectors_switch(ctx: click.Context, embedding_version: str, as_json: bool) -> None:
    """Serve a kept collection again: brought up to date and verified first."""
    from cluster.jobs import run_reembed

    settings = _settings(ctx)
    forward_logs = _stdout_for_the_report_only(ctx, as_json)
    report = run_reembed(settings, embedding_version=embedding_version, model=settings.embedding_model,
                         dims=None, switch=True, rollback=True, say=_say(as_json), log_to_driver=forward_logs)
    _emit(as_json, report.as_dict(), _reembed_lines(report))


@vectors.command("drop")
@click.argument("embedding_version")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def vectors_drop(ctx: click.Context, embedding_version: str, as_json: bool) -> None:
    """Delete a kept collection (never the one the alias serves)."""
    from cluster.vector_admin import drop

    payload = drop(_settings(ctx), embedding_version)
    _emit(as_json, payload, [f"dropped {payload['collection']}" if payload["dropped"]
                             else f"{payload['collection']} had no vectors; its record is gone"])


@cli.command("reembed")
@click.option("--embedding-version", required=True, help="Version label of the new collection (e.g. bge-small.1).")
@click.option("--model", default=None, help="Model to embed with (default: WEKADOCS_EMBEDDING_MODEL).")
@click.option("--dims", type=click.IntRange(min=1), default=None,
              help="Cut vectors to this many dimensions (default: the model's own).")
@click.option("--no-switch", "no_switch", is_flag=True, help="Fill and verify, but leave the alias where it is.")
@click.option("--json", "as_json", is_flag=True, help="Last line: one JSON object with the counts.")
@click.pass_context
@_reports_errors
def reembed_cmd(ctx: click.Context, embedding_version: str, model: str | None, dims: int | None,
                no_switch: bool, as_json: bool) -> None:
    """Embed every section into a new collection on Ray, verify it, then switch readers to it."""
    from cluster.jobs import run_reembed

    settings = _settings(ctx)
    forward_logs = _stdout_for_the_report_only(ctx, as_json)
    report = run_reembed(settings, embedding_version=embedding_version, model=model or settings.embedding_model,
                         dims=dims, switch=not no_switch, say=_say(as_json), log_to_driver=forward_logs)
    _emit(as_json, report.as_dict(), _reembed_lines(report))


def _say(as_json: bool) -> Callable[[str], None]:
    """Progress lines: on stdout for people, on stderr when stdout is for JSON."""
    return lambda line: click.echo(line, err=as_json)


def _reembed_lines(report: Any) -> list[str]:
    return [
        f"{report.collection}: {report.model} ({report.dims}d), {report.sections} sections, {report.texts} texts",
        f"embeddings: {report.embeddings_computed} computed, {report.embeddings_reused} reused; "
        f"vectors: {report.vectors_upserted} upserted, {report.vectors_deleted} deleted; "
        f"catch-up rounds: {report.catch_up_rounds}",
        f"verified: {report.verified} (sample of {report.sample_checked}, min cosine {report.sample_min_cosine}); "
        f"switched: {report.switched} (was {report.previous})",
        f"{report.seconds:.1f} s",
    ]


# --- ingestion ---------------------------------------------------------------------


@cli.command("ingest")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--version", "version", default="latest", show_default=True,
              help="Documentation version these files are (e.g. 4.4).")
@click.option("--source", default=None, help="Source name (default: the folder's name).")
@click.option("--json", "as_json", is_flag=True, help="Last line: one JSON object with the counts.")
@click.pass_context
@_reports_errors
def ingest(ctx: click.Context, path: Path, version: str, source: str | None, as_json: bool) -> None:
    """Ingest a folder of Markdown/HTML: only what changed is re-written and re-embedded."""
    from cluster.jobs import run_ingest

    forward_logs = _stdout_for_the_report_only(ctx, as_json)
    report = run_ingest(_settings(ctx), path.resolve(), source or path.resolve().name, version,
                        progress=not as_json, log_to_driver=forward_logs)
    payload = report.as_dict()
    lines = [
        f"{report.source} {report.version}: {report.documents_seen} documents seen, "
        f"{report.documents_changed} changed, {report.documents_deleted} deleted",
        f"sections: {report.sections_written} written, {report.sections_deleted} deleted; "
        f"entities written: {report.entities_written}",
        f"embeddings: {report.embeddings_computed} computed, {report.embeddings_reused} reused; "
        f"vectors: {report.vectors_upserted} upserted, {report.vectors_deleted} deleted",
        f"{report.seconds:.1f} s",
    ]
    lines += [f"error: {e['error']}" for e in report.errors]
    lines += [f"warning: {w}" for w in report.warnings]
    _emit(as_json, payload, lines)


@cli.command("reconcile")
@click.option("--repair", is_flag=True, help="Delete extra vectors, re-embed missing and stale ones.")
@click.option("--json", "as_json", is_flag=True, help="Last line: one JSON object with the counts.")
@click.pass_context
@_reports_errors
def reconcile_cmd(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Compare graph sections with stored vectors; report drift (and repair it)."""
    from cluster.jobs import run_reconcile

    forward_logs = _stdout_for_the_report_only(ctx, as_json)
    report = run_reconcile(_settings(ctx), repair=repair, log_to_driver=forward_logs)
    lines = [
        f"{report.collection}: {report.sections} sections, {report.points} vectors",
        f"missing {report.missing}, stale {report.stale}, extra {report.extra}: drift {report.drift_pct:.2f}%",
    ]
    if report.repaired:
        lines.append(f"repaired: {report.embeddings_computed} embedded, {report.vectors_upserted} upserted, "
                     f"{report.vectors_deleted} deleted")
    _emit(as_json, report.as_dict(), lines)


@cli.command("serve")
@click.option("--host", default=None, help="Address for Serve's HTTP proxy (default: serve_host).")
@click.option("--port", type=int, default=None, help="Port for Serve's HTTP proxy (default: serve_port).")
@click.option("--detach", is_flag=True, help="Deploy and return; the app keeps running in the cluster.")
@click.option("--serve-config", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="A Serve config to take the deployment options from (default: serve_apps/serve_config.yaml), "
                   "e.g. one whose MCPServer asks for the `query` resource of worker nodes.")
@click.option("--demo-token", is_flag=True, help="When authentication is on, mint (or replace) the API token "
              "`demo` with docs:read and metrics:read and put it in the sample call.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (implies nothing about --detach).")
@click.pass_context
@_reports_errors
def serve_cmd(ctx: click.Context, host: str | None, port: int | None, detach: bool, serve_config: Path | None,
              demo_token: bool, as_json: bool) -> None:
    """Deploy the MCP query service on Ray Serve and print how to call it."""
    from cluster.serve_runner import SERVE_CONFIG, deploy, undeploy

    settings = _settings(ctx)
    host, port = host or settings.serve_host, port or settings.serve_port
    served = deploy(settings, host=host, port=port, config=serve_config or SERVE_CONFIG)
    auth = settings.model_copy(update={"serve_host": host}).auth_enabled
    token = _demo_token(ctx) if auth and demo_token else None
    bearer = f"-H 'Authorization: Bearer {token or '$WEKADOCS_TOKEN'}' " if auth else ""
    sample = ("curl -s -X POST " + served.url + " -H 'Content-Type: application/json' " + bearer +
              "-H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' "
              "-d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
              "{\"name\":\"search_documentation\",\"arguments\":{\"query\":\"how do I create a snapshot\"}}}'")
    if not auth:
        note = f"authentication: off ({'WEKADOCS_AUTH=off' if settings.auth == 'off' else 'listening on loopback only'})"
    elif token:
        note = f"authentication: on; demo token (docs:read, metrics:read): {token}"
    else:
        note = "authentication: on; mint a token with `wekadocs tokens create NAME --scopes docs:read`"
    _emit(as_json, {"app": served.name, "url": served.url, "health": served.health_url,
                    "webhooks": served.webhooks_url, "replicas": served.replicas, "auth": auth,
                    **({"token": token} if token else {})}, [
        f"MCP endpoint: {served.url}  (streamable HTTP, stateless)",
        f"health:       {served.health_url}",
        f"webhooks:     {served.webhooks_url}/github, {served.webhooks_url}/gitlab",
        note,
        "sample call:",
        f"  {sample}",
        "connect an MCP client: see README \"Connecting an MCP client\"",
    ])
    if detach:
        return
    click.echo("serving; Ctrl-C stops the app", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from cluster.freshness import stop_freshness

        undeploy(settings, served.apps)
        stop_freshness(settings)
        click.echo("stopped", err=True)


# --- audit -------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """The audit stream of MCP tool calls (Redis stream wekadocs:audit)."""


@audit.command("tail")
@click.option("-n", "--count", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many of the latest entries to print first.")
@click.option("--follow", is_flag=True, help="Then print new entries as they come (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (id plus the entry's fields).")
@click.pass_context
@_reports_errors
def audit_tail(ctx: click.Context, count: int, follow: bool, as_json: bool) -> None:
    """The latest tool calls: when, who, which tool, argument hash, results, latency, outcome."""
    import redis

    from wekadocs.auth.audit import AuditReader

    client = redis.Redis.from_url(_settings(ctx).effective_redis_url, decode_responses=True,
                                  socket_timeout=10, socket_connect_timeout=5)
    reader = AuditReader(client)

    def show(entry_id: str, entry: Any) -> None:
        if as_json:
            click.echo(json.dumps({"id": entry_id, **entry.model_dump()}))
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.at))
            click.echo(f"{stamp}Z {entry.subject:<24} {entry.tool:<24} {entry.outcome:<9} {entry.results:>3} results "
                       f"{entry.latency_ms:>8.1f} ms  args {entry.args_sha256[:16]}")

    last = "0-0"
    for entry_id, entry in reader.last(count):
        show(entry_id, entry)
        last = entry_id
    if not follow:
        return
    try:
        for entry_id, entry in reader.follow(after=last if last != "0-0" else "$"):
            show(entry_id, entry)
    except KeyboardInterrupt:
        pass


def _demo_token(ctx: click.Context) -> str:
    from wekadocs.errors import AuthError

    store = _token_store(ctx)
    try:
        store.revoke("demo")
    except AuthError:
        pass  # none yet
    token, _ = store.create("demo", ["docs:read", "metrics:read"])
    return token


# --- sources ------------------------------------------------------------------------


@cli.group()
def sources() -> None:
    """Documentation sources kept fresh by pollers and webhooks."""


def _source_options(func: F) -> F:
    """Options every kind takes."""
    for option in reversed([
        click.argument("name"),
        click.option("--version", "version", default="", help="Version label of its pages (default: the "
                     "branch for git/github, 'latest' otherwise)."),
        click.option("--interval", "interval_s", type=float, default=60.0, show_default=True,
                     help="Seconds between polls."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
    ]):
        func = option(func)
    return func


def _repository_options(func: F) -> F:
    for option in reversed([
        click.option("--branch", default="main", show_default=True),
        click.option("--path", "docs_path", default="", help="Docs folder inside the repository."),
        click.option("--webhook-secret-env", default=None,
                     help="Environment variable holding the push webhook's secret."),
    ]):
        func = option(func)
    return func


def _add(ctx: click.Context, as_json: bool, **fields: Any) -> None:
    from pydantic import ValidationError

    from cluster.source_admin import SourceAdmin
    from wekadocs.source_registry import SourceConfig, SourceError

    try:
        config = SourceConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SourceError(f"invalid source: {problems}") from exc
    saved = SourceAdmin(_settings(ctx)).add(config)
    _emit(as_json, config.model_dump(), [f"added {config.kind} source {config.name} "
                                         f"(version {config.effective_version}); it is polled every "
                                         f"{config.interval_s:g} s while `wekadocs serve` runs"]
          + [f"saved secret {name} to the secrets folder (mode 0600)" for name in saved])


@sources.group("add")
def sources_add() -> None:
    """Add a source (git, github, notion, confluence)."""


@sources_add.command("git")
@_source_options
@_repository_options
@click.option("--url", required=True, help="Any git remote, or a path to a local repository.")
@click.pass_context
@_reports_errors
def sources_add_git(ctx: click.Context, as_json: bool, **fields: Any) -> None:
    """A git repository: fetched, then diffed between the last ingested commit and the branch head."""
    _add(ctx, as_json, kind="git", **fields)


@sources_add.command("github")
@_source_options
@_repository_options
@click.option("--url", required=True, help="The repository: https://github.com/OWNER/REPO or OWNER/REPO.")
@click.option("--token-env", default=None, help="Environment variable holding the API token.")
@click.option("--api-url", default="", help="API base (GitHub Enterprise); default the public API.")
@click.pass_context
@_reports_errors
def sources_add_github(ctx: click.Context, as_json: bool, **fields: Any) -> None:
    """A GitHub repository through the REST API (conditional requests, rate limits honoured)."""
    _add(ctx, as_json, kind="github", **fields)


@sources_add.command("notion")
@_source_options
@click.option("--token-env", required=True, help="Environment variable holding the integration token.")
@click.option("--api-url", default="", help="API base; default https://api.notion.com.")
@click.pass_context
@_reports_errors
def sources_add_notion(ctx: click.Context, as_json: bool, **fields: Any) -> None:
    """The Notion pages shared with an integration."""
    _add(ctx, as_json, kind="notion", url=fields["api_url"] or "https://api.notion.com", **fields)


@sources_add.command("confluence")
@_source_options
@click.option("--url", required=True, help="The site, e.g. https://acme.atlassian.net/wiki.")
@click.option("--space", required=True, help="Space key to follow.")
@click.option("--token-env", required=True, help="Environment variable holding the API token.")
@click.option("--user-env", default=None, help="Environment variable holding the account e-mail (basic auth).")
@click.pass_context
@_reports_errors
def sources_add_confluence(ctx: click.Context, as_json: bool, **fields: Any) -> None:
    """The pages of one Confluence space."""
    _add(ctx, as_json, kind="confluence", **fields)


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def sources_list(ctx: click.Context, as_json: bool) -> None:
    """The configured sources."""
    from cluster.source_admin import SourceAdmin

    configured = SourceAdmin(_settings(ctx)).list()
    lines = [f"{c.name:<20} {c.kind:<10} {c.url}  branch={c.branch} path={c.docs_path or '.'} "
             f"version={c.effective_version} every {c.interval_s:g}s" for c in configured] or ["no sources"]
    _emit(as_json, {"sources": [c.model_dump() for c in configured]}, lines)


@sources.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def sources_status(ctx: click.Context, as_json: bool) -> None:
    """Each source's last poll, breaker and cursor; the change queue; the consumer."""
    from cluster.source_admin import SourceAdmin

    status = SourceAdmin(_settings(ctx)).status()
    queue = status["queue"]
    lines = [f"queue: depth {queue['depth']} of {queue['capacity']} ({queue['fill']:.0%}), pending "
             f"{queue['pending']}, lag {queue['lag']}, oldest pending {queue['oldest_pending_age_s']:.1f}s"]
    live = status["actors"].get("pollers", {})
    for name, source in status["sources"].items():
        st = source["status"]
        breaker = live.get(name, {}).get("state", st.get("breaker", "not polled yet"))
        lines.append(f"{name:<20} breaker {breaker:<10} last {st.get('last_status', '-'):<12} "
                     f"events {st.get('events_total', '0'):<6} cursor {source['cursor'] or '-'}"
                     + (f"  error: {st['last_error']}" if st.get("last_error") else "")
                     + _loop_note(live.get(name, {})))
    if "error" in status["actors"]:
        lines.append(f"actors: {status['actors']['error']}")
    elif not status["actors"].get("supervisor_running"):
        lines.append("pollers: not running (start them with `wekadocs serve`)")
    if status["actors"].get("watch"):
        note = _loop_note(status["actors"]["watch"])
        if note:
            lines.append(f"source watch:{note}")
    consumer = status["actors"].get("consumer") or {}
    if consumer:
        lines.append(f"consumer {consumer['name']}: {consumer['acknowledged']} events applied, "
                     f"{consumer['retry_later']} left for retry, {consumer.get('dead_lettered', 0)} dead-lettered, "
                     f"{consumer['pages']} pages read" + _loop_note(consumer))
        if consumer.get("store_breaker", "closed") != "closed":
            lines.append(f"consumer store breaker {consumer['store_breaker']}: a store of ours failed, events wait "
                         f"in the queue ({'; '.join(consumer.get('last_errors', []))})")
    _emit(as_json, status, lines)


def _loop_note(live: dict[str, Any]) -> str:
    """Nothing for a loop that runs; else its state, restarts and last crash."""
    if live.get("loop", "running") == "running" and not live.get("restarts"):
        return ""
    return (f"  loop {live.get('loop')} ({live.get('restarts', 0)} restarts"
            + (f"; last crash: {live['last_crash']}" if live.get("last_crash") else "") + ")")


@sources.command("poll")
@click.argument("name")
@click.pass_context
@_reports_errors
def sources_poll(ctx: click.Context, name: str) -> None:
    """Ask the running supervisor to poll NAME now."""
    from cluster.source_admin import SourceAdmin

    SourceAdmin(_settings(ctx)).poll_now(name)
    click.echo(f"poll of {name} requested")


@sources.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def sources_remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove a source and everything ingested from it (graph and vectors)."""
    from cluster.source_admin import SourceAdmin

    report = SourceAdmin(_settings(ctx)).remove(name)
    _emit(as_json, report.as_dict(), [
        f"removed {name}: {report.documents_deleted} documents, {report.sections_deleted} sections, "
        f"{report.vectors_deleted} vectors deleted"])


# --- tokens ----------------------------------------------------------------------


@cli.group()
def tokens() -> None:
    """API tokens for scripts calling /mcp and /metrics (kept in Redis as hashes only)."""


def _token_store(ctx: click.Context) -> Any:
    import redis

    from wekadocs.auth.api_tokens import ApiTokenStore

    client = redis.Redis.from_url(_settings(ctx).effective_redis_url, decode_responses=True,
                                  socket_timeout=10, socket_connect_timeout=5)
    return ApiTokenStore(client)


@tokens.command("create")
@click.argument("name")
@click.option("--scopes", required=True, help="Comma-separated: docs:read (the MCP tools), metrics:read (/metrics).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: name, token, scopes.")
@click.pass_context
@_reports_errors
def tokens_create(ctx: click.Context, name: str, scopes: str, as_json: bool) -> None:
    """Mint a token and print it once: only its SHA-256 is stored."""
    token, record = _token_store(ctx).create(name, [s.strip() for s in scopes.split(",") if s.strip()])
    _emit(as_json, {"name": record.name, "token": token, "scopes": record.scopes}, [
        f"token {record.name} ({', '.join(record.scopes)}); it is shown only now:", token,
        f"use it as:  Authorization: Bearer {token}"])


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """The tokens that are valid now (names and scopes; the tokens themselves are not kept)."""
    listed = _token_store(ctx).list()
    lines = [f"{t.name:<24} {','.join(t.scopes):<24} created {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t.created_at))} UTC"
             for t in listed] or ["no tokens"]
    _emit(as_json, {"tokens": [t.model_dump() for t in listed]}, lines)


@tokens.command("revoke")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def tokens_revoke(ctx: click.Context, name: str, as_json: bool) -> None:
    """Revoke a token: every replica refuses it from its next request on."""
    record = _token_store(ctx).revoke(name)
    _emit(as_json, {"revoked": record.name, "scopes": record.scopes}, [f"revoked {record.name}"])


# --- queue --------------------------------------------------------------------------


@cli.group()
def queue() -> None:
    """The change queue between sources and ingestion."""


@queue.command("dead-letters")
@click.option("--replay", is_flag=True, help="Put the dead letters' events back in the queue.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def queue_dead_letters(ctx: click.Context, replay: bool, as_json: bool) -> None:
    """Change events moved aside after failing on every allowed delivery
    (WEKADOCS_QUEUE_MAX_DELIVERIES), and entries that were never valid events."""
    from cluster.queue_admin import dead_letters

    report = dead_letters(_settings(ctx), replay=replay)
    lines = [f"{letter.entry_id}  {_letter_page(letter.event)}  deliveries {letter.deliveries}  error: {letter.error}"
             for letter in report.letters] or ["no dead letters"]
    if replay:
        lines.append(f"replayed {report.replayed}; {report.remaining} left (entries that are not events stay)")
    _emit(as_json, report.as_dict(), lines)


def _letter_page(event: ChangeEvent | None) -> str:
    return f"{event.source} {event.path!r}" if event else "(not an event)"


# --- backup and restore ----------------------------------------------------------------


@cli.command("backup")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the report and the manifest).")
@click.pass_context
@_reports_errors
def backup_cmd(ctx: click.Context, directory: Path, as_json: bool) -> None:
    """Back up the graph (neo4j-admin dump; Neo4j stops meanwhile), the vector
    collections with their registry and alias, and our Redis keys into DIRECTORY
    (new or empty), with manifest.json."""
    from cluster.backup import backup

    report = backup(_settings(ctx), directory)
    manifest = report.manifest
    lines = [f"backup written to {report.folder} in {report.seconds:.1f} s; Neo4j was down "
             f"{report.neo4j_downtime_s:.1f} s",
             f"consistency point: {manifest.consistency_point} (later writes are not in it)"]
    lines += [f"{name:<8} " + ", ".join(f"{k} {v}" for k, v in part.counts.items())
              for name, part in sorted(manifest.parts.items())]
    _emit(as_json, report.as_dict(), lines)


@cli.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a stack that holds data (a safety backup of it is taken first).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_reports_errors
def restore_cmd(ctx: click.Context, directory: Path, force: bool, as_json: bool) -> None:
    """Restore a backup made by `wekadocs backup`: files checked first, then the
    graph, vectors and Redis keys replaced and verified against the manifest."""
    from cluster.backup import restore

    report = restore(_settings(ctx), directory, force=force)
    lines = [f"restored {report.folder} (consistency point {report.manifest.consistency_point}) in "
             f"{report.seconds:.1f} s; Neo4j was down {report.neo4j_downtime_s:.1f} s"]
    if report.safety_backup:
        lines.append(f"the data it replaced is in {report.safety_backup} (remove it when satisfied)")
    lines += [f"verified {name:<8} " + ", ".join(f"{k} {v}" for k, v in part["counts"].items())
              for name, part in sorted(report.verified.items())]
    _emit(as_json, report.as_dict(), lines)


@cli.command("eval")
@click.argument("qrels", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--version", "version", default=None, help="Version to search (default: the current version of each source).")
@click.option("--k", default=10, show_default=True, help="Cut-off for nDCG, Recall and MRR.")
@click.option("--folds", type=click.IntRange(min=2), default=None,
              help="Cross-validate: K folds (stratified by kind), the hybrid blend fitted on the other folds.")
@click.option("--seed", default=0, show_default=True, help="Seed of the fold assignment (with --folds).")
@click.option("--json", "as_json", is_flag=True, help="Last line: one JSON object with the scores.")
@click.pass_context
@_reports_errors
def eval_cmd(ctx: click.Context, qrels: Path, version: str | None, k: int, folds: int | None, seed: int,
             as_json: bool) -> None:
    """Score the hybrid engine and its keyword-only and vector-only baselines on a qrels file;
    with --folds K, also per fold, the hybrid's blend weights tuned on the other folds."""
    from cluster.ray_runtime import connect
    from cluster.vector_owner import vector_store_for
    from wekadocs.query.assembly import open_toolbox
    from wekadocs.query.cross_validation import assign_folds, cross_validate
    from wekadocs.query.evaluation import BASELINES, evaluate_engine, load_qrels

    settings = _settings(ctx)
    questions = load_qrels(qrels)
    if folds is not None:
        assign_folds(questions, folds, seed)  # a bad --folds fails before connecting
    connect(settings, allow_in_process=False)
    toolbox = open_toolbox(settings, vector_store_for(settings))
    started = time.perf_counter()
    report = None
    if folds is None:
        results = evaluate_engine(toolbox.engine, questions, version=version, k=k)
    else:
        report = cross_validate(toolbox.engine, questions, folds, version=version, k=k, seed=seed)
        results = report.full
    best = max(BASELINES, key=lambda name: results[name][0].ndcg)
    hybrid = results["hybrid"][0]
    ratio = hybrid.ndcg / results[best][0].ndcg if results[best][0].ndcg else float("inf")
    payload: dict[str, Any] = {
        "questions": len(questions), "k": k,
        **{name: {"ndcg": round(s.ndcg, 4), "recall": round(s.recall, 4), "mrr": round(s.mrr, 4)}
           for name, (s, _) in results.items()},
        "best_baseline": best, "hybrid_vs_best_baseline": round(ratio, 3),
        "per_question": {qid: round(s.ndcg, 4) for qid, s in results["hybrid"][1].items()},
    }
    lines = [f"{len(questions)} questions from {qrels}, cut-off {k}", f"{'system':<8} nDCG   Recall MRR"]
    lines += [f"{name:<8} {s.ndcg:.3f}  {s.recall:.3f}  {s.mrr:.3f}" for name, (s, _) in results.items()]
    lines.append(f"hybrid / best baseline ({best}) nDCG@{k}: {ratio:.3f}x")
    if report is not None:
        payload["folds"] = report.as_dict()
        lines += _fold_lines(report, k)
    payload["seconds"] = round(time.perf_counter() - started, 1)
    _emit(as_json, payload, lines)


def _fold_lines(report: Any, k: int) -> list[str]:
    folds = report.as_dict()
    systems = folds["systems"]
    lines = [f"{folds['k']} folds (seed {folds['seed']}, stratified by {folds['stratified_by'] or 'nothing'}, "
             f"sizes {folds['sizes']}); hybrid's blend fitted on the other folds by coordinate ascent "
             f"on nDCG@{k} from the dev-set blend; hybrid_shipped = the weights as shipped",
             f"{'system':<15} nDCG          Recall        MRR           nDCG per fold"]
    for name, figures in systems.items():
        mean, spread = figures["mean"], figures["spread"]
        cells = "  ".join(f"{mean[m]:.3f}±{spread[m]:.3f}" for m in ("ndcg", "recall", "mrr"))
        lines.append(f"{name:<15} {cells}  " + " ".join(f"{f['ndcg']:.3f}" for f in figures["per_fold"]))
    best = max(("keyword", "vector"), key=lambda name: systems[name]["mean"]["ndcg"])
    if systems[best]["mean"]["ndcg"]:
        lines.append(f"cross-validated hybrid / best baseline ({best}) nDCG@{k}: "
                     f"{systems['hybrid']['mean']['ndcg'] / systems[best]['mean']['ndcg']:.3f}x")
    def shown(weights: dict[str, float]) -> str:
        return ", ".join(f"{name} {w:.3f}" for name, w in weights.items())
    lines += [f"fold {choice['fold']}: {shown(choice['weights'])}" for choice in folds["parameters"]]
    lines.append(f"fitted on all questions (in-sample, to ship, not to quote): {shown(folds['fitted_on_all'])}")
    return lines


def main() -> None:
    # Before any command imports Ray: Ray reads the auth mode at import time.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    cli(prog_name="wekadocs")


if __name__ == "__main__":
    main()
