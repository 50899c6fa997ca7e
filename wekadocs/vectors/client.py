"""The vector store over ``qdrant-client``: a Qdrant server, or local mode.

A Qdrant server (``QDRANT_URL``) is the production choice. qdrant-client's
local mode (``path=``) speaks the same API in-process, but it is a brute-force
Python implementation: we keep it selectable (``vector_engine: local``) for
comparison, and benchmark it against Qdrant Edge in ``perf/bench_vectors.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from contextlib import contextmanager
from pathlib import Path

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from wekadocs.errors import CollectionNotFound, VectorStoreError, VectorStoreUnavailable
from wekadocs.settings import Settings
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

__all__ = ["QdrantClientStore"]



class QdrantClientStore(VectorStore):
    """Delegates to a ``QdrantClient``; see ``remote`` and ``local``."""

    def __init__(self, client: QdrantClient, engine: str) -> None:
        self._client = client
        self.engine = engine

    @classmethod
    def remote(cls, settings: Settings) -> QdrantClientStore:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=10)
        return cls(client, "qdrant-server")

    @classmethod
    def local(cls, path: Path) -> QdrantClientStore:
        path.mkdir(parents=True, exist_ok=True)
        with _translated(f"opening local-mode store at {path}"):
            client = QdrantClient(path=str(path))
        return cls(client, "qdrant-local")

    def create_collection(self, name: str, dims: int) -> bool:
        with _translated(f"creating collection {name!r}"):
            if self._client.collection_exists(name):
                return False
            self._client.create_collection(
                name, vectors_config=models.VectorParams(size=dims, distance=models.Distance.COSINE)
            )
            if self.engine == "qdrant-server":  # local mode has no payload indexes
                for key in INDEXED_PAYLOAD_KEYS:
                    self._client.create_payload_index(name, key, models.PayloadSchemaType.KEYWORD)
            return True

    def drop_collection(self, name: str) -> bool:
        with _translated(f"dropping collection {name!r}"):
            if not self._client.collection_exists(name):
                return False
            return bool(self._client.delete_collection(name))

    def collections(self) -> list[str]:
        with _translated("listing collections"):
            return sorted(c.name for c in self._client.get_collections().collections)

    def set_alias(self, alias: str, collection: str) -> None:
        with _translated(f"pointing alias {alias!r} at {collection!r}"):
            if not self._client.collection_exists(collection):
                raise CollectionNotFound(collection)
            operations: list[models.AliasOperations] = []
            if alias in self.aliases():
                operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
            operations.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
                )
            )
            # One request: Qdrant applies the delete and the create together.
            self._client.update_collection_aliases(change_aliases_operations=operations)

    def aliases(self) -> dict[str, str]:
        with _translated("listing aliases"):
            return {a.alias_name: a.collection_name for a in self._client.get_aliases().aliases}

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        structs = [
            models.PointStruct(
                id=point_uuid(p.id), vector=[float(x) for x in p.vector], payload={**p.payload, "id": p.id}
            )
            for p in points
        ]
        with _translated(f"upserting into {collection!r}", collection):
            self._client.upsert(collection, points=structs, wait=True)

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        selector = models.PointIdsList(points=[point_uuid(i) for i in ids])
        with _translated(f"deleting from {collection!r}", collection):
            self._client.delete(collection, points_selector=selector, wait=True)

    def delete_where(self, collection: str, where: Where) -> None:
        selector = models.FilterSelector(filter=_filter(where))
        with _translated(f"deleting from {collection!r}", collection):
            self._client.delete(collection, points_selector=selector, wait=True)

    def search(
        self, collection: str, vector: Sequence[float], top_k: int, where: Where | None = None
    ) -> list[VectorHit]:
        with _translated(f"searching {collection!r}", collection):
            found = self._client.query_points(
                collection,
                query=[float(x) for x in vector],
                limit=top_k,
                query_filter=_filter(where) if where else None,
                with_payload=True,
            ).points
        return [VectorHit.from_payload(p.score, p.payload) for p in found]

    def similarities(self, collection: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        with _translated(f"scoring points of {collection!r}", collection):
            found = self._client.query_points(
                collection,
                query=[float(x) for x in vector],
                limit=len(wanted),
                query_filter=models.Filter(must=[models.HasIdCondition(has_id=[point_uuid(i) for i in wanted])]),
                with_payload=["id"],
            ).points
        return {str((p.payload or {})["id"]): float(p.score) for p in found}

    def count(self, collection: str, where: Where | None = None) -> int:
        with _translated(f"counting {collection!r}", collection):
            result = self._client.count(
                collection, count_filter=_filter(where) if where else None, exact=True
            )
        return int(result.count)

    def scroll_page(
        self, collection: str, where: Where | None, offset: object, *, with_vectors: bool,
        keys: Sequence[str] | None = PAGE_KEYS,
    ) -> tuple[list[tuple[dict[str, Any], list[float] | None]], object]:
        with _translated(f"scrolling {collection!r}", collection):
            records, next_offset = self._client.scroll(
                collection,
                scroll_filter=_filter(where) if where else None,
                limit=SCROLL_PAGE,
                offset=offset,  # type: ignore[arg-type]
                with_payload=True if keys is None else list(keys),
                with_vectors=with_vectors,
            )
        page = [
            (dict(r.payload or {}), [float(x) for x in r.vector] if with_vectors and r.vector else None)  # type: ignore[union-attr]
            for r in records
        ]
        return page, next_offset

    def close(self) -> None:
        self._client.close()


def _filter(where: Where) -> models.Filter:
    conditions: list[models.Condition] = []
    for key, value in where.items():
        match: models.MatchAny | models.MatchValue
        match = models.MatchAny(any=list(value)) if isinstance(value, list) else models.MatchValue(value=value)
        conditions.append(models.FieldCondition(key=key, match=match))
    return models.Filter(must=conditions)



@contextmanager
def _translated(action: str, collection: str | None = None) -> Iterator[None]:
    """Local mode raises ``ValueError``, a server ``UnexpectedResponse``: map both."""
    try:
        yield
    except VectorStoreError:
        raise
    except (ResponseHandlingException, httpx.TransportError) as exc:
        raise VectorStoreUnavailable(f"{action}: Qdrant is unreachable ({exc})") from exc
    except UnexpectedResponse as exc:
        if exc.status_code == 404 and collection:
            raise CollectionNotFound(collection) from exc
        raise VectorStoreError(f"{action}: HTTP {exc.status_code}: {exc.content[:300]!r}") from exc
    except (ValueError, RuntimeError) as exc:
        if collection and "not found" in str(exc).lower():
            raise CollectionNotFound(collection) from exc
        raise VectorStoreError(f"{action}: {exc}") from exc
