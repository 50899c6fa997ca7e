"""Vector store administration for the CLI: create the collection, describe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cluster import processes
from cluster.ray_head import RayHead
from cluster.services import read_state
from wekadocs.settings import SCHEMA_VERSION, Settings
from wekadocs.vectors import VectorStore, open_vector_store

__all__ = ["vector_store_session", "init_collection", "describe"]


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
    """Create this embedding version's collection; point the alias at it if unset."""
    with vector_store_session(settings) as store:
        created = store.create_collection(settings.vector_collection, settings.embedding_dims)
        if settings.vector_alias not in store.aliases():
            store.set_alias(settings.vector_alias, settings.vector_collection)
        return {
            "engine": store.engine,
            "collection": settings.vector_collection,
            "created": created,
            "alias": settings.vector_alias,
            "alias_target": store.resolve(settings.vector_alias),
        }


def describe(settings: Settings) -> dict[str, Any]:
    with vector_store_session(settings) as store:
        return {
            "engine": store.engine,
            "schema_version": SCHEMA_VERSION,
            "collections": {name: store.count(name) for name in store.collections()},
            "aliases": store.aliases(),
        }
