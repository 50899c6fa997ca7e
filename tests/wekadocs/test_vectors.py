"""The same cases on every embedded engine (qdrant-client congruence style)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from wekadocs.errors import CollectionNotFound, VectorStoreError
from wekadocs.vectors.client import QdrantClientStore
from wekadocs.vectors.edge import QdrantEdgeStore
from wekadocs.vectors import VectorPoint, VectorStore

DIMS = 16


@pytest.fixture(params=["edge", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "edge":
        opened: VectorStore = QdrantEdgeStore(tmp_path / "edge")
    else:
        opened = QdrantClientStore.local(tmp_path / "local")
    yield opened
    opened.close()


def _points(n: int, seed: int = 7) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    return [
        VectorPoint(
            id=hashlib.sha256(f"section-{i}".encode()).hexdigest(),
            vector=rng.normal(size=DIMS).tolist(),
            payload={"version": "4.4" if i % 2 else "4.3", "path": f"p{i % 5}.md"},
        )
        for i in range(n)
    ]


def test_create_is_idempotent(store: VectorStore) -> None:
    assert store.create_collection("c", DIMS) is True
    assert store.create_collection("c", DIMS) is False
    assert store.collections() == ["c"]


def test_upsert_search_filter_delete(store: VectorStore) -> None:
    store.create_collection("c", DIMS)
    points = _points(40)
    store.upsert("c", points)
    assert store.count("c") == 40
    assert store.count("c", {"version": "4.4"}) == 20

    target = points[3]  # version 4.4
    hits = store.search("c", target.vector, 5, {"version": "4.4"})
    assert hits[0].id == target.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].payload == {"version": "4.4", "path": "p3.md"}
    assert all(h.payload["version"] == "4.4" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    # the same vector filtered to the other version cannot return it
    other = store.search("c", target.vector, 5, {"version": "4.3"})
    assert target.id not in {h.id for h in other}

    store.delete("c", [target.id])
    assert store.count("c") == 39
    assert target.id not in {h.id for h in store.search("c", target.vector, 5)}

    store.delete_where("c", {"path": ["p0.md", "p1.md"]})
    assert store.count("c") == 39 - 16
    assert sorted(i for i, _ in store.scroll_points("c")) == sorted(
        p.id for p in points if p.id != target.id and p.payload["path"] not in ("p0.md", "p1.md")
    )


def test_upsert_replaces_by_id(store: VectorStore) -> None:
    store.create_collection("c", DIMS)
    first = _points(1)[0]
    store.upsert("c", [first])
    moved = VectorPoint(first.id, (-np.asarray(first.vector)).tolist(), {"version": "4.4", "path": "x.md"})
    store.upsert("c", [moved])
    assert store.count("c") == 1
    hit = store.search("c", moved.vector, 1)[0]
    assert hit.id == first.id and hit.payload["path"] == "x.md"


def test_alias_switches_collections(store: VectorStore) -> None:
    store.create_collection("v1", DIMS)
    store.create_collection("v2", DIMS)
    points = _points(4)
    store.upsert("v1", points[:1])
    store.upsert("v2", points)
    store.set_alias("live", "v1")
    assert store.count("live") == 1
    store.set_alias("live", "v2")
    assert store.aliases() == {"live": "v2"}
    assert store.count("live") == 4
    assert store.resolve("live") == "v2"


def test_missing_collections_are_named(store: VectorStore) -> None:
    with pytest.raises(CollectionNotFound, match="'absent'"):
        store.search("absent", [0.0] * DIMS, 3)
    with pytest.raises(CollectionNotFound):
        store.set_alias("live", "absent")
    assert store.drop_collection("absent") is False


def test_wrong_dimensions_are_refused(store: VectorStore) -> None:
    store.create_collection("c", DIMS)
    with pytest.raises(VectorStoreError):
        store.upsert("c", [VectorPoint("ab" * 32, [1.0, 2.0], {})])
    assert store.count("c") == 0


def test_data_survives_reopening(tmp_path: Path) -> None:
    store = QdrantEdgeStore(tmp_path / "edge")
    store.create_collection("c", DIMS)
    store.upsert("c", _points(10))
    store.set_alias("live", "c")
    store.close()
    reopened = QdrantEdgeStore(tmp_path / "edge")
    assert reopened.count("live") == 10
    reopened.close()


def test_second_owner_of_a_folder_is_refused(tmp_path: Path) -> None:
    owner = QdrantEdgeStore(tmp_path / "edge")
    owner.create_collection("c", DIMS)
    intruder = QdrantEdgeStore(tmp_path / "edge")
    with pytest.raises(VectorStoreError, match="opening collection"):
        intruder.count("c")
    owner.close()
    intruder.close()


def test_vectors_are_found_by_checksum(store: VectorStore) -> None:
    store.create_collection("c", DIMS)
    points = _points(30)
    store.upsert("c", [VectorPoint(p.id, p.vector, {**p.payload, "checksum": f"text-{i % 10}"})
                       for i, p in enumerate(points)])
    found = store.vectors_for_checksums("c", ["text-3", "text-7", "text-3", "never-seen"])
    assert set(found) == {"text-3", "text-7"}
    for key, vector in found.items():
        # cosine collections store unit vectors
        candidates = [np.asarray(p.vector) / np.linalg.norm(p.vector)
                      for i, p in enumerate(points) if f"text-{i % 10}" == key]
        assert any(np.allclose(vector, c, atol=1e-5) for c in candidates)
    assert store.vectors_for_checksums("c", []) == {}


def test_similarities_score_exactly_the_named_points(store: VectorStore) -> None:
    store.create_collection("c", DIMS)
    points = _points(40)
    store.upsert("c", points)
    query = np.random.default_rng(11).normal(size=DIMS)
    unit = query / np.linalg.norm(query)
    named = [points[i].id for i in (0, 5, 17, 5)]  # repeated ids are scored once
    scores = store.similarities("c", query.tolist(), [*named, "f" * 64])  # an id with no point
    assert set(scores) == {points[0].id, points[5].id, points[17].id}
    for i in (0, 5, 17):
        vector = np.asarray(points[i].vector)
        assert scores[points[i].id] == pytest.approx(float(unit @ (vector / np.linalg.norm(vector))), abs=1e-4)
    assert store.similarities("c", query.tolist(), []) == {}
