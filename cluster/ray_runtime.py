"""Connecting this process to Ray: ``RAY_ADDRESS``, our own head, or in-process.

Order of preference:

1. ``RAY_ADDRESS`` (a KubeRay head, ``ray://`` client address, or ``auto``);
2. the head ``wekadocs services up`` started, when it is running;
3. otherwise a throwaway local cluster inside this process (``ray.init()``),
   handy for one-off commands and tests; it ends with the process.

Token authentication is explicit: ``RAY_AUTH_MODE=token`` unless the operator
set the variable, so clients present ``~/.ray/auth_token`` (or ``RAY_AUTH_TOKEN``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Ray reads the mode when it is imported, so this must precede `import ray`.
os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray  # noqa: E402

from cluster import processes
from cluster.ray_head import RayHead
from cluster.services import read_state
from wekadocs.errors import ServiceError
from wekadocs.settings import Settings

__all__ = ["RayConnection", "connect", "disconnect"]


@dataclass(frozen=True)
class RayConnection:
    address: str  # what we connected to; "local" for an in-process cluster
    dashboard_url: str | None
    kind: str  # external | head | in-process


def connect(settings: Settings, *, allow_in_process: bool = True, log_to_driver: bool = True) -> RayConnection:
    """Initialise Ray for this process (idempotent). ``log_to_driver=False``
    keeps the workers' logs out of this process's output (benchmarks)."""
    if settings.ray_address:
        _init(settings, settings.ray_address, log_to_driver)
        return RayConnection(settings.ray_address, None, "external")
    head = RayHead(settings)
    record = read_state(settings, head.name) or {}
    pid = record.get("pid")
    if isinstance(pid, int) and processes.is_ours(pid, head.marker):
        _init(settings, head.address, log_to_driver)
        return RayConnection(head.address, settings.dashboard_url, "head")
    if not allow_in_process:
        raise ServiceError("no Ray cluster: run `wekadocs services up` or set RAY_ADDRESS")
    context = _init(settings, None, log_to_driver)
    url = getattr(context, "dashboard_url", None)
    return RayConnection("local", f"http://{url}" if url else None, "in-process")


def disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


def _init(settings: Settings, address: str | None, log_to_driver: bool) -> object:
    if ray.is_initialized():
        return ray.get_runtime_context()
    kwargs: dict[str, object] = {
        "namespace": settings.ray_namespace,
        "log_to_driver": log_to_driver,
        "configure_logging": False,
    }
    if address is None:
        kwargs["include_dashboard"] = False
        if settings.ray_num_cpus is not None:
            kwargs["num_cpus"] = settings.ray_num_cpus
    try:
        return ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as exc:
        where = address or "a new local cluster"
        raise ServiceError(
            f"cannot connect to Ray at {where}: {exc}. With token authentication on, "
            "the client needs the cluster's token (~/.ray/auth_token, RAY_AUTH_TOKEN "
            "or RAY_AUTH_TOKEN_PATH)"
        ) from exc
