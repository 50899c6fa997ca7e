"""The vector store subsystem: one interface, two engines, a factory, and the
registry of which model filled which collection."""

from wekadocs.vectors.factory import open_vector_store
from wekadocs.vectors.store import (
    INDEXED_PAYLOAD_KEYS,
    PAGE_KEYS,
    SCROLL_PAGE,
    VectorHit,
    VectorPoint,
    VectorStore,
    Where,
    point_uuid,
)

__all__ = [
    "INDEXED_PAYLOAD_KEYS",
    "PAGE_KEYS",
    "SCROLL_PAGE",
    "VectorHit",
    "VectorPoint",
    "VectorStore",
    "Where",
    "open_vector_store",
    "point_uuid",
]
