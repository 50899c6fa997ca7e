"""The vector part: every collection of ours (``sections-*`` and the registry
``wekadocs-registry``) and our aliases, exported and loaded through the ``VectorStore``
interface.

Going through the interface rather than copying the engine's files means one
code path for every engine: the embedded one through its owner actor (which
keeps serving; no file is read behind its back, so there is no torn copy of a
shard that is being written), and a Qdrant server (``QDRANT_URL``) through
its API. It also makes the backup independent of the engine's on-disk format:
a backup of Qdrant Edge loads into a Qdrant server and back.

Layout under ``vectors/``::

    aliases.json                  alias -> collection
    <collection>.points.jsonl     one line per point: {"id", "payload"}
    <collection>.vectors.f32      the vectors, little-endian float32, one row per line above

Content checksum of a collection: SHA-256 over its points sorted, each point
being its id, its payload (canonical JSON) and the SHA-256 of its float32
vector. Vectors round-trip bit for bit (checked on Qdrant Edge: the stored
vectors are already normalised, and normalising them again leaves them
unchanged).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cluster.backup.manifest import PartSummary, canonical, digest_lines, file_entry
from wekadocs.settings import Settings
from wekadocs.vectors import VectorPoint, VectorStore
from wekadocs.vectors.registry import REGISTRY_COLLECTION, Registry

__all__ = ["PART", "COLLECTION_PREFIX", "export", "load", "summary", "point_count", "ours"]

PART = "vectors"
COLLECTION_PREFIX = "sections-"  # wekadocs.settings.collection_name
_UPSERT_BATCH = 256


def ours(store: VectorStore) -> list[str]:
    """Our collections (a Qdrant server may hold other applications' too): the
    sections collections and the registry."""
    return [name for name in store.collections() if name.startswith(COLLECTION_PREFIX) or name == REGISTRY_COLLECTION]


def export(store: VectorStore, backup: Path, settings: Settings) -> PartSummary:
    """Write every collection and the aliases under ``backup/vectors``; the summary of what was written."""
    folder = backup / PART
    folder.mkdir(parents=True, exist_ok=True)
    aliases = _our_aliases(store)
    (folder / "aliases.json").write_text(json.dumps(aliases, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    part = PartSummary(details={"engine": store.engine, "aliases": aliases, "dims": {}})
    dims_known = _recorded_dims(store, settings)
    names = ours(store)
    for name in names:
        lines = []
        points_path, vectors_path = folder / f"{name}.points.jsonl", folder / f"{name}.vectors.f32"
        dims = 0
        with points_path.open("w", encoding="utf-8") as points, vectors_path.open("wb") as vectors:
            for payload, vector in _all_points(store, name):
                point_id = str(payload.pop("id", ""))
                row = np.asarray(vector, dtype="<f4")
                dims = dims or len(row)
                points.write(json.dumps({"id": point_id, "payload": payload}, sort_keys=True) + "\n")
                vectors.write(row.tobytes())
                lines.append(_point_line(point_id, payload, row))
        part.counts[f"points:{name}"] = len(lines)
        part.checksums[name] = digest_lines(lines)
        part.details["dims"][name] = dims or dims_known.get(name, settings.embedding_dims)
    part.counts["collections"] = len(names)
    part.checksums["aliases"] = hashlib.sha256(canonical(aliases).encode()).hexdigest()
    for path in sorted(folder.iterdir()):
        part.files[f"{PART}/{path.name}"] = file_entry(path)
    return part


def summary(store: VectorStore) -> PartSummary:
    """The same counts and checksums, read from a live store."""
    aliases = _our_aliases(store)
    part = PartSummary(details={"engine": store.engine, "aliases": aliases})
    names = ours(store)
    for name in names:
        lines = []
        for payload, vector in _all_points(store, name):
            point_id = str(payload.pop("id", ""))
            lines.append(_point_line(point_id, payload, np.asarray(vector, dtype="<f4")))
        part.counts[f"points:{name}"] = len(lines)
        part.checksums[name] = digest_lines(lines)
    part.counts["collections"] = len(names)
    part.checksums["aliases"] = hashlib.sha256(canonical(aliases).encode()).hexdigest()
    return part


def point_count(store: VectorStore) -> int:
    """Points in every collection but the registry: how "populated" the store is."""
    return sum(store.count(name) for name in ours(store) if name != REGISTRY_COLLECTION)


def load(store: VectorStore, backup: Path, part: PartSummary) -> None:
    """Make the store hold exactly the backup's collections and aliases:
    collections not in the backup are dropped, the backup's are recreated and
    filled, then the aliases are set. (The caller has checked the files and,
    for a populated store, been told to go ahead.)"""
    folder = backup / PART
    aliases: dict[str, str] = json.loads((folder / "aliases.json").read_text(encoding="utf-8"))
    wanted = sorted(name.removeprefix(f"{PART}/").removesuffix(".points.jsonl")
                    for name in part.files if name.endswith(".points.jsonl"))
    for name in ours(store):
        store.drop_collection(name)
    dims = part.details.get("dims", {})
    for name in wanted:
        size = int(dims[name])
        store.create_collection(name, size)
        batch: list[VectorPoint] = []
        for point in _read_points(folder, name, size):
            batch.append(point)
            if len(batch) >= _UPSERT_BATCH:
                store.upsert(name, batch)
                batch = []
        store.upsert(name, batch)
    for alias, collection in sorted(aliases.items()):
        store.set_alias(alias, collection)


def _our_aliases(store: VectorStore) -> dict[str, str]:
    return {alias: name for alias, name in store.aliases().items() if alias.startswith(COLLECTION_PREFIX)}


def _read_points(folder: Path, name: str, dims: int) -> Iterator[VectorPoint]:
    raw = np.fromfile(folder / f"{name}.vectors.f32", dtype="<f4")
    with (folder / f"{name}.points.jsonl").open(encoding="utf-8") as points:
        rows = [json.loads(line) for line in points if line.strip()]
    matrix = raw.reshape(len(rows), dims) if rows else raw.reshape(0, max(dims, 1))
    for row, vector in zip(rows, matrix):
        yield VectorPoint(str(row["id"]), vector.astype(np.float64).tolist(), dict(row["payload"]))


def _all_points(store: VectorStore, name: str) -> Iterator[tuple[dict[str, Any], list[float]]]:
    offset: object = None
    while True:
        page, offset = store.scroll_page(name, None, offset, with_vectors=True, keys=None)
        for payload, vector in page:
            yield dict(payload), list(vector or [])
        if offset is None:
            return


def _point_line(point_id: str, payload: dict[str, Any], vector: np.ndarray) -> str:
    return f"{point_id}\0{canonical(payload)}\0{hashlib.sha256(vector.tobytes()).hexdigest()}"


def _recorded_dims(store: VectorStore, settings: Settings) -> dict[str, int]:
    """The dims the registry records (for empty collections, whose size no point shows)."""
    records = Registry(store, settings.vector_alias).records()
    return {REGISTRY_COLLECTION: 1, **{name: record.dims for name, record in records.items()}}
