"""Extra Ray worker nodes on this machine, joined to our head: ``services up --workers N``.

Each worker is a real raylet (``ray start --address 127.0.0.1:<ray_port> --block``),
as a KubeRay worker pod runs it, so what only a cluster shows (actors placed
by resources, a node that dies, Serve replicas away from the head) can be seen
on one machine. A worker

* offers ``worker_cpus`` CPUs and the custom resources ``query`` and ``embed``
  (``WORKER_RESOURCES``): it is where the MCP replicas may be sent and where
  the embedding actors of Ray Data jobs go. The head offers neither: it holds
  the stores and the vector store's owner (``node:__internal_head__``);
* has its own temp dir, ``<data_dir>/nodes/w<i>`` (its sockets, logs and
  session), whose ``--temp-dir=`` argument is the marker ``down`` looks for;
* binds only ports chosen free when it starts (node manager, object manager,
  dashboard agent, runtime-env agent, metrics, and random worker ports): Ray's
  fixed defaults (agent 52365, workers 10002-19999) would collide with the
  head's and with each other on one machine;
* keeps token authentication on (``RAY_AUTH_MODE=token``; it joins with the
  token in ``~/.ray/auth_token``, as every client does).
"""

from __future__ import annotations

import json

import httpx

from cluster.processes import free_ports, port_is_free
from cluster.ray_head import RayHead, _ray_cli, prepare_temp_dir, ray_auth_token, state_nodes
from wekadocs.errors import ServiceStartError
from wekadocs.settings import Settings

__all__ = ["RayWorker", "WORKER_RESOURCES", "DEFAULT_WORKER_CPUS", "WORKER_PREFIX", "list_nodes", "node_port_flags"]

# What a worker node is for: Serve replicas that ask for `query`, Ray Data
# embedding actors (which ask for `embed` wherever any node offers it). The
# quantities are markers, not limits: requests ask for a thousandth.
WORKER_RESOURCES = {"query": 1, "embed": 1}
DEFAULT_WORKER_CPUS = 1
WORKER_PREFIX = "ray-worker-"


class RayWorker:
    """Worker node ``index`` (1-based) of the head ``services up`` started."""

    def __init__(self, settings: Settings, index: int, cpus: int = DEFAULT_WORKER_CPUS) -> None:
        self.settings = settings
        self.index = index
        self.cpus = cpus
        self.name = f"{WORKER_PREFIX}{index}"
        # not under data_dir/ray: the head's marker (--temp-dir=<data_dir>/ray)
        # would then be a prefix of every worker's command line
        self.temp_dir = settings.data_dir / "nodes" / f"w{index}"
        self.log_file = settings.data_dir / "logs" / f"{self.name}.log"
        self._token: str | None = None

    @property
    def managed(self) -> bool:
        return self.settings.manages_ray

    @property
    def address(self) -> str:
        return f"{self.name} of {self.settings.effective_ray_address}"

    @property
    def marker(self) -> str:
        # The trailing space is the argument's end in /proc/<pid>/cmdline
        # (arguments are NUL-separated, read back with spaces): w1 is then
        # not a prefix of w10.
        return f"--temp-dir={self.temp_dir} "

    def prepare(self) -> None:
        prepare_temp_dir(self.name, self.temp_dir, self.settings)

    def ports(self) -> dict[str, int]:
        return {}  # every port is chosen free in command()

    def details(self) -> dict[str, object]:
        """Recorded beside the pid (``services status`` shows them)."""
        return {"cpus": self.cpus, "resources": WORKER_RESOURCES, "node_name": self.name}

    def command(self) -> list[str]:
        s = self.settings
        taken = (*RayHead(s).ports().values(), s.neo4j_port, s.redis_port)
        return [
            _ray_cli(),
            "start",
            f"--address={s.effective_ray_address}",
            "--block",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
            f"--node-name={self.name}",
            f"--num-cpus={self.cpus}",
            f"--resources={json.dumps(WORKER_RESOURCES, separators=(',', ':'))}",
            *node_port_flags(avoid=taken),
            f"--object-store-memory={s.ray_object_store_mb * 1024 * 1024}",
            f"--temp-dir={self.temp_dir}",
        ]

    def env(self) -> dict[str, str]:
        return RayHead(self.settings).env()

    def probe(self) -> str:
        """The node's state once it has registered with the head's GCS."""
        if self._token is None:
            self._token = ray_auth_token()
        for node in state_nodes(self.settings, self._token):
            if node.get("node_name") == self.name and node.get("state") == "ALIVE":
                return f"node {node['node_id'][:12]}"
        raise ServiceStartError(self.name, "the node has not registered with the head yet")


def node_port_flags(avoid: tuple[int, ...] = ()) -> list[str]:
    """``ray start`` flags for a second node on this machine: every port a
    worker node binds, chosen free now. Ray's fixed defaults (agent 52365,
    workers 10002-19999) would collide with the head's and each other's."""
    node_manager, object_manager, agent, agent_grpc, runtime_env, metrics = free_ports(6, avoid=avoid)
    return [
        f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}",
        "--min-worker-port=0",  # 0/0: each worker process binds a port the kernel picks
        "--max-worker-port=0",
    ]


def list_nodes(settings: Settings) -> list[dict[str, object]]:
    """The alive nodes of our head's cluster: head first, then the workers by
    name; each with its id, CPUs and custom resources. Empty when the head is
    not ours or does not answer."""
    if not settings.manages_ray or port_is_free(settings.ray_dashboard_port):
        return []  # not our head, or it is not running
    try:
        nodes = state_nodes(settings, ray_auth_token())
    except (httpx.HTTPError, ServiceStartError, KeyError, ValueError):
        return []
    listed = []
    for node in nodes:
        if node.get("state") != "ALIVE":
            continue
        resources = {k: v for k, v in (node.get("resources_total") or {}).items()
                     if not k.startswith("node:") and k not in ("memory", "object_store_memory")}
        listed.append({"name": "head" if node.get("is_head_node") else node.get("node_name", ""),
                       "node_id": node["node_id"], "head": bool(node.get("is_head_node")),
                       "alive": True, "resources": resources})
    return sorted(listed, key=lambda n: (not n["head"], _worker_order(str(n["name"]))))


def _worker_order(name: str) -> tuple[int, str]:
    suffix = name.removeprefix(WORKER_PREFIX)
    return (int(suffix), "") if suffix.isdigit() else (1 << 30, name)
