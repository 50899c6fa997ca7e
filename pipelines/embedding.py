"""The embedding stage of Ray Data jobs: a callable class on an actor pool.

The model loads once per actor (``__init__``); each call encodes one batch
and says which node encoded it (the jobs count rows per node). The same class
runs on CPU and GPU: Ray Data gives the actor a GPU when the job asks for
``num_gpus`` and the model follows ``torch.cuda.is_available()``.

**Placement** (``embedding_placement``): when some node of the cluster offers
the custom resource ``embed`` (the worker nodes of ``services up --workers``,
or a KubeRay worker group that declares it), the actors ask for a sliver of
it and so run only there; otherwise anywhere. Ray Data spreads its actors
over the nodes (its default strategy is ``SPREAD``). Each actor reserves no
more CPUs than the *smallest* free share among those nodes, so every actor
fits on any one of them: when a node dies mid-job, Ray Data restarts its
actors on the nodes left, and they can be placed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.nodes import current_node, node_resources
from wekadocs.embedder import Embedder

__all__ = ["EmbedBatch", "EmbeddingPlacement", "EMBED_RESOURCE", "embedding_cpus", "embedding_placement",
           "cluster_placement", "node_threads"]

EMBED_RESOURCE = "embed"
_SLIVER = 0.001  # of a marker resource: asks for the node, never runs out

Resources = Mapping[str, Mapping[str, float]]  # node id -> resource -> quantity


def node_threads(actors: int, cores: int | None = None) -> int:
    """Torch threads for one of ``actors`` embedding actors sharing a node:
    its cores (those this process may run on), split evenly.

    Ray's CPU reservation is bookkeeping, and Serve replicas hold fractions
    of a CPU that they mostly leave idle; flooring what is free left the
    actor one thread on a two-core node and ingestion at half speed."""
    if cores is None:
        cores = _affinity_cores()
    return max(1, cores // max(1, actors))


def embedding_cpus(free: float, actors: int, threads: int = 0) -> tuple[int, float]:
    """(torch threads, CPUs to reserve) for each CPU embedding actor, from the
    CPUs free *now*. The two are separate: the reservation is what is free
    (a fraction when Serve replicas hold some), never more, or an actor
    asking for more than the cluster has left would wait forever; the
    threads are ``threads`` when set (``WEKADOCS_EMBED_THREADS``), else 0:
    the cores of the actor's node (``EmbedBatch``), not the reservation
    floored, which left one thread on two cores while Serve was up. A set
    thread count also caps the reservation, leaving the rest to others."""
    share = max(free / max(1, actors), 0.0)
    return threads, min(float(threads), share) if threads > 0 else share


@dataclass(frozen=True)
class EmbeddingPlacement:
    """Where a job's embedding actors may run, and what each asks for."""

    threads: int  # torch threads; 0: from the node (EmbedBatch)
    cpus: float  # CPUs each actor reserves
    nodes: dict[str, float] = field(default_factory=dict)  # eligible node id -> its CPUs
    resources: dict[str, float] = field(default_factory=dict)  # {"embed": 0.001} when a node offers it
    actors_per_node: int = 1  # the actors that share one node's cores, once spread


def embedding_placement(actors: int, threads: int, totals: Resources, free: Resources) -> EmbeddingPlacement:
    """The placement from each alive node's total and free resources (see the
    module's docstring). ``embedding_cpus`` sizes the reservation from the
    smallest free CPU share of the eligible nodes, not from the cluster's sum:
    an actor asking for more than one node has would never start."""
    tagged = [node for node, offered in totals.items() if offered.get(EMBED_RESOURCE, 0) > 0]
    candidates = tagged or list(totals)
    # a node without CPUs (a KubeRay head with num-cpus 0) runs no embedding actor
    eligible = [node for node in candidates if totals[node].get("CPU", 0) > 0] or candidates
    smallest = min((free.get(node, {}).get("CPU", 0.0) for node in eligible), default=0.0)
    threads, cpus = embedding_cpus(smallest, actors, threads)
    return EmbeddingPlacement(
        threads=threads, cpus=cpus,
        nodes={node: float(totals[node].get("CPU", 0)) for node in eligible},
        resources={EMBED_RESOURCE: _SLIVER} if tagged else {},
        actors_per_node=max(1, math.ceil(actors / max(1, len(eligible)))),
    )


def cluster_placement(actors: int, threads: int) -> EmbeddingPlacement:
    """``embedding_placement`` for the cluster this process is connected to."""
    return embedding_placement(actors, threads, *node_resources())


class EmbedBatch:
    """Args:
        threads: torch threads; 0 for ``node_threads(actors)`` on the node the
            actor runs on (the driver cannot know that node's cores).
        actors: embedding actors sharing the actor's node.
        node_cpus: the CPUs each eligible node offers; an actor takes no more
            threads than its node offers (several nodes of one machine share
            its cores: ``services up --workers``).
    """

    def __init__(self, model_name: str, batch_size: int, device: str, threads: int, actors: int = 1,
                 dims: int | None = None, node_cpus: dict[str, float] | None = None) -> None:
        import torch

        self.node = current_node()
        cores = _affinity_cores()
        offered = int((node_cpus or {}).get(self.node, 0))
        # Ray sets OMP_NUM_THREADS to the reserved CPUs (1 for a fraction):
        # the thread count is set here, from the cores, whatever was reserved.
        torch.set_num_threads(threads if threads > 0 else node_threads(actors, min(cores, offered or cores)))
        self.embedder = Embedder(model_name, dims=dims, device=None if device == "auto" else device,
                                 batch_size=batch_size)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts)
        return {"checksum": np.asarray(batch["checksum"]), "vector": vectors,
                "node": np.full(len(texts), self.node)}


def _affinity_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
