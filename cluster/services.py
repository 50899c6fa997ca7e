"""``wekadocs services up|down|status``: the local Neo4j, Redis and Ray head we own,
and the Ray worker nodes joined to that head.

``up`` is idempotent: a service whose recorded process is alive and answering
is left alone. ``down`` stops exactly the processes ``up`` recorded. A service
configured with an external address (``NEO4J_URI``, ``REDIS_URL``) is never
started or stopped, only probed.

Worker nodes (``cluster/ray_workers.py``) are recorded one by one like the
services (``run/ray-worker-<i>.json``). ``up(workers=N)`` makes their number
N (workers above N are stopped); ``up()`` keeps the number recorded now, and
restarts a recorded worker that is no longer running. ``down`` stops them
first, then the services.

Prometheus (``cluster/prometheus_server.py``) is one more service, started
only when asked (``up(monitoring=True)``) and kept by later ``up`` calls while
it is recorded (``run/prometheus.json``); ``up(monitoring=False)`` stops it.
``down`` and ``status`` include it whenever it is recorded.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from cluster import processes
from cluster.neo4j_server import Neo4jServer
from cluster.prometheus_server import PrometheusServer
from cluster.ray_head import RayHead
from cluster.ray_workers import DEFAULT_WORKER_CPUS, WORKER_PREFIX, RayWorker
from cluster.redis_server import RedisServer
from wekadocs.errors import ServiceStartError, WekadocsError
from wekadocs.settings import Settings

__all__ = ["ServiceReport", "services_for", "workers_for", "up", "down", "status", "start_one", "stop_one",
           "status_one"]


class LocalServer(Protocol):
    name: str
    log_file: Path

    @property
    def managed(self) -> bool: ...
    @property
    def address(self) -> str: ...
    @property
    def marker(self) -> str: ...
    def prepare(self) -> None: ...
    def ports(self) -> dict[str, int]: ...
    def command(self) -> list[str]: ...
    def env(self) -> dict[str, str]: ...
    def probe(self) -> str: ...


@dataclass(frozen=True)
class ServiceReport:
    """One service's state as shown by ``status`` and returned by ``up``/``down``."""

    name: str
    state: str  # running | started | stopped | external | unreachable
    address: str
    version: str = ""
    pid: int | None = None
    log_file: str = ""
    detail: str = ""


def services_for(settings: Settings, *, monitoring: bool | None = None) -> list[LocalServer]:
    """The stores and the Ray head, then Prometheus when ``monitoring`` (None:
    when it is recorded, i.e. a previous ``up`` started it)."""
    servers: list[LocalServer] = [Neo4jServer(settings), RedisServer(settings), RayHead(settings)]
    if monitoring is None:
        monitoring = _state_file(settings, PrometheusServer.name).exists()
    if monitoring:
        servers.append(PrometheusServer(settings))
    return servers


def workers_for(settings: Settings) -> list[RayWorker]:
    """The worker nodes recorded now (running or not), by index, with their recorded CPUs."""
    workers = []
    for path in (settings.data_dir / "run").glob(f"{WORKER_PREFIX}*.json"):
        suffix = path.stem.removeprefix(WORKER_PREFIX)
        if suffix.isdigit():
            record = read_state(settings, path.stem) or {}
            cpus = record.get("cpus")
            workers.append(RayWorker(settings, int(suffix), cpus if isinstance(cpus, int) else DEFAULT_WORKER_CPUS))
    return sorted(workers, key=lambda worker: worker.index)


