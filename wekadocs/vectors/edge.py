"""The embedded vector store: Qdrant Edge (Qdrant's engine, in-process, on disk).

Layout under the root folder::

    collections/<name>/   one Edge shard per collection
    aliases.json          alias -> collection, replaced atomically

Edge has no collections or aliases of its own (a shard is one collection), so
this adapter adds both. A shard's WAL lock admits one process per folder: the
store must have a single owner (a Ray actor in the running application).

Searches are exact by default: at our sizes (≤ 100k sections) an exact scan
with a payload filter stays in single-digit milliseconds, and it has perfect
recall, which HNSW on these vectors does not (see README, "Vector store").
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from wekadocs.errors import CollectionNotFound, VectorStoreError
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

__all__ = ["QdrantEdgeStore"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class QdrantEdgeStore(VectorStore):
    """Collections of Edge shards under one folder.

    Args:
        root: the folder that holds collections and aliases.
        exact: exact (brute-force, perfect recall) search instead of HNSW.
    """

    engine = "qdrant-edge"

    def __init__(self, root: Path, *, exact: bool = True) -> None:
        self.root = root
        self._exact = exact
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock = threading.RLock()  # the shard handles are shared by threads
        (root / "collections").mkdir(parents=True, exist_ok=True)

    # --- collections and aliases --------------------------------------------

    def create_collection(self, name: str, dims: int) -> bool:
        _check_name(name)
        with self._lock:
            path = self._path(name)
            if path.exists():
                return False
            config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dims, distance=qe.Distance.Cosine))
            with _translated(f"creating collection {name!r}"):
                shard = qe.EdgeShard.create(str(path), config)
                for key in INDEXED_PAYLOAD_KEYS:
                    shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
                shard.flush()
            self._shards[name] = shard
            return True

    def drop_collection(self, name: str) -> bool:
        with self._lock:
            path = self._path(name)
            if not path.exists():
                return False
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            aliases = {a: c for a, c in self.aliases().items() if c != name}
            self._write_aliases(aliases)
            shutil.rmtree(path)
            return True

    def collections(self) -> list[str]:
        return sorted(p.name for p in (self.root / "collections").iterdir() if p.is_dir())

    def set_alias(self, alias: str, collection: str) -> None:
        _check_name(alias)
        with self._lock:
            if not self._path(collection).exists():
                raise CollectionNotFound(collection)
            if self._path(alias).exists():
                raise VectorStoreError(f"alias {alias!r} would hide the collection of that name")
            self._write_aliases({**self.aliases(), alias: collection})

    def aliases(self) -> dict[str, str]:
        try:
            return json.loads((self.root / "aliases.json").read_text())
        except FileNotFoundError:
            return {}

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        tmp = self.root / "aliases.json.tmp"
        tmp.write_text(json.dumps(aliases, indent=2, sort_keys=True))
        tmp.replace(self.root / "aliases.json")  # atomic: readers see old or new

    # --- points ------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        edge_points = [
            qe.Point(point_uuid(p.id), [float(x) for x in p.vector], {**p.payload, "id": p.id})
            for p in points
        ]
        self._update(collection, qe.UpdateOperation.upsert_points(edge_points))

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        if ids:
            self._update(collection, qe.UpdateOperation.delete_points([point_uuid(i) for i in ids]))

    def delete_where(self, collection: str, where: Where) -> None:
        self._update(collection, qe.UpdateOperation.delete_points_by_filter(_filter(where)))

    def search(
        self, collection: str, vector: Sequence[float], top_k: int, where: Where | None = None
    ) -> list[VectorHit]:
        request = qe.SearchRequest(
            query=qe.Query.Nearest([float(x) for x in vector]),
            limit=top_k,
            filter=_filter(where) if where else None,
            params=qe.SearchParams(exact=self._exact),
            with_payload=True,
        )
        with self._lock, _translated(f"searching {collection!r}"):
            found = self._shard(collection).search(request)
        return [VectorHit.from_payload(p.score, p.payload) for p in found]

    def similarities(self, collection: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        request = qe.SearchRequest(
            query=qe.Query.Nearest([float(x) for x in vector]),
            limit=len(wanted),
            filter=qe.Filter(must=[qe.HasIdCondition({point_uuid(i) for i in wanted})]),
            params=qe.SearchParams(exact=True),
            with_payload=["id"],
        )
        with self._lock, _translated(f"scoring points of {collection!r}"):
            found = self._shard(collection).search(request)
        return {str((p.payload or {})["id"]): float(p.score) for p in found}

    def count(self, collection: str, where: Where | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=_filter(where) if where else None)
        with self._lock, _translated(f"counting {collection!r}"):
            return int(self._shard(collection).count(request))

    def scroll_page(
        self, collection: str, where: Where | None, offset: object, *, with_vectors: bool,
        keys: Sequence[str] | None = PAGE_KEYS,
    ) -> tuple[list[tuple[dict[str, Any], list[float] | None]], object]:
        request = qe.ScrollRequest(
            offset=offset,  # type: ignore[arg-type]
            limit=SCROLL_PAGE,
            filter=_filter(where) if where else None,
            with_payload=True if keys is None else list(keys),
            with_vector=with_vectors,
        )
        with self._lock, _translated(f"scrolling {collection!r}"):
            records, next_offset = self._shard(collection).scroll(request)
        page = [(dict(r.payload or {}), _dense(r.vector) if with_vectors else None) for r in records]
        return page, next_offset

    def flush(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()

    # --- internals -------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.root / "collections" / name

    def _shard(self, name: str) -> qe.EdgeShard:
        collection = self.resolve(name)
        shard = self._shards.get(collection)
        if shard is None:
            path = self._path(collection)
            if not path.exists():
                raise CollectionNotFound(name)
            with _translated(f"opening collection {collection!r}"):
                shard = qe.EdgeShard.load(str(path))
            self._shards[collection] = shard
        return shard

    def _update(self, collection: str, operation: qe.UpdateOperation) -> None:
        with self._lock, _translated(f"updating {collection!r}"):
            self._shard(collection).update(operation)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise VectorStoreError(
            f"invalid collection or alias name {name!r}: use letters, digits, '.', '_', '-'"
        )


def _filter(where: Where) -> qe.Filter:
    conditions: list[Any] = []
    for key, value in where.items():
        match = qe.MatchAny(list(value)) if isinstance(value, list) else qe.MatchValue(value)
        conditions.append(qe.FieldCondition(key, match=match))
    return qe.Filter(must=conditions)



def _dense(vector: object) -> list[float]:
    """Edge returns the unnamed vector either bare or under the name ""."""
    if isinstance(vector, dict):
        vector = vector.get("") or next(iter(vector.values()))
    return [float(x) for x in vector]  # type: ignore[union-attr]


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Edge raises bare ``Exception``s; this is where they become ours."""
    try:
        yield
    except VectorStoreError:
        raise
    except Exception as exc:
        raise VectorStoreError(f"{action}: {exc}") from exc
