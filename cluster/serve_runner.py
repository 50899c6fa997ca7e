"""Deploying the MCP and webhook applications on the local Ray cluster (or ``RAY_ADDRESS``).

The deployment options (autoscaling, concurrency, CPUs) come from
``serve_apps/serve_config.yaml``, the same file ``serve deploy`` takes, so the
two ways of deploying cannot drift apart. The file is validated with Serve's
own schema before anything is deployed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError
from ray import serve
from ray.serve import Application
from ray.serve.schema import ServeDeploySchema

import serve_apps
from cluster.freshness import save_source_secrets, start_freshness
from cluster.ray_runtime import connect
from cluster.vector_owner import vector_store_for
from serve_apps.mcp_app import MCP_PATH, application
from serve_apps.webhook_app import webhook_application
from wekadocs.errors import ServiceError
from wekadocs.settings import Settings, load_settings

__all__ = ["SERVE_CONFIG", "ServedApp", "load_serve_config", "deploy", "undeploy", "build_app", "build_webhooks"]

SERVE_CONFIG = Path(serve_apps.__file__).with_name("serve_config.yaml")
READY_TIMEOUT_S = 180.0
# The config's import paths, each mapped to how `wekadocs serve` builds it (_BUILDERS).
MCP_IMPORT = "cluster.serve_runner:build_app"
WEBHOOKS_IMPORT = "cluster.serve_runner:build_webhooks"


@dataclass(frozen=True)
class ServedApp:
    name: str  # the MCP application
    url: str  # the MCP endpoint
    health_url: str
    webhooks_url: str  # prefix of /github, /gitlab, /health
    replicas: dict[str, Any]
    apps: tuple[str, ...] = ()


def load_serve_config(path: Path = SERVE_CONFIG) -> ServeDeploySchema:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ServeDeploySchema.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ServiceError(f"invalid Serve config {path}: {exc}") from exc


def deploy(settings: Settings, *, host: str, port: int, config: Path = SERVE_CONFIG) -> ServedApp:
    """Deploy (or update) the MCP and webhook apps; wait until both answer.

    The replicas get the settings with the listener actually used, which is
    what ``WEKADOCS_AUTH=auto`` decides on."""
    schema = load_serve_config(config)
    settings = settings.model_copy(update={"serve_host": host, "serve_port": port})
    connect(settings, allow_in_process=False)
    # the file's other proxy options (request_timeout_s, keep-alive) with our listener
    http_options = schema.http_options.model_dump(exclude_unset=True) if schema.http_options else {}
    serve.start(http_options={**http_options, "host": host, "port": port})
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{local}:{port}"
    prefixes: dict[str, str] = {}
    save_source_secrets(settings)  # replicas and actors read them from the secrets folder, on each use
    for app in schema.applications:
        if app.import_path not in _BUILDERS:
            raise ServiceError(f"{config}: no builder for import_path {app.import_path!r}")
        options = {d.name: d.model_dump(exclude_unset=True, exclude={"name"}) for d in app.deployments}
        prefix = app.route_prefix or "/"
        serve.run(_BUILDERS[app.import_path](settings, options), name=app.name, route_prefix=prefix,
                  blocking=False)
        prefixes[app.import_path] = prefix.rstrip("/")
    mcp_prefix = prefixes.get(MCP_IMPORT, "")
    hooks = f"{base}{prefixes.get(WEBHOOKS_IMPORT, '/webhooks')}"
    _await_health(f"{base}{mcp_prefix}/health")
    _await_health(f"{hooks}/health")
    start_freshness(settings, replace=True)  # the pollers and consumer the webhooks feed
    statuses = serve.status().applications
    replicas = {name: d.replica_states for app in statuses.values() for name, d in app.deployments.items()}
    return ServedApp(schema.applications[0].name, f"{base}{mcp_prefix}{MCP_PATH}", f"{base}{mcp_prefix}/health",
                     hooks, replicas, tuple(app.name for app in schema.applications))


def undeploy(settings: Settings, names: tuple[str, ...] = ()) -> None:
    connect(settings, allow_in_process=False)
    for name in names or tuple(app.name for app in load_serve_config().applications):
        serve.delete(name)


def _await_health(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=30)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(1)
    raise ServiceError(f"the Serve app did not become healthy at {url} within {READY_TIMEOUT_S:.0f}s: {last}")


def build_app(args: dict[str, Any]) -> Application:
    """Entry point of ``serve deploy``/``serve run`` with the config file:
    settings from the cluster's environment, overridden by the config's ``args``."""
    settings = load_settings(**args)
    return application(settings, partial(vector_store_for, settings))


def build_webhooks(args: dict[str, Any]) -> Application:
    """Entry point of ``serve deploy`` for the webhook app; starts (or finds)
    the freshness actors the webhooks feed."""
    settings = load_settings(**args)
    save_source_secrets(settings)
    start_freshness(settings, replace=True)
    return webhook_application(settings)


_BUILDERS: dict[str, Callable[[Settings, dict[str, Any]], Application]] = {
    MCP_IMPORT: lambda settings, options: application(
        settings, partial(vector_store_for, settings), options.get("MCPServer")),
    WEBHOOKS_IMPORT: lambda settings, options: webhook_application(
        settings, options.get("WebhookServer")),
}
