"""What a reader searches: the collection the alias serves, and its model.

A query vector is only comparable with vectors of the model that made them,
so a reader resolves the alias on every query and encodes with the model the
registry records for that collection; it then searches the collection by
name, never the alias, so a switch between the two steps cannot mix models.

The alias read is one small call. The record is read again when the alias
moves (and every ``REFRESH_S``, which also notices a re-embed being built:
its model is loaded in the background then, so the first query after the
switch does not wait for a model load).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from wekadocs.embedder import ModelCache, ModelSpec
from wekadocs.errors import CollectionNotFound
from wekadocs.vectors.registry import BUILDING, CollectionRecord, Registry
from wekadocs.vectors.store import VectorStore

__all__ = ["Serving", "ServingModel", "REFRESH_S"]

REFRESH_S = 10.0


@dataclass(frozen=True)
class Serving:
    collection: str
    model: ModelSpec
    encode_queries: Callable[[list[str]], np.ndarray]


class ServingModel:
    """Args:
        fallback: the model of a collection the registry has no record of (one
            written before the registry existed: the settings' model).
    """

    def __init__(self, alias: str, models: ModelCache, fallback: ModelSpec) -> None:
        self.alias = alias
        self.models = models
        self.fallback = fallback
        self._lock = threading.Lock()
        self._record: tuple[str, ModelSpec, float] | None = None  # collection, its model, when read
        self._preloader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-preload")

    def current(self, store: VectorStore) -> Serving:
        """The store is passed in, not held: a replica re-opens it after an outage."""
        registry = Registry(store, self.alias)
        name = registry.serving_name()
        if name is None:
            raise CollectionNotFound(self.alias)
        spec = self._spec(registry, name)
        return Serving(name, spec, self.models.get(spec).encode_queries)

    def _spec(self, registry: Registry, name: str) -> ModelSpec:
        with self._lock:
            held = self._record
            if held and held[0] == name and time.monotonic() - held[2] < REFRESH_S:
                return held[1]
        records = registry.records()
        record = records.get(name)
        spec = record.spec if record else self.fallback
        with self._lock:
            self._record = (name, spec, time.monotonic())
        self._preload([r for r in records.values() if r.state == BUILDING])
        return spec

    def _preload(self, building: list[CollectionRecord]) -> None:
        for record in building:
            if not self.models.loaded(record.spec):
                self._preloader.submit(self.models.get, record.spec)
