"""Our own Ray head (``ray start --head --block``), kept up by ``services up``.

A long-lived head, rather than the throwaway cluster ``ray.init()`` starts,
is what lets ``wekadocs serve --detach`` outlive the CLI and what
``ray job submit`` talks to. Token authentication stays **on**: Ray 2.60
enables it for local clusters, and we make that explicit (``RAY_AUTH_MODE=token``)
and generate the token up front, so the dashboard and the Jobs API answer 401
to anyone without ``~/.ray/auth_token``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from cluster.processes import free_port
from wekadocs.errors import MissingToolError, ServiceStartError
from wekadocs.settings import Settings

__all__ = ["RayHead", "ray_auth_token", "prepare_temp_dir", "state_nodes"]

# Ray puts unix sockets under its temp dir; their paths must fit in 107 bytes.
_MAX_TEMP_DIR = 40


class RayHead:
    """One Ray head node on 127.0.0.1, its temp dir under ``data_dir/ray``."""

    name = "ray"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.temp_dir = settings.data_dir / "ray"
        self.log_file = settings.data_dir / "logs" / "ray-head.log"
        self._token: str | None = None

    @property
    def managed(self) -> bool:
        return self.settings.manages_ray

    @property
    def address(self) -> str:
        return self.settings.effective_ray_address

    @property
    def marker(self) -> str:
        return f"--temp-dir={self.temp_dir}"

    def prepare(self) -> None:
        prepare_temp_dir(self.name, self.temp_dir, self.settings)
        ray_auth_token(generate=True)

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {
            "ray_port": s.ray_port,
            "ray_dashboard_port": s.ray_dashboard_port,
            "ray_client_port": s.ray_client_port,
            "ray_metrics_port": s.ray_metrics_port,
        }

    def command(self) -> list[str]:
        s = self.settings
        # Fixed defaults would collide with a second head on the same machine, and
        # the servers starting beside this one have not bound their ports yet.
        agent_port = free_port(avoid=(*self.ports().values(), s.neo4j_port, s.redis_port))
        command = [
            _ray_cli(),
            "start",
            "--head",
            "--block",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
            f"--port={s.ray_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={s.ray_dashboard_port}",
            f"--ray-client-server-port={s.ray_client_port}",
            f"--dashboard-agent-listen-port={agent_port}",
            f"--metrics-export-port={s.ray_metrics_port}",
            f"--object-store-memory={s.ray_object_store_mb * 1024 * 1024}",
            self.marker,
        ]
        if s.ray_num_cpus is not None:
            command.append(f"--num-cpus={s.ray_num_cpus}")
        return command

    def env(self) -> dict[str, str]:
        # Ray starts its workers at nice 15 so the raylet and GCS win any
        # contention. On this head the workers are the service (Serve replicas,
        # the vector owner) and share the cores with Neo4j at nice 0, so at
        # nice 15 they lost every contended slice to the database they wait on:
        # concurrency-8 searches went from 11 to 15.5 req/s at nice 0.
        return {"RAY_AUTH_MODE": "token", "RAY_worker_niceness": "0"}

    def probe(self) -> str:
        """The head's Ray version, asked of its dashboard with the token, once
        the head node is alive in the GCS: the dashboard answers before the
        raylet has registered, and ``ray start`` gives up (and exits) when
        registration takes over 30 s, as it can on a loaded machine."""
        if not self.managed:
            return ""  # an external cluster's dashboard address is not ours to guess
        if self._token is None:
            self._token = ray_auth_token()
        alive = [node for node in state_nodes(self.settings, self._token)
                 if node.get("is_head_node") and node.get("state") == "ALIVE"]
        if not alive:
            raise ServiceStartError(self.name, "the head node has not registered yet")
        response = httpx.get(f"{self.settings.dashboard_url}/api/version",
                             headers={"Authorization": f"Bearer {self._token}"}, timeout=3)
        response.raise_for_status()
        return str(response.json()["ray_version"])


_token: str | None = None  # ray_auth_token's answer, kept: asking Ray's CLI takes seconds


def ray_auth_token(*, generate: bool = False) -> str:
    """The token Ray clients present (``ray get-auth-token``), made if asked."""
    global _token
    if _token is not None and not generate:
        return _token
    command = [_ray_cli(), "get-auth-token"] + (["--generate"] if generate else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise ServiceStartError(
            "ray", "no Ray authentication token: " + result.stderr.strip()[-300:]
        )
    _token = result.stdout.strip()
    return _token


def prepare_temp_dir(service: str, temp_dir: Path, settings: Settings) -> None:
    """A node's temp dir, refused when Ray's socket paths under it would not fit."""
    if len(str(temp_dir)) > _MAX_TEMP_DIR:
        below_data_dir = len(str(temp_dir)) - len(str(settings.data_dir))
        raise ServiceStartError(
            service,
            f"Ray's temp dir {temp_dir} is too long for its unix sockets; "
            f"use a WEKADOCS_DATA_DIR under {_MAX_TEMP_DIR - below_data_dir} characters",
        )
    temp_dir.mkdir(parents=True, exist_ok=True)


def state_nodes(settings: Settings, token: str) -> list[dict[str, object]]:
    """Every node of our head's cluster, as the dashboard's state API lists it."""
    return state_list(settings, "nodes", token, timeout_s=5)


def state_list(settings: Settings, kind: str, token: str, *, timeout_s: float = 30) -> list[dict[str, Any]]:
    """``kind`` (nodes, actors, tasks...) as our head's state API lists them, with details.
    Asked of our head by address: ``ray.util.state`` without one refuses to pick
    when another Ray runs on this machine."""
    response = httpx.get(f"{settings.dashboard_url}/api/v0/{kind}", params={"limit": 10_000, "detail": "true"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)
    response.raise_for_status()
    return list(response.json()["data"]["result"]["result"])


def _ray_cli() -> str:
    # The `ray` next to our interpreter: the one whose version we pinned.
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        raise MissingToolError("ray", "install the project (pip install -e .) to get Ray's CLI")
    return found
