"""Which model filled which collection, and which collections writers keep.

A collection's vectors are only comparable with vectors of the same model, so
every collection is recorded with the model that fills it. The records live in
the vector store itself (a small collection of payload-only points), so they
travel with the vectors: a backup, another replica or a Qdrant server sees the
same registry as the owner that wrote it.

States:

* ``building`` — a re-embed job is filling it. Writers (ingest, freshness,
  reconcile) keep it up to date alongside the serving collection (dual write),
  so nothing ingested while the job runs is missing when it switches.
* ``ready`` — verified complete when it was last checked; the alias serves one
  ready collection; the others are kept for a rollback until dropped.

Readers never consult the settings' model: they read the alias, then the
record of the collection it points at (``ServingModel`` in ``reader.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

from wekadocs.embedder import ModelSpec
from wekadocs.errors import VectorStoreError
from wekadocs.settings import Settings
from wekadocs.vectors.store import VectorPoint, VectorStore

__all__ = ["BUILDING", "CollectionRecord", "READY", "Registry", "REGISTRY_COLLECTION", "ensure_serving", "now_iso"]

REGISTRY_COLLECTION = "wekadocs-registry"
BUILDING, READY = "building", "ready"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CollectionRecord:
    name: str
    embedding_version: str
    model: str
    dims: int
    normalize: bool = True
    state: str = BUILDING
    created_at: str = ""
    verified_at: str = ""
    points: int = 0  # at the last verification

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.model, self.dims, self.normalize)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CollectionRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})


class Registry:
    """The records, the alias, and the collections writers keep current."""

    def __init__(self, store: VectorStore, alias: str) -> None:
        self.store = store
        self.alias = alias

    def records(self) -> dict[str, CollectionRecord]:
        if REGISTRY_COLLECTION not in self.store.collections():
            return {}
        found: dict[str, CollectionRecord] = {}
        offset: object = None
        while True:
            page, offset = self.store.scroll_page(REGISTRY_COLLECTION, None, offset, with_vectors=False, keys=None)
            for payload, _ in page:
                record = CollectionRecord.from_payload(payload)
                found[record.name] = record
            if offset is None:
                return found

    def get(self, name: str) -> CollectionRecord | None:
        return self.records().get(name)

    def put(self, record: CollectionRecord) -> None:
        self.store.create_collection(REGISTRY_COLLECTION, 1)
        self.store.upsert(REGISTRY_COLLECTION, [VectorPoint(_record_id(record.name), [1.0], record.as_dict())])

    def remove(self, name: str) -> None:
        if REGISTRY_COLLECTION in self.store.collections():
            self.store.delete(REGISTRY_COLLECTION, [_record_id(name)])

    def serving_name(self) -> str | None:
        return self.store.aliases().get(self.alias)

    def serving(self) -> CollectionRecord | None:
        name = self.serving_name()
        return self.get(name) if name else None

    def require_serving(self) -> CollectionRecord:
        record = self.serving()
        if record is None:
            raise VectorStoreError(f"the alias {self.alias!r} serves no recorded collection")
        return record

    def write_targets(self) -> list[CollectionRecord]:
        """The serving collection, then any being built: where writers write."""
        records = self.records()
        serving = self.serving_name()
        first = [records[serving]] if serving in records else []
        return first + [r for name, r in sorted(records.items()) if r.state == BUILDING and name != serving]


def ensure_serving(settings: Settings, store: VectorStore) -> Registry:
    """A registry whose alias serves a recorded collection.

    On a fresh store: the settings' embedding version and model make the first
    collection, and the alias points at it. A collection written before the
    registry existed is recorded with the settings' model (the only model
    that could have filled it), so old installations carry on.
    """
    registry = Registry(store, settings.vector_alias)
    serving = registry.serving_name()
    if serving is None:
        store.create_collection(settings.vector_collection, settings.embedding_dims)
        if registry.get(settings.vector_collection) is None:
            registry.put(_from_settings(settings, settings.vector_collection, READY))
        store.set_alias(settings.vector_alias, settings.vector_collection)
    elif registry.get(serving) is None:
        if serving != settings.vector_collection:
            raise VectorStoreError(
                f"the alias {settings.vector_alias!r} serves {serving!r}, which has no registry record and is not "
                f"this embedding version's collection; record it with `wekadocs vectors switch` after a re-embed")
        registry.put(_from_settings(settings, serving, READY))
    return registry


def _from_settings(settings: Settings, name: str, state: str) -> CollectionRecord:
    return CollectionRecord(name=name, embedding_version=settings.embedding_version, model=settings.embedding_model,
                            dims=settings.embedding_dims, state=state, created_at=now_iso())


def _record_id(name: str) -> str:
    return hashlib.sha256(f"collection\0{name}".encode()).hexdigest()
