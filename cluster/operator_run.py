"""Run a built KubeRay overlay on this machine, the way the KubeRay operator would.

    python -m cluster.operator_run [--overlay dev] [--data-dir DIR] [--json]

The manifests in ``kuberay/`` are validated offline by the tests; this runs
them. It reads the objects ``kubectl kustomize`` builds and does with them
what the operator and the kubelet do, on one machine:

* **Pods → processes.** Each head and each worker replica of a group becomes
  one ``ray start --block`` in a process session of its own. Its flags are
  the group's ``rayStartParams`` plus those KubeRay derives: ``--num-cpus``
  and ``--memory`` from the container's limits, ``--num-gpus`` from a
  ``…gpu`` limit, ``--resources`` from the group's ``resources``.
* **Environment.** The Ray container's, resolved from the overlay's
  ConfigMap and Secret (``cluster/kuberay_objects.py``), and the token of
  ``authOptions`` as KubeRay injects it.
* **A RayJob** gets a cluster of its own from ``rayClusterSpec``; its
  ``entrypoint`` and ``runtimeEnvYAML`` go to that cluster's Jobs API, and
  the cluster is stopped when the job ends (``shutdownAfterJobFinishes``). A
  suspended job is run as ``kubectl patch … suspend: false`` would.
* **A RayService** gets the cluster of ``rayClusterConfig``; its
  ``serveConfigV2`` is PUT to the dashboard's Serve REST API, and the
  service is ready when every application is RUNNING. The MCP endpoint
  must then answer a search through the official MCP client.

What a single machine cannot be, it stands in for, and the report lists each
substitution: the stores' Kubernetes Services become a local Neo4j (started
with the Secret's password) and Redis, the Qdrant server the embedded store
in the run's data dir; fixed ports become free ones and every listener binds
127.0.0.1; the image's project folder is this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from cluster import processes, services
from cluster.kuberay_objects import (
    Obj,
    build_overlay,
    container_environment,
    find,
    ray_groups,
    secret_values,
)
from cluster.processes import free_port, free_ports
from cluster.ray_head import _ray_cli, prepare_temp_dir
from cluster.ray_workers import node_port_flags
from wekadocs.auth.api_tokens import ApiTokenStore
from wekadocs.errors import WekadocsError
from wekadocs.settings import Settings, load_settings

__all__ = ["IMAGE_WORKDIR", "OperatorRunError", "ray_start_params", "as_flags", "quantity", "run", "summary", "main"]

REPO = Path(__file__).resolve().parents[1]
# kuberay/image/Dockerfile's WORKDIR, where the image holds the project (a test keeps them equal).
IMAGE_WORKDIR = "/home/ray/wekadocs"
SERVICE = "wekadocs"
JOB = "wekadocs-ingest"
DEFAULT_QUERY = "how do I switch the served embedding model to a new version"
_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_POD_RESTARTS = 3
_QUANTITY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                      "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "m": 1e-3}


class OperatorRunError(WekadocsError):
    """A step of the run failed: a node that never joined, a job that did not
    succeed, an application that did not become RUNNING, an empty answer."""


# --- what KubeRay makes of a group ---------------------------------------------


def quantity(text: str | int | float) -> float:
    """A Kubernetes resource quantity ("2", "500m", "4Gi") as a number."""
    value = str(text)
    for suffix, factor in sorted(_QUANTITY_SUFFIXES.items(), key=lambda item: -len(item[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def ray_start_params(group: Obj) -> dict[str, str]:
    """The ``ray start`` parameters KubeRay gives a group's pods: its
    ``rayStartParams``, then what it derives from the Ray container's limits
    and the group's ``resources`` where the parameters do not say."""
    params = {key: str(value) for key, value in (group.get("rayStartParams") or {}).items()}
    limits = group["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
    if "num-cpus" not in params and "cpu" in limits:
        params["num-cpus"] = str(math.ceil(quantity(limits["cpu"])))  # KubeRay rounds a CPU limit up
    if "memory" not in params and "memory" in limits:
        params["memory"] = str(int(quantity(limits["memory"])))
    gpus = [value for name, value in limits.items() if name.endswith("gpu")]
    if "num-gpus" not in params and gpus:
        params["num-gpus"] = str(int(quantity(gpus[0])))
    if "resources" not in params and group.get("resources"):
        custom = {name: quantity(value) for name, value in group["resources"].items()}
        params["resources"] = json.dumps({k: int(v) if v == int(v) else v for k, v in custom.items()},
                                         separators=(",", ":"))
    return params


def as_flags(params: dict[str, str]) -> list[str]:
    """KubeRay's rendering: ``--key`` for a value of "true", ``--key=value`` otherwise."""
    return [f"--{key}" if value.lower() == "true" else f"--{key}={value}" for key, value in params.items()]


# --- one machine in place of the cluster's pods ----------------------------------------------


@dataclass
class LocalStores:
    """The local Neo4j and Redis standing in for the overlay's StatefulSets."""

    settings: Settings

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """A pod's environment with the stores' addresses made local."""
        local = dict(env)
        local["NEO4J_URI"] = f"bolt://127.0.0.1:{self.settings.neo4j_port}"
        local["REDIS_URL"] = self.settings.effective_redis_url
        for name in ("QDRANT_URL", "QDRANT_API_KEY"):
            local.pop(name, None)
        local["WEKADOCS_DATA_DIR"] = str(self.settings.data_dir)
        return local


def substitutions(stores: LocalStores) -> list[str]:
    s = stores.settings
    return [
        f"Services wekadocs-neo4j/-redis → Neo4j on 127.0.0.1:{s.neo4j_port} (the Secret's password), "
        f"Redis on 127.0.0.1:{s.redis_port} (no password)",
        f"QDRANT_URL → unset: the embedded vector store under {s.data_dir}",
        f"image folder {IMAGE_WORKDIR} → {REPO} (PYTHONPATH), the image's Python → {sys.executable}",
        "fixed ports (6379, 8265, 10001, 8000, 52365, 8080) → free ones; hosts 0.0.0.0 → 127.0.0.1",
        f"object store per node → {s.ray_object_store_mb} MiB (WEKADOCS_RAY_OBJECT_STORE_MB) unless "
        "rayStartParams set object-store-memory",
    ]


@dataclass
class Pod:
    name: str
    command: list[str]
    env: dict[str, str]
    log_file: Path
    pid: int | None = None
    restarts: int = 0

    def start(self) -> None:
        self.pid = processes.spawn(self.command, log_file=self.log_file, env=self.env, inherit_env=False)

    @property
    def marker(self) -> str:
        # --temp-dir is the last argument: with the NUL after it read back as
        # a space, pod-1 is not a prefix of pod-10
        return f"{self.command[-1]} "


@dataclass
class LocalRayCluster:
    """One RayClusterSpec, its head and worker replicas as local processes."""

    name: str
    spec: Obj
    objects: tuple[Obj, ...]
    stores: LocalStores
    pods: list[Pod] = field(default_factory=list)
    gcs_port: int = 0
    dashboard_port: int = 0
    token: str = ""

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, timeout_s: float = 240) -> None:
        groups = list(ray_groups(self.spec))
        head_name, head_group = groups[0]
        self.gcs_port, self.dashboard_port, client, agent, metrics = free_ports(
            5, avoid=(self.stores.settings.neo4j_port, self.stores.settings.redis_port))
        head_env = self._environment(head_group)
        self.token = head_env.get("RAY_AUTH_TOKEN", "")
        params = ray_start_params(head_group)
        params.update({"port": str(self.gcs_port), "dashboard-port": str(self.dashboard_port),
                       "ray-client-server-port": str(client), "dashboard-agent-listen-port": str(agent),
                       "metrics-export-port": str(metrics), "dashboard-host": "127.0.0.1"})
        self._spawn(f"{self.name}-head", ["--head", *as_flags(params)], head_env)
        self._await_nodes(1, timeout_s)
        for group_name, group in groups[1:]:
            env = self._environment(group)
            for replica in range(1, int(group.get("replicas", 1)) + 1):
                pod = f"{self.name}-{group_name}-{replica}"
                flags = [f"--address=127.0.0.1:{self.gcs_port}", *as_flags(ray_start_params(group)),
                         *node_port_flags(avoid=(self.gcs_port, self.dashboard_port, client))]
                self._spawn(pod, flags, env)
        self._await_nodes(len(self.pods), timeout_s)

    def stop(self) -> None:
        for pod in reversed(self.pods):
            if pod.pid is not None:
                processes.terminate(pod.pid, pod.marker, grace_s=30)

    def nodes(self) -> list[dict[str, Any]]:
        """The alive nodes: name, id, and what each offers (CPU, memory in bytes, custom resources)."""
        response = self.get("/api/v0/nodes", params={"limit": 100, "detail": "true"})
        listed = []
        for node in response["data"]["result"]["result"]:
            if node.get("state") == "ALIVE":
                resources = {k: v for k, v in (node.get("resources_total") or {}).items()
                             if not k.startswith("node:") and k != "object_store_memory"}
                listed.append({"name": node.get("node_name", ""), "node_id": node["node_id"],
                               "head": bool(node.get("is_head_node")), "resources": resources})
        return sorted(listed, key=lambda n: (not n["head"], n["name"]))

    def get(self, path: str, **kwargs: Any) -> Any:
        response = httpx.get(self.dashboard_url + path, headers=self._auth(), timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: Obj) -> Any:
        response = httpx.request(method, self.dashboard_url + path, json=body, headers=self._auth(), timeout=120)
        if response.is_error:
            raise OperatorRunError(f"{method} {path} → {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _environment(self, group: Obj) -> dict[str, str]:
        container = group["template"]["spec"]["containers"][0]
        env = container_environment(container, self.objects, _secret_reader(self.objects))
        auth = self.spec.get("authOptions") or {}
        if auth.get("mode") == "token":  # what KubeRay injects into every Ray container
            env = {"RAY_AUTH_MODE": "token",
                   "RAY_AUTH_TOKEN": _secret_reader(self.objects)(auth["secretName"], "auth_token"), **env}
        base = {"PATH": os.pathsep.join((str(Path(sys.executable).parent), os.defpath)),
                "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO)}
        return {**base, **self.stores.environment(env)}

    def _spawn(self, pod: str, flags: list[str], env: dict[str, str]) -> None:
        data_dir = self.stores.settings.data_dir
        temp_dir = data_dir.parent / "pods" / pod
        prepare_temp_dir(pod, temp_dir, self.stores.settings)
        s = self.stores.settings
        params = [*flags, "--node-ip-address=127.0.0.1", f"--node-name={pod}"]
        if not any(flag.startswith("--object-store-memory") for flag in flags):
            params.append(f"--object-store-memory={s.ray_object_store_mb * 1024 * 1024}")
        command = [_ray_cli(), "start", "--block", "--disable-usage-stats", *params, f"--temp-dir={temp_dir}"]
        log_file = data_dir.parent / "logs" / f"{pod}.log"
        record = Pod(pod, command, env, log_file)
        record.start()
        self.pods.append(record)

    def _await_nodes(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            for pod in self.pods:
                if pod.pid is not None and not processes.is_alive(pod.pid):
                    self._restart(pod)
            try:
                alive = len(self.nodes())
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if alive >= count:
                    return
                last = f"{alive} of {count} nodes alive"
            time.sleep(1)
        raise OperatorRunError(f"cluster {self.name}: not ready within {timeout_s:g} s ({last})")


    def _restart(self, pod: Pod) -> None:
        """What the kubelet does for a container that exits (restartPolicy
        Always): start it again, a few times. ``ray start`` exits when its
        raylet takes over 30 s to register, as it can on a loaded machine."""
        if pod.restarts >= _POD_RESTARTS:
            raise OperatorRunError(f"pod {pod.name} exited {pod.restarts + 1} times; its log is {pod.log_file}")
        if pod.pid is not None:
            processes.terminate(pod.pid, pod.marker, grace_s=10)  # what is left of its session
        pod.restarts += 1
        pod.start()


def _secret_reader(objects: tuple[Obj, ...]) -> Any:
    values = secret_values(objects)

    def read(name: str, key: str) -> str:
        if (name, key) not in values:
            raise OperatorRunError(f"the overlay creates no Secret {name} with key {key}: this run needs an "
                                   "overlay that carries its Secret (dev does; prod expects it created)")
        return values[(name, key)]

    return read


# --- the RayJob and the RayService ----------------------------------------------


def run_job(job: Obj, objects: tuple[Obj, ...], stores: LocalStores, timeout_s: float) -> dict[str, Any]:
    spec = job["spec"]
    cluster = LocalRayCluster("job", spec["rayClusterSpec"], objects, stores)
    entrypoint = spec["entrypoint"].replace(IMAGE_WORKDIR, str(REPO))
    runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "") or {}
    started = time.monotonic()
    try:
        cluster.start()
        nodes = cluster.nodes()
        submission_id = f"{job['metadata']['name']}-{uuid.uuid4().hex[:8]}"
        cluster.send("POST", "/api/jobs/", {"entrypoint": entrypoint, "runtime_env": runtime_env,
                                            "submission_id": submission_id})
        deadline = time.monotonic() + timeout_s
        while (status := cluster.get(f"/api/jobs/{submission_id}")["status"]) not in _TERMINAL:
            if time.monotonic() > deadline:
                raise OperatorRunError(f"job {submission_id} still {status} after {timeout_s:g} s")
            time.sleep(2)
        logs = cluster.get(f"/api/jobs/{submission_id}/logs")["logs"]
    finally:
        if spec.get("shutdownAfterJobFinishes", False):
            cluster.stop()
    if status != "SUCCEEDED":
        raise OperatorRunError(f"job {submission_id} {status}:\n{logs[-3000:]}")
    summary_lines = [line for line in logs.splitlines() if line.startswith("{")]
    if not summary_lines:
        raise OperatorRunError(f"job {submission_id} printed no JSON summary:\n{logs[-3000:]}")
    summary = json.loads(summary_lines[-1])
    names = {node["node_id"]: node["name"] for node in nodes}
    return {"name": job["metadata"]["name"], "submission_id": submission_id, "status": status,
            "entrypoint": entrypoint, "runtime_env": runtime_env, "nodes": nodes,
            "embedded_per_pod": {names.get(node, node): count
                                 for node, count in summary.get("embedded_per_node", {}).items()},
            "seconds": round(time.monotonic() - started, 1), "summary": summary,
            "pod_restarts": {pod.name: pod.restarts for pod in cluster.pods},
            "cluster_stopped": bool(spec.get("shutdownAfterJobFinishes", False))}


def run_service(service: Obj, objects: tuple[Obj, ...], stores: LocalStores, query: str,
                timeout_s: float) -> dict[str, Any]:
    cluster = LocalRayCluster("svc", service["spec"]["rayClusterConfig"], objects, stores)
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    port = free_port(avoid=(stores.settings.neo4j_port, stores.settings.redis_port))
    config.setdefault("http_options", {}).update(host="127.0.0.1", port=port)
    started = time.monotonic()
    try:
        cluster.start()
        cluster.send("PUT", "/api/serve/applications/", config)
        applications = _await_running(cluster, [app["name"] for app in config["applications"]], timeout_s)
        url = f"http://127.0.0.1:{port}/mcp"
        auth = _auth_check(url, service, objects, stores)
        answer = _search(url, query, auth.pop("token", None))
        names = {node["node_id"]: node["name"] for node in cluster.nodes()}
        replicas = {f"{app}/{name}": sorted(names.get(r["node_id"], r["node_id"]) for r in deployment["replicas"])
                    for app, details in applications.items()
                    for name, deployment in details["deployments"].items()}
        return {"name": service["metadata"]["name"], "nodes": cluster.nodes(), "url": url, "auth": auth,
                "applications": {app: details["status"] for app, details in applications.items()},
                "replicas": replicas, "search": answer, "seconds": round(time.monotonic() - started, 1),
                "pod_restarts": {pod.name: pod.restarts for pod in cluster.pods}}
    finally:
        cluster.stop()


def _await_running(cluster: LocalRayCluster, names: list[str], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        applications = cluster.get("/api/serve/applications/").get("applications", {})
        states = {name: applications.get(name, {}).get("status", "MISSING") for name in names}
        if all(state == "RUNNING" for state in states.values()):
            return {name: applications[name] for name in names}
        failed = {n: applications[n].get("message", "") for n, s in states.items() if s == "DEPLOY_FAILED"}
        if failed:
            raise OperatorRunError(f"Serve applications failed to deploy: {failed}")
        if time.monotonic() > deadline:
            raise OperatorRunError(f"Serve applications not RUNNING after {timeout_s:g} s: {states}")
        time.sleep(2)


def _auth_check(url: str, service: Obj, objects: tuple[Obj, ...], stores: LocalStores) -> dict[str, Any]:
    """Whether the pods' settings turn bearer tokens on (``WEKADOCS_AUTH``,
    ``WEKADOCS_SERVE_HOST``); if so, a call without a token must get 401, and
    an API token is minted as an operator would (``wekadocs tokens create``)."""
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = container_environment(head, objects, _secret_reader(objects))
    fields = {"WEKADOCS_AUTH": "auth", "WEKADOCS_SERVE_HOST": "serve_host"}
    enabled = load_settings(**{field: env[name] for name, field in fields.items() if name in env}).auth_enabled
    if not enabled:
        return {"enabled": False}
    without = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=60,
                         headers={"Accept": "application/json, text/event-stream"})
    if without.status_code != 401:
        raise OperatorRunError(f"auth is on in the pods, yet a call without a token got {without.status_code}")
    client = redis.Redis.from_url(stores.settings.effective_redis_url)
    try:
        token, _ = ApiTokenStore(client).create(f"operator-run-{uuid.uuid4().hex[:6]}", ["docs:read"])
    finally:
        client.close()
    return {"enabled": True, "without_token": without.status_code, "token": token}


def _search(url: str, query: str, token: str | None) -> dict[str, Any]:
    # the official client, as an LLM host would call
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def call() -> Any:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            return await client.call_tool("search_documentation", {"query": query, "top_k": 3})

    result = asyncio.run(call())
    if result.is_error:
        raise OperatorRunError(f"search_documentation failed: {result.content}")
    found = dict(result.structured_content or {})
    evidence = found.get("evidence") or []
    if not evidence:
        raise OperatorRunError(f"search_documentation found nothing for {query!r}: {found}")
    return {"query": query, "evidence": len(evidence), "top": evidence[0].get("path"),
            "confidence": found.get("confidence"), "collection": found.get("diagnostics", {}).get("collection")}


# --- the whole run --------------------------------------------------------------


def run(overlay: str, data_dir: Path, *, query: str = DEFAULT_QUERY, job_timeout_s: float = 900,
        serve_timeout_s: float = 600) -> dict[str, Any]:
    """Build ``overlay``, run its ingest RayJob, then its RayService, and ask it a search."""
    started = time.monotonic()
    objects = build_overlay(overlay)
    service, job = find(objects, "RayService", SERVICE), find(objects, "RayJob", JOB)
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = container_environment(head, objects, _secret_reader(objects))
    s = load_settings(data_dir=data_dir / "data", ray_address="kuberay-pods",  # Ray is the pods', not ours
                      neo4j_user=env.get("NEO4J_USER", "neo4j"), neo4j_password=env["NEO4J_PASSWORD"],
                      **dict(zip(("neo4j_port", "redis_port"), free_ports(2))))
    stores = LocalStores(s)
    report: dict[str, Any] = {"overlay": str(overlay), "data_dir": str(data_dir),
                              "substitutions": substitutions(stores)}
    try:
        services.up(s)
        report["job"] = run_job(job, objects, stores, job_timeout_s)
        report["service"] = run_service(service, objects, stores, query, serve_timeout_s)
    finally:
        services.down(s)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.operator_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", default="dev", help="an overlay of kuberay/overlays, or a folder (default: dev)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the pods' temp dirs, logs and the stores' data go (default: a new "
                             "temporary folder; keep it short, Ray's socket paths must fit)")
    parser.add_argument("--query", default=DEFAULT_QUERY, help="the search the MCP endpoint must answer")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="wd-op-"))
    try:
        report = run(args.overlay, data_dir.absolute(), query=args.query)
    except WekadocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else summary(report))
    return 0


def summary(report: dict[str, Any]) -> str:
    job, service = report["job"], report["service"]
    lines = [f"overlay {report['overlay']}: operator-style run in {report['seconds']} s ({report['data_dir']})",
             *(f"  local: {line}" for line in report["substitutions"]),
             f"RayJob {job['name']}: {job['status']} in {job['seconds']} s on "
             f"{', '.join(n['name'] for n in job['nodes'])}; {job['summary'].get('sections_written')} sections "
             f"written, embedded per pod {job['embedded_per_pod']}",
             f"RayService {service['name']}: {service['applications']} on "
             f"{', '.join(n['name'] for n in service['nodes'])}; replicas {service['replicas']}",
             f"bearer tokens {'on (401 without one)' if service['auth']['enabled'] else 'off'}; "
             f"search {service['search']['query']!r}: {service['search']['evidence']} hits, "
             f"top {service['search']['top']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
