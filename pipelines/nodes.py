"""Which Ray nodes a job runs on: what each offers now, which are alive, and
the per-node counts the jobs report.

Ray's public API sums resources over the cluster; a job that sizes an actor
from the sum can ask for more than any one node has, and wait forever. These
read each node's own figures (``ray._private.state``, a DeveloperAPI).
"""

from __future__ import annotations

import ray

__all__ = ["alive_nodes", "node_resources", "largest_free_cpus", "current_node", "add_per_node",
           "note_lost_nodes"]


def node_resources() -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(total, free) resources of each alive node, by node id."""
    from ray._private import state

    return state.total_resources_per_node(), state.available_resources_per_node()


def alive_nodes() -> set[str]:
    """The ids of the cluster's alive nodes."""
    return set(node_resources()[0])


def largest_free_cpus() -> float:
    """The most CPUs free on any one node: what one actor can reserve and still start."""
    return max((free.get("CPU", 0.0) for free in node_resources()[1].values()), default=0.0)


def current_node() -> str:
    """This process's Ray node id ("local" outside Ray)."""
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


def add_per_node(total: dict[str, int], more: dict[str, int]) -> None:
    for node, rows in more.items():
        total[node] = total.get(node, 0) + rows


def note_lost_nodes(lost: list[str], warnings: list[str], at_start: set[str]) -> None:
    """Record the nodes that were alive when a job began and are gone at its
    end: Ray Data restarted their actors elsewhere and re-ran their unfinished
    blocks (the job's counts say whether anything was missed)."""
    lost += sorted(at_start - alive_nodes())
    warnings += [f"Ray node {node} left the cluster during the job; Ray Data re-ran its unfinished work "
                 "on the nodes left" for node in lost]
