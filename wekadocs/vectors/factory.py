"""Which engine a process opens, from settings (the qdrant-client pattern).

* ``QdrantClientStore`` — a Qdrant server (``QDRANT_URL``), or qdrant-client's
  local mode on disk (``vector_engine: local``, brute force, kept for comparison).
* ``QdrantEdgeStore`` — Qdrant's engine in-process on disk (the embedded default).

Engines are imported when chosen: a process that talks to a server never
loads the embedded engine, and the other way round.
"""

from __future__ import annotations

from wekadocs.settings import Settings
from wekadocs.vectors.store import VectorStore

__all__ = ["open_vector_store"]


def open_vector_store(settings: Settings) -> VectorStore:
    """A Qdrant server when ``QDRANT_URL`` is set, else the embedded engine."""
    if settings.qdrant_url:
        from wekadocs.vectors.client import QdrantClientStore

        return QdrantClientStore.remote(settings)
    if settings.vector_engine == "local":
        from wekadocs.vectors.client import QdrantClientStore

        return QdrantClientStore.local(settings.vectors_dir)
    from wekadocs.vectors.edge import QdrantEdgeStore

    return QdrantEdgeStore(settings.vectors_dir)
