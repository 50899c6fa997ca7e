"""The embedding stage of Ray Data jobs: a callable class on an actor pool.

The model loads once per actor (``__init__``); each call encodes one batch.
The same class runs on CPU and GPU: Ray Data gives the actor a GPU when the
job asks for ``num_gpus`` and the model follows ``torch.cuda.is_available()``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from wekadocs.embedder import Embedder

__all__ = ["EmbedBatch", "embedding_cpus", "node_threads"]


def node_threads(actors: int, cores: int | None = None) -> int:
    """Torch threads for one of ``actors`` embedding actors sharing a node:
    its cores (those this process may run on), split evenly.

    Ray's CPU reservation is bookkeeping, and Serve replicas hold fractions
    of a CPU that they mostly leave idle; flooring what is free left the
    actor one thread on a two-core node and ingestion at half speed."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
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


class EmbedBatch:
    """Args:
        threads: torch threads; 0 for ``node_threads(actors)`` on the node the
            actor runs on (the driver cannot know that node's cores).
        actors: embedding actors in the pool, sharing the node's cores.
    """

    def __init__(self, model_name: str, batch_size: int, device: str, threads: int, actors: int = 1,
                 dims: int | None = None) -> None:
        import torch

        # Ray sets OMP_NUM_THREADS to the reserved CPUs (1 for a fraction):
        # the thread count is set here, from the cores, whatever was reserved.
        torch.set_num_threads(threads if threads > 0 else node_threads(actors))
        self.embedder = Embedder(model_name, dims=dims, device=None if device == "auto" else device,
                                 batch_size=batch_size)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts)
        return {"checksum": np.asarray(batch["checksum"]), "vector": vectors}
