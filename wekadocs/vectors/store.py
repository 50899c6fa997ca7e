"""The vector store interface and its value types.

Two engines implement it (``client.py``, ``edge.py``); ``factory.py`` picks one
from settings, so the engines depend on this module and never on each other.

Both embedded engines allow one owner per folder, so in a Ray application one
actor holds the store and everyone else talks to it (see ``cluster/vector_owner.py``).

Readers search an *alias*; a re-embed writes a new collection and switches the
alias in one step, so queries never see a half-built collection.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


__all__ = [
    "VectorPoint",
    "VectorHit",
    "Where",
    "VectorStore",
    "point_uuid",
    "INDEXED_PAYLOAD_KEYS",
    "SCROLL_PAGE",
    "PAGE_KEYS",
]

# Equality filters on payload keys; a list value means "any of these".
Where = dict[str, str | int | bool | list[str] | list[int]]

SCROLL_PAGE = 1000
PAGE_KEYS = ("id", "checksum")  # the payload keys a page carries unless asked for all (None)

# Payload keys filters use; engines that support payload indexes index them.
INDEXED_PAYLOAD_KEYS = ("version", "document_id", "source", "checksum", "path")


def point_uuid(point_id: str) -> str:
    """Qdrant ids are UUIDs or integers; ours are SHA-256 hex, so take 128 bits."""
    return str(uuid.UUID(hex=point_id[:32]))


@dataclass(frozen=True)
class VectorPoint:
    """A vector and its payload. ``id`` is our deterministic (hex) id."""

    id: str
    vector: Sequence[float]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VectorHit:
    id: str
    score: float
    payload: dict[str, Any]

    @classmethod
    def from_payload(cls, score: float, payload: dict[str, Any] | None) -> VectorHit:
        """Engines store our id in the payload (their own ids are UUIDs)."""
        rest = dict(payload or {})
        return cls(id=str(rest.pop("id", "")), score=float(score), payload=rest)


class VectorStore(ABC):
    """What the pipelines and the query engine need from a vector store."""

    engine: str = ""

    @abstractmethod
    def create_collection(self, name: str, dims: int) -> bool:
        """Create ``name`` with cosine distance; False if it already existed."""

    @abstractmethod
    def drop_collection(self, name: str) -> bool:
        """Delete ``name`` and its vectors; False if it did not exist."""

    @abstractmethod
    def collections(self) -> list[str]: ...

    @abstractmethod
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` atomically (create or switch)."""

    @abstractmethod
    def aliases(self) -> dict[str, str]:
        """Every alias and the collection it points at."""

    def resolve(self, name: str) -> str:
        """The collection behind ``name`` (an alias or a collection name)."""
        return self.aliases().get(name, name)

    @abstractmethod
    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None: ...

    @abstractmethod
    def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def delete_where(self, collection: str, where: Where) -> None: ...

    @abstractmethod
    def search(
        self,
        collection: str,
        vector: Sequence[float],
        top_k: int,
        where: Where | None = None,
    ) -> list[VectorHit]: ...

    @abstractmethod
    def similarities(self, collection: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        """The query vector's score against each named point (our ids); ids
        with no point are left out. The store scores them itself, so no stored
        vector crosses the wire: the query engine's semantic feature for
        candidates that keyword or graph retrieval found."""

    @abstractmethod
    def count(self, collection: str, where: Where | None = None) -> int: ...

    @abstractmethod
    def scroll_page(
        self, collection: str, where: Where | None, offset: object, *, with_vectors: bool,
        keys: Sequence[str] | None = PAGE_KEYS,
    ) -> tuple[list[tuple[dict[str, Any], list[float] | None]], object]:
        """One page of (payload, vector) and the offset of the next page (None
        at the end); the primitive ``scroll_points`` and
        ``vectors_for_checksums`` are built on. ``keys``: the payload keys
        returned, None for all of them."""

    def scroll_points(self, collection: str, where: Where | None = None) -> Iterator[tuple[str, str]]:
        """(id, checksum) of every point (our ids, not Qdrant's), for reconciliation."""
        offset: object = None
        while True:
            records, offset = self.scroll_page(collection, where, offset, with_vectors=False)
            for payload, _ in records:
                yield str(payload["id"]), str(payload.get("checksum", ""))
            if offset is None:
                return

    def vectors_for_checksums(self, collection: str, checksums: Sequence[str]) -> dict[str, list[float]]:
        """One stored vector per checksum found: content-addressed reuse, so a
        text embedded once (in any version or page) is never embedded again."""
        found: dict[str, list[float]] = {}
        wanted = list(dict.fromkeys(checksums))
        for start in range(0, len(wanted), SCROLL_PAGE):
            where: Where = {"checksum": wanted[start:start + SCROLL_PAGE]}
            offset: object = None
            while True:
                records, offset = self.scroll_page(collection, where, offset, with_vectors=True)
                for payload, vector in records:
                    key = str(payload.get("checksum", ""))
                    if key and key not in found and vector is not None:
                        found[key] = vector
                if offset is None:
                    break
        return found

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
