"""The embedding stage of Ray Data jobs: a callable class on an actor pool.

The model loads once per actor (``__init__``); each call encodes one batch.
The same class runs on CPU and GPU: Ray Data gives the actor a GPU when the
job asks for ``num_gpus`` and the model follows ``torch.cuda.is_available()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wekadocs.embedder import Embedder

__all__ = ["EmbedBatch"]


class EmbedBatch:
    def __init__(self, model_name: str, batch_size: int, device: str, threads: int) -> None:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)  # Ray sets 1 thread per requested CPU
        self.embedder = Embedder(model_name, device=None if device == "auto" else device,
                                 batch_size=batch_size)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts)
        return {"checksum": np.asarray(batch["checksum"]), "vector": vectors}
