"""Deploying the MCP application on the local Ray cluster (or ``RAY_ADDRESS``).

The deployment options (autoscaling, concurrency, CPUs) come from
``serve_apps/serve_config.yaml``, the same file ``serve deploy`` takes, so the
two ways of deploying cannot drift apart. The file is validated with Serve's
own schema before anything is deployed.
"""

from __future__ import annotations

import time
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
from cluster.ray_runtime import connect
from cluster.vector_owner import vector_store_for
from serve_apps.mcp_app import MCP_PATH, application
from wekadocs.errors import ServiceError
from wekadocs.settings import Settings, load_settings

__all__ = ["SERVE_CONFIG", "ServedApp", "load_serve_config", "deploy", "undeploy", "build_app"]

SERVE_CONFIG = Path(serve_apps.__file__).with_name("serve_config.yaml")
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ServedApp:
    name: str
    url: str  # the MCP endpoint
    health_url: str
    replicas: dict[str, Any]


def load_serve_config(path: Path = SERVE_CONFIG) -> ServeDeploySchema:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ServeDeploySchema.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ServiceError(f"invalid Serve config {path}: {exc}") from exc


def deploy(settings: Settings, *, host: str, port: int, config: Path = SERVE_CONFIG) -> ServedApp:
    """Deploy (or update) the MCP app and wait until /health answers."""
    schema = load_serve_config(config)
    app = schema.applications[0]
    options = {d.name: d.model_dump(exclude_unset=True, exclude={"name"}) for d in app.deployments}
    connect(settings, allow_in_process=False)
    serve.start(http_options={"host": host, "port": port})
    mcp = application(settings, partial(vector_store_for, settings), options.get("MCPServer"))
    serve.run(mcp, name=app.name, route_prefix=app.route_prefix or "/", blocking=False)
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{local}:{port}"
    _await_health(f"{base}/health")
    status = serve.status().applications[app.name]
    replicas = {name: d.replica_states for name, d in status.deployments.items()}
    return ServedApp(app.name, f"{base}{MCP_PATH}", f"{base}/health", replicas)


def undeploy(settings: Settings, name: str | None = None) -> None:
    connect(settings, allow_in_process=False)
    serve.delete(name or load_serve_config().applications[0].name)


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
    raise ServiceError(f"the MCP app did not become healthy at {url} within {READY_TIMEOUT_S:.0f}s: {last}")


def build_app(args: dict[str, Any]) -> Application:
    """Entry point of ``serve deploy``/``serve run`` with the config file:
    settings from the cluster's environment, overridden by the config's ``args``."""
    settings = load_settings(**args)
    return application(settings, partial(vector_store_for, settings))