def up(settings: Settings, *, workers: int | None = None, worker_cpus: int | None = None,
       monitoring: bool | None = None) -> list[ServiceReport]:
    """Start every managed service that is not already running; wait until each answers.
    Then bring the Ray worker nodes to ``workers`` (None: as many as are recorded),
    each offering ``worker_cpus`` CPUs (None: what it was started with, else
    ``DEFAULT_WORKER_CPUS``); a worker recorded with other CPUs is restarted.
    ``monitoring`` starts Prometheus (False stops it; None keeps it as recorded).

    What can be refused at once (an external server that does not answer, a
    port held by another program) is, before anything starts. Then the
    services, which do not depend on each other, start side by side: a cold
    ``up`` takes as long as the slowest (Neo4j), not the sum. When one still
    fails, the others finish starting (and are recorded, so ``down`` stops
    them) before the first error is raised.
    """
    if workers and not settings.manages_ray:
        raise ServiceStartError("ray", "worker nodes join our own Ray head; with RAY_ADDRESS set, "
                                "add nodes to that cluster instead")
    if monitoring and not settings.manages_ray:
        raise ServiceStartError(PrometheusServer.name, "our Prometheus scrapes our own Ray head's nodes; with "
                                "RAY_ADDRESS set, the cluster's own Prometheus scrapes it (see docs/operations.md)")
    recorded = _state_file(settings, PrometheusServer.name).exists()
    stopped = [_down_one(settings, PrometheusServer(settings))] if monitoring is False and recorded else []
    servers = services_for(settings, monitoring=monitoring)
    current = [_status_one(settings, server) for server in servers]
    for server, state in zip(servers, current):
        _refuse_early(server, state)
    with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="services-up") as pool:
        futures = [pool.submit(_up_one, settings, server, state) for server, state in zip(servers, current)]
    errors = [future.exception() for future in futures if future.exception() is not None]
    if errors:
        raise errors[0]
    return [future.result() for future in futures] + stopped + _scale_workers(settings, workers, worker_cpus)


def _scale_workers(settings: Settings, count: int | None, cpus: int | None) -> list[ServiceReport]:
    """Stop the workers above ``count`` and those to restart with other CPUs;
    start (or keep) workers 1..count, side by side."""
    if not settings.manages_ray:
        return []
    recorded = {worker.index: worker for worker in workers_for(settings)}
    target = len(recorded) if count is None else count
    retire = [w for i, w in recorded.items() if i > target or (cpus is not None and w.cpus != cpus)]
    wanted = [RayWorker(settings, i, cpus or (recorded[i].cpus if i in recorded else DEFAULT_WORKER_CPUS))
              for i in range(1, target + 1)]
    reports = {}
    if retire:
        with ThreadPoolExecutor(max_workers=len(retire), thread_name_prefix="workers-down") as pool:
            reports.update({r.name: r for r in pool.map(lambda w: _down_one(settings, w), retire)})
    if wanted:
        with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="workers-up") as pool:
            futures = [pool.submit(_up_worker, settings, w) for w in wanted]
        errors = [future.exception() for future in futures if future.exception() is not None]
        if errors:
            raise errors[0]
        reports.update({future.result().name: future.result() for future in futures})
    return sorted(reports.values(), key=lambda r: int(r.name.removeprefix(WORKER_PREFIX)))


def _up_worker(settings: Settings, worker: RayWorker, attempts: int = 3) -> ServiceReport:
    """``ray start`` gives up when its raylet takes over 30 s to register with
    the head (a limit Ray hard-codes), as it can on a loaded machine: a worker
    that did not start is started again, as a kubelet restarts a pod."""
    for attempt in range(1, attempts + 1):
        try:
            return _up_one(settings, worker, _status_one(settings, worker))
        except ServiceStartError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def down(settings: Settings) -> list[ServiceReport]:
    """Stop what ``up`` started (and recorded), side by side, the worker nodes
    first; leave external services alone."""
    workers = workers_for(settings)
    stopped: list[ServiceReport] = []
    if workers:
        with ThreadPoolExecutor(max_workers=len(workers), thread_name_prefix="workers-down") as pool:
            stopped = list(pool.map(lambda worker: _down_one(settings, worker), workers))
    servers = services_for(settings)
    with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="services-down") as pool:
        return list(pool.map(lambda server: _down_one(settings, server), servers)) + stopped


def start_one(settings: Settings, server: LocalServer) -> ServiceReport:
    """Start one service as ``up`` would (nothing else), and wait until it answers."""
    current = _status_one(settings, server)
    _refuse_early(server, current)
    return _up_one(settings, server, current)


def stop_one(settings: Settings, server: LocalServer) -> ServiceReport:
    """Stop one service as ``down`` would (nothing else)."""
    return _down_one(settings, server)


def status_one(settings: Settings, server: LocalServer) -> ServiceReport:
    return _status_one(settings, server)


