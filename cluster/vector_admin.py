"""Vector store administration for the CLI: the first collection, status, drop.

(Filling a collection and switching to it are Ray jobs: ``cluster/jobs.py``.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cluster import processes
from cluster.ray_head import RayHead
from cluster.services import read_state
from wekadocs.errors import CollectionNotFound, GraphStoreError, VectorStoreError
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.settings import SCHEMA_VERSION, Settings, collection_name
from wekadocs.vectors import VectorStore, open_vector_store
from wekadocs.vectors.registry import REGISTRY_COLLECTION, Registry, ensure_serving

__all__ = ["vector_store_session", "init_collection", "status", "drop"]


@contextmanager
def vector_store_session(settings: Settings) -> Iterator[VectorStore]:
    """The store for a short CLI command.

    With a Qdrant server, or with no Ray cluster running (so no owner actor can
    hold the embedded folder), open the store here; otherwise go through the
    owner actor, which may already hold the folder.
    """
    head = RayHead(settings)
    pid = (read_state(settings, head.name) or {}).get("pid")
    cluster_running = settings.ray_address is not None or (
        isinstance(pid, int) and processes.is_ours(pid, head.marker)
    )
    if settings.qdrant_url or not cluster_running:
        store = open_vector_store(settings)
        try:
            yield store
        finally:
            store.close()
        return
    from cluster.ray_runtime import connect
    from cluster.vector_owner import vector_store_for

    connect(settings, allow_in_process=False)
    yield vector_store_for(settings)


def init_collection(settings: Settings) -> dict[str, Any]:
    """The first collection, recorded, and the alias on it (a no-op once there is one)."""
    with vector_store_session(settings) as store:
        created = settings.vector_collection not in store.collections()
        registry = ensure_serving(settings, store)
        return {
            "engine": store.engine,
            "collection": settings.vector_collection,
            "created": created and settings.vector_collection in store.collections(),
            "alias": settings.vector_alias,
            "alias_target": registry.serving_name(),
        }


def status(settings: Settings) -> dict[str, Any]:
    """Every recorded collection, the one the alias serves, and how much of
    the graph each covers (sections whose current text has a confirmed vector)."""
    with vector_store_session(settings) as store:
        registry = Registry(store, settings.vector_alias)
        records = registry.records()
        serving = registry.serving_name()
        unrecorded = [n for n in store.collections() if n not in records and n != REGISTRY_COLLECTION]
        coverage, sections = _coverage(settings)
        collections = [{
            **record.as_dict(),
            "points": store.count(name),
            "serving": name == serving,
            "coverage": round(coverage[record.embedding_version] / sections, 4)
            if coverage is not None and sections else None,
        } for name, record in sorted(records.items())]
        return {
            "engine": store.engine,
            "schema_version": SCHEMA_VERSION,
            "alias": settings.vector_alias,
            "serving": serving,
            "sections": sections,
            "collections": collections,
            "unrecorded": unrecorded,
        }


def drop(settings: Settings, embedding_version: str) -> dict[str, Any]:
    """Delete a kept collection and its record; never the one being served."""
    name = collection_name(embedding_version)
    with vector_store_session(settings) as store:
        registry = Registry(store, settings.vector_alias)
        if registry.serving_name() == name:
            raise VectorStoreError(
                f"{name} is the collection the alias {settings.vector_alias!r} serves; switch to another first "
                "(`wekadocs vectors switch VERSION`)")
        if registry.get(name) is None and name not in store.collections():
            raise CollectionNotFound(name)
        dropped = store.drop_collection(name)
        registry.remove(name)
    with GraphStore.connect(settings) as graph:
        GraphWriter(graph).forget_embedding_version(embedding_version)
    return {"embedding_version": embedding_version, "collection": name, "dropped": dropped}


def _coverage(settings: Settings) -> tuple[Counter[str] | None, int]:
    """Sections per confirmed embedding version, and all sections; (None, 0)
    when the graph cannot be read (the vector side still shows)."""
    try:
        with GraphStore.connect(settings) as graph:
            marks = GraphWriter(graph).all_sections()
    except GraphStoreError:
        return None, 0
    return Counter(v for _, versions in marks.values() for v in versions), len(marks)
