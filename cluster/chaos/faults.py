"""Real faults, by signal, on this machine's processes only.

An actor's process is found through Ray's state API (it runs on one of our
local nodes); a store's through the state file ``services up`` wrote. A
store is paused and killed as a whole process session (``processes.spawn``
gives each service its own), as a frozen or crashed pod would be.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from typing import Any

from cluster import processes
from cluster.ray_head import ray_auth_token, state_list
from cluster.services import LocalServer, read_state, status_one, stop_one
from wekadocs.settings import Settings

__all__ = ["actor_pid", "alive_actors", "crash_service", "kill_actor", "replica_pids", "service_pid",
           "signal_service", "worker_raylet_pid"]


def alive_actors(settings: Settings) -> list[dict[str, Any]]:
    """The live actors of our head's cluster (name, class_name, pid, node_id...)."""
    return [a for a in state_list(settings, "actors", ray_auth_token()) if a.get("state") == "ALIVE"]


def actor_pid(settings: Settings, name: str, *, timeout_s: float = 60.0) -> int:
    """The process of the live actor ``name`` (any namespace), waiting while it (re)starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [a for a in alive_actors(settings) if a.get("name") == name and a.get("pid")]
        if found:
            return int(found[0]["pid"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"no live actor named {name!r} within {timeout_s:.0f} s")
        time.sleep(0.5)


def kill_actor(settings: Settings, name: str) -> int:
    """SIGKILL the actor's process (a crash: Ray restarts it if it may). Its pid."""
    pid = actor_pid(settings, name)
    os.kill(pid, signal.SIGKILL)
    return pid


def replica_pids(settings: Settings, app: str, deployment: str) -> list[int]:
    """The processes of the running replicas of one Serve deployment."""
    wanted = f"ServeReplica:{app}:{deployment}"
    return sorted(int(a["pid"]) for a in alive_actors(settings) if a.get("class_name") == wanted and a.get("pid"))


def service_pid(settings: Settings, server: LocalServer) -> int:
    report = status_one(settings, server)
    if report.pid is None:
        raise RuntimeError(f"{server.name} is not a running service of ours ({report.state})")
    return report.pid


def signal_service(settings: Settings, server: LocalServer, signum: signal.Signals) -> list[int]:
    """Send ``signum`` to every process of the service's session; the pids signalled."""
    leader = service_pid(settings, server)
    members = processes.session_members(leader) or [leader]
    for pid in members:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    return members


def crash_service(settings: Settings, server: LocalServer, *, timeout_s: float = 60.0) -> None:
    """SIGKILL the service's processes (frozen ones too), then clear up as a
    supervisor would before a restart: the dead processes reaped, its record
    gone, its ports free again (a killed process holds them for a moment)."""
    signal_service(settings, server, signal.SIGKILL)
    stop_one(settings, server)  # reaps what is left of the session and forgets the record
    deadline = time.monotonic() + timeout_s
    while not all(processes.port_is_free(port) for port in server.ports().values()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}'s ports still taken {timeout_s:.0f} s after the kill")
        time.sleep(0.2)


def worker_raylet_pid(settings: Settings, name: str) -> int:
    """The raylet of our worker node ``name`` (``ray-worker-1``...), found in
    the process session ``services up`` recorded for it, never by a name
    across the machine. Killing it is losing the node."""
    record = read_state(settings, name)
    if not record or not isinstance(record.get("pid"), int):
        raise RuntimeError(f"no worker node {name!r} recorded in {settings.data_dir}")
    for pid in processes.session_members(int(record["pid"])):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"/raylet"):
            return pid
    raise RuntimeError(f"no raylet in the session of {name}")
