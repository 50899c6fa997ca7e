"""The vector part on the embedded engine (in-process, no services): collections,
the registry and the alias go out and come back bit for bit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from cluster.backup import vector_dump
from cluster.backup.manifest import Manifest, compare_summaries, verify_files
from wekadocs.settings import load_settings
from wekadocs.vectors import VectorPoint
from wekadocs.vectors.edge import QdrantEdgeStore
from wekadocs.vectors.registry import REGISTRY_COLLECTION, Registry, ensure_serving


def _filled(root: Path, settings) -> QdrantEdgeStore:  # type: ignore[no-untyped-def]
    store = QdrantEdgeStore(root)
    ensure_serving(settings, store)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(1500, settings.embedding_dims)).astype(np.float32)
    points = [VectorPoint(hashlib.sha256(f"s{i}".encode()).hexdigest(), v.tolist(),
                          {"checksum": f"c{i % 700}", "version": "4.4", "document_id": f"d{i % 40}"})
              for i, v in enumerate(vectors)]
    store.upsert(settings.vector_collection, points)
    store.create_collection("sections-1-empty.1", 8)  # an empty, unrecorded collection keeps its place
    return store


def test_export_then_load_into_an_empty_store_gives_the_same_content(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    source = _filled(tmp_path / "a", settings)
    part = vector_dump.export(source, tmp_path / "backup", settings)
    assert part.counts[f"points:{settings.vector_collection}"] == 1500
    assert part.counts[f"points:{REGISTRY_COLLECTION}"] == 1
    assert part.details["aliases"] == {settings.vector_alias: settings.vector_collection}
    assert compare_summaries("vectors", part, vector_dump.summary(source)) == []

    target = QdrantEdgeStore(tmp_path / "b")
    target.create_collection("sections-1-left-over.1", 4)  # a restore makes our collections those of the backup
    target.create_collection("other-app", 4)  # and leaves another application's alone
    vector_dump.load(target, tmp_path / "backup", part)
    restored = vector_dump.summary(target)
    assert compare_summaries("vectors", part, restored) == []
    assert vector_dump.ours(target) == vector_dump.ours(source) == source.collections()
    assert "other-app" in target.collections()
    assert Registry(target, settings.vector_alias).require_serving().name == settings.vector_collection
    query = np.random.default_rng(1).normal(size=settings.embedding_dims).tolist()
    assert [h.id for h in target.search(settings.vector_alias, query, 10)] == \
        [h.id for h in source.search(settings.vector_alias, query, 10)]


def test_a_changed_payload_changes_the_checksum(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    store = _filled(tmp_path / "a", settings)
    before = vector_dump.summary(store)
    page, _ = store.scroll_page(settings.vector_collection, None, None, with_vectors=True, keys=None)
    payload, vector = page[0]
    store.upsert(settings.vector_collection, [VectorPoint(payload.pop("id"), vector, {**payload, "checksum": "x"})])
    after = vector_dump.summary(store)
    assert compare_summaries("vectors", before, after) == [
        f"vectors checksum {settings.vector_collection}: backup {before.checksums[settings.vector_collection][:16]}…, "
        f"restored {after.checksums[settings.vector_collection][:16]}…"]


def test_the_files_are_listed_for_the_integrity_check(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    part = vector_dump.export(_filled(tmp_path / "a", settings), tmp_path / "backup", settings)
    manifest = Manifest("t", "t", 0.0, {}, {"vectors": part})
    verify_files(tmp_path / "backup", manifest)
    assert sorted(part.files) == sorted(f"vectors/{p.name}" for p in (tmp_path / "backup" / "vectors").iterdir())