def _down_one(settings: Settings, server: LocalServer) -> ServiceReport:
    if not server.managed:
        return ServiceReport(server.name, "external", server.address)
    record = read_state(settings, server.name)
    pid = record.get("pid") if record else None
    if pid and processes.is_ours(pid, server.marker):
        processes.terminate(pid, server.marker)
    _state_file(settings, server.name).unlink(missing_ok=True)
    return ServiceReport(server.name, "stopped", server.address, pid=pid)


def status(settings: Settings) -> list[ServiceReport]:
    """The services, then each recorded worker node."""
    servers: list[LocalServer] = [*services_for(settings), *workers_for(settings)]
    return [_status_one(settings, server) for server in servers]


def _status_one(settings: Settings, server: LocalServer) -> ServiceReport:
    if not server.managed:
        try:
            version = server.probe()
        except Exception as exc:  # any driver error means "not reachable" here
            return ServiceReport(server.name, "unreachable", server.address, detail=str(exc))
        return ServiceReport(server.name, "external", server.address, version=version)
    record = read_state(settings, server.name)
    pid = record.get("pid") if record else None
    if not (pid and processes.is_ours(pid, server.marker)):
        return ServiceReport(server.name, "stopped", server.address)
    try:
        version = server.probe()
    except Exception as exc:
        return ServiceReport(
            server.name, "unreachable", server.address, pid=pid, detail=str(exc),
            log_file=str(server.log_file),
        )
    return ServiceReport(
        server.name, "running", server.address, version=version, pid=pid,
        log_file=str(server.log_file),
    )


def _refuse_early(server: LocalServer, current: ServiceReport) -> None:
    if current.state == "unreachable" and not server.managed:
        raise ServiceStartError(server.name, f"external server at {server.address}: {current.detail}")
    if current.state == "stopped":
        _require_free_ports(server)


def _up_one(settings: Settings, server: LocalServer, current: ServiceReport) -> ServiceReport:
    if current.state in ("running", "external"):
        return current
    if current.pid:  # ours, alive, but not answering yet (e.g. another `up` is starting it)
        return _await(settings, server, current.pid, started=False)
    server.prepare()
    pid = processes.spawn(server.command(), log_file=server.log_file, env=server.env())
    _write_state(settings, server.name, {"pid": pid, "address": server.address,
                                         "log_file": str(server.log_file),
                                         "started_at": time.time(),
                                         # what a worker node offers (cpus, resources)
                                         **getattr(server, "details", dict)()})
    return _await(settings, server, pid, started=True)


def _require_free_ports(server: LocalServer) -> None:
    for setting, port in server.ports().items():
        if not processes.port_is_free(port):
            raise ServiceStartError(
                server.name,
                f"port {port} on 127.0.0.1 is taken by another process; "
                f"choose another with {Settings.env_name(setting)}",
            )


def _await(settings: Settings, server: LocalServer, pid: int, *, started: bool) -> ServiceReport:
    deadline = time.monotonic() + settings.start_timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not processes.is_alive(pid):
            _state_file(settings, server.name).unlink(missing_ok=True)
            raise ServiceStartError(
                server.name, f"the process exited early:\n{_log_tail(server.log_file)}",
                str(server.log_file),
            )
        try:
            version = server.probe()
        except WekadocsError as exc:
            last_error = str(exc)
        except Exception as exc:  # e.g. redis.ConnectionError while it boots
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            state = "started" if started else "running"
            return ServiceReport(server.name, state, server.address, version=version, pid=pid,
                                 log_file=str(server.log_file))
        time.sleep(0.5)
    # a server that never answered is stopped, not left running unrecorded
    processes.terminate(pid, server.marker, grace_s=10)
    _state_file(settings, server.name).unlink(missing_ok=True)
    raise ServiceStartError(
        server.name,
        f"no answer within {settings.start_timeout_s:g}s (last error: {last_error})",
        str(server.log_file),
    )


def _state_file(settings: Settings, name: str) -> Path:
    return settings.data_dir / "run" / f"{name}.json"


def read_state(settings: Settings, name: str) -> dict[str, object] | None:
    try:
        return json.loads(_state_file(settings, name).read_text())
    except (OSError, ValueError):
        return None


def _write_state(settings: Settings, name: str, record: dict[str, object]) -> None:
    path = _state_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(path)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def report_dict(report: ServiceReport) -> dict[str, object]:
    return {k: v for k, v in asdict(report).items() if v not in ("", None)}
