"""The registry of which model filled which collection, and readers following the alias."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_settings
from wekadocs.embedder import Embedder, ModelCache, ModelSpec
from wekadocs.errors import CollectionNotFound, VectorStoreError
from wekadocs.settings import Settings, collection_name
from wekadocs.vectors import VectorStore
from wekadocs.vectors.client import QdrantClientStore
from wekadocs.vectors.edge import QdrantEdgeStore
from wekadocs.vectors.registry import BUILDING, READY, CollectionRecord, Registry, ensure_serving
from wekadocs.vectors.serving import ServingModel

MINILM = "all-MiniLM-L6-v2"


@pytest.fixture(params=["edge", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened: VectorStore = QdrantEdgeStore(tmp_path / "edge") if request.param == "edge" \
        else QdrantClientStore.local(tmp_path / "local")
    yield opened
    opened.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


def test_a_fresh_store_serves_the_settings_model(store: VectorStore, settings: Settings) -> None:
    registry = ensure_serving(settings, store)
    record = registry.require_serving()
    assert record.name == settings.vector_collection == registry.serving_name()
    assert (record.model, record.dims, record.state) == (MINILM, 384, READY)
    assert record.embedding_version == settings.embedding_version and record.created_at
    assert ensure_serving(settings, store).records() == registry.records()  # idempotent


def test_a_collection_from_before_the_registry_is_adopted(store: VectorStore, settings: Settings) -> None:
    store.create_collection(settings.vector_collection, 384)
    store.set_alias(settings.vector_alias, settings.vector_collection)
    assert Registry(store, settings.vector_alias).serving() is None
    assert ensure_serving(settings, store).require_serving().model == MINILM


def test_an_unrecorded_foreign_collection_is_not_guessed(store: VectorStore, settings: Settings) -> None:
    store.create_collection("sections-1-somebody-elses", 384)
    store.set_alias(settings.vector_alias, "sections-1-somebody-elses")
    with pytest.raises(VectorStoreError, match="no registry record"):
        ensure_serving(settings, store)


def test_writers_keep_the_serving_collection_and_those_being_built(store: VectorStore,
                                                                    settings: Settings) -> None:
    registry = ensure_serving(settings, store)
    new = CollectionRecord(collection_name("mpnet.1"), "mpnet.1", "all-mpnet-base-v2", 768, state=BUILDING)
    kept = CollectionRecord(collection_name("old.1"), "old.1", MINILM, 384, state=READY)
    for record in (new, kept):
        store.create_collection(record.name, record.dims)
        registry.put(record)
    assert [r.name for r in registry.write_targets()] == [settings.vector_collection, new.name]
    registry.put(replace(new, state=READY))
    store.set_alias(settings.vector_alias, new.name)
    assert [r.name for r in registry.write_targets()] == [new.name]
    registry.remove(kept.name)
    assert kept.name not in registry.records() and registry.get(new.name).state == READY  # type: ignore[union-attr]


def test_a_reader_encodes_with_the_model_of_the_collection_the_alias_serves(store: VectorStore,
                                                                            settings: Settings) -> None:
    """Two specs of one model (384 and 128 dims) stand for two models: after
    the alias moves, the next query is encoded for the new collection."""
    registry = ensure_serving(settings, store)
    cut = CollectionRecord(collection_name("cut.1"), "cut.1", MINILM, 128, state=BUILDING)
    store.create_collection(cut.name, cut.dims)
    registry.put(cut)
    loads: list[ModelSpec] = []

    def load(spec: ModelSpec) -> Embedder:
        loads.append(spec)
        return Embedder(spec.name, dims=spec.dims, device="cpu", threads=1)

    reader = ServingModel(settings.vector_alias, ModelCache(load), fallback=ModelSpec(MINILM, 384))
    before = reader.current(store)
    assert (before.collection, before.model) == (settings.vector_collection, ModelSpec(MINILM, 384))
    assert before.encode_queries(["snapshots"]).shape == (1, 384)

    registry.put(replace(cut, state=READY))
    store.set_alias(settings.vector_alias, cut.name)
    after = reader.current(store)
    assert (after.collection, after.model) == (cut.name, ModelSpec(MINILM, 128))
    vector = after.encode_queries(["snapshots"])
    assert vector.shape == (1, 128) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert ModelSpec(MINILM, 128) in loads  # loaded for the collection, however it got there


def test_a_reader_with_no_alias_says_so(store: VectorStore, settings: Settings) -> None:
    reader = ServingModel(settings.vector_alias, ModelCache(lambda spec: Embedder(spec.name)),
                          fallback=ModelSpec(MINILM, 384))
    with pytest.raises(CollectionNotFound):
        reader.current(store)


def test_the_model_cache_keeps_the_most_recent_and_loads_once() -> None:
    loads: list[str] = []

    def load(spec: ModelSpec) -> Embedder:
        loads.append(spec.label)
        return Embedder(spec.name, dims=spec.dims, device="cpu", threads=1)

    cache = ModelCache(load, keep=2)
    a, b, c = ModelSpec(MINILM, 384), ModelSpec(MINILM, 128), ModelSpec(MINILM, 64)
    assert cache.get(a) is cache.get(a)
    cache.get(b)
    cache.get(c)
    assert not cache.loaded(a) and cache.loaded(b) and cache.loaded(c)
    assert loads == [a.label, b.label, c.label]
