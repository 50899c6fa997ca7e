"""Ingestion against the real stack: Neo4j, the Ray head, Qdrant Edge via its owner actor."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from cluster.vector_owner import vector_store_for
from pipelines.embedding import EmbedBatch, embedding_cpus
from pipelines.ingest import IngestReport, Ingestor
from pipelines.reconcile import reconcile
from wekadocs.graph_schema import apply_schema
from wekadocs.embedder import Embedder, ModelCache
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings, collection_name
from wekadocs.vectors import VectorStore
from wekadocs.vectors.registry import BUILDING, CollectionRecord, ensure_serving

PAGES = {
    "index.md": "# Widgets\n\nWidgets store things. See [create](guide/create.md#create-a-widget).\n",
    "guide/create.md": (
        "---\ndescription: Creating widgets.\n---\n\n# Create widgets\n\n## Create a widget\n\n"
        "**Command:** `weka widget create`\n\n`weka widget create <name> [--size size]`\n\n"
        "## Steps\n\n1. Open the widget page of the console.\n2. Run `weka widget create demo` now.\n"
        "3. Check that the widget is listed.\n"
    ),
    "guide/delete.md": "# Delete widgets\n\n## Delete a widget\n\nRun `weka widget delete <name>` to remove it.\n",
}


@pytest.fixture(scope="module")
def stores(settings: Settings, graph: GraphStore, ray_connection: object) -> Iterator[tuple[GraphStore, VectorStore]]:
    apply_schema(graph)
    yield graph, vector_store_for(settings)


def write_tree(root: Path, pages: dict[str, str | bytes]) -> Path:
    if root.exists():
        shutil.rmtree(root)
    for path, text in pages.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode() if isinstance(text, str) else text)
    return root


def ingest(settings: Settings, stores: tuple[GraphStore, VectorStore], root: Path, source: str,
           version: str = "1.0") -> IngestReport:
    graph, vectors = stores
    return Ingestor(settings, graph, vectors, progress=False).run(root, source=source, version=version)


def snapshot(graph: GraphStore, source: str) -> dict[str, object]:
    """Everything of one source that an ingest could change."""
    sections = graph.read(
        "MATCH (d:Document {source: $s})-[:HAS_SECTION]->(x:Section) "
        "RETURN x.id AS id, x.checksum AS checksum, x.run_id AS run ORDER BY id", s=source)
    mentions = graph.read(
        "MATCH (d:Document {source: $s})-[:HAS_SECTION]->(:Section)-[m:MENTIONS]->(e) "
        "RETURN labels(e)[0] AS label, e.id AS entity, m.start AS start ORDER BY label, entity, start", s=source)
    derived = graph.read(
        "MATCH (d:Document {source: $s})-[:HAS_SECTION]->(x:Section) "
        "MATCH ()-[r]->() WHERE r.derived_from_section_id = x.id "
        "RETURN type(r) AS type, count(*) AS n ORDER BY type", s=source)
    return {"sections": sections, "mentions": mentions, "derived": derived}


def point_ids(vectors: VectorStore, settings: Settings, source: str) -> set[str]:
    return {pid for pid, _ in vectors.scroll_points(settings.vector_collection, {"source": source})}


def test_ingest_writes_graph_and_vectors(settings: Settings, stores, tmp_path: Path) -> None:
    graph, vectors = stores
    report = ingest(settings, stores, write_tree(tmp_path / "t", PAGES), "basic")
    assert report.errors == []
    assert (report.documents_seen, report.documents_changed) == (3, 3)
    assert report.sections_written == 6 and report.embeddings_computed == 6
    assert report.vectors_upserted == 6
    rows = graph.read("MATCH (d:Document {source: 'basic'}) RETURN d.path AS path ORDER BY path")
    assert [r["path"] for r in rows] == ["guide/create.md", "guide/delete.md", "index.md"]
    commands = graph.read(
        "MATCH (:Document {source: 'basic'})-[:HAS_SECTION]->(:Section)-[:MENTIONS]->(c:Command) "
        "RETURN DISTINCT c.name AS name ORDER BY name")
    assert [r["name"] for r in commands] == ["weka widget create", "weka widget delete"]
    steps = graph.read(
        "MATCH (p:Procedure)-[r:CONTAINS_STEP]->(s:Step)-[:EXECUTES]->(c:Command) "
        "WHERE r.derived_from_section_id IS NOT NULL AND p.name = 'Create widgets' "  # "## Steps" names its parent
        "RETURN s.order AS o, c.name AS c")
    assert steps == [{"o": 2, "c": "weka widget create"}]
    links = graph.read(
        "MATCH (:Document {source: 'basic', path: 'index.md'})-[:HAS_SECTION]->(s)-[:LINKS_TO]->(t:Section) "
        "RETURN t.anchor AS anchor")
    assert links == [{"anchor": "create-a-widget"}]
    sections = {r["id"] for r in snapshot(graph, "basic")["sections"]}  # type: ignore[index]
    assert point_ids(vectors, settings, "basic") == sections


def test_second_run_writes_nothing_and_ids_are_stable(settings: Settings, stores, tmp_path: Path) -> None:
    graph, _ = stores
    root = write_tree(tmp_path / "t", PAGES)
    ingest(settings, stores, root, "stable")
    before = snapshot(graph, "stable")
    again = ingest(settings, stores, root, "stable")
    assert (again.documents_changed, again.sections_written, again.sections_deleted) == (0, 0, 0)
    assert (again.embeddings_computed, again.vectors_upserted, again.vectors_deleted) == (0, 0, 0)
    assert snapshot(graph, "stable") == before  # same ids, same run ids: nothing re-written


def test_same_text_elsewhere_reuses_its_vector(settings: Settings, stores, tmp_path: Path) -> None:
    ingest(settings, stores, write_tree(tmp_path / "a", PAGES), "reuse", version="1.0")
    report = ingest(settings, stores, write_tree(tmp_path / "b", PAGES), "reuse", version="2.0")
    assert report.sections_written == 6
    assert report.embeddings_computed == 0 and report.embeddings_reused == 6
    assert report.vectors_upserted == 6


def test_text_moved_to_another_page_reuses_its_vector(settings: Settings, stores, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "t", PAGES)
    ingest(settings, stores, root, "moved")
    (root / "guide" / "delete.md").rename(root / "guide" / "remove.md")  # same text, new page and ids
    report = ingest(settings, stores, root, "moved")
    assert report.documents_deleted == 1 and report.documents_changed == 1
    assert report.embeddings_computed == 0 and report.embeddings_reused == 2
    assert report.vectors_upserted == 2 and report.vectors_deleted == 2


def test_one_edited_section_is_the_only_thing_rewritten(settings: Settings, stores, tmp_path: Path) -> None:
    graph, vectors = stores
    root = write_tree(tmp_path / "t", PAGES)
    ingest(settings, stores, root, "edit")
    before = {r["id"]: r for r in snapshot(graph, "edit")["sections"]}  # type: ignore[index]
    page = root / "guide" / "delete.md"
    page.write_text(page.read_text().replace("to remove it.", "to remove it for good."))
    report = ingest(settings, stores, root, "edit")
    assert (report.documents_changed, report.sections_written, report.sections_deleted) == (1, 1, 0)
    assert report.embeddings_computed == 1 and report.vectors_upserted == 1
    after = {r["id"]: r for r in snapshot(graph, "edit")["sections"]}  # type: ignore[index]
    assert after.keys() == before.keys()
    changed = [sid for sid in after if after[sid] != before[sid]]
    assert len(changed) == 1
    assert point_ids(vectors, settings, "edit") == set(after)


def test_removed_sections_and_files_leave_no_orphans(settings: Settings, stores, tmp_path: Path) -> None:
    graph, vectors = stores
    root = write_tree(tmp_path / "t", PAGES)
    ingest(settings, stores, root, "removal")
    (root / "guide" / "delete.md").unlink()
    create = root / "guide" / "create.md"
    create.write_text(create.read_text().split("## Steps")[0])
    report = ingest(settings, stores, root, "removal")
    assert report.documents_deleted == 1 and report.documents_changed == 1
    assert report.sections_deleted == 3  # Delete widgets, Delete a widget, Steps
    remaining = {r["id"] for r in snapshot(graph, "removal")["sections"]}  # type: ignore[index]
    assert len(remaining) == 3
    assert point_ids(vectors, settings, "removal") == remaining
    assert graph.read("MATCH (s:Step) WHERE NOT (s)<-[:MENTIONS]-() RETURN count(s) AS n") == [{"n": 0}]
    orphans = graph.read(
        "MATCH (e) WHERE (e:Command OR e:Parameter OR e:Configuration OR e:Error) "
        "AND NOT ()-[:MENTIONS]->(e) RETURN count(e) AS n")
    assert orphans == [{"n": 0}]


def test_bad_input_is_reported_per_file_and_loses_nothing(settings: Settings, stores, tmp_path: Path) -> None:
    graph, _ = stores
    nested = "# Deep lists\n\n" + "\n".join("  " * d + f"- level {d}" for d in range(200)) + "\n"
    pages: dict[str, str | bytes] = {
        **PAGES,
        "empty.md": b"",
        "latin1.md": "# Caf\xe9\n\nd\xe9j\xe0 vu\n".encode("latin-1"),
        "huge.md": b"# Huge\n\n" + b"word " * (11 * 1024 * 1024),  # ~55 MB
        "nested.md": nested,
        "broken.html": "<html><body><h1>Broken<p>unclosed <b>tags <table><tr><td>cell one",
    }
    root = write_tree(tmp_path / "t", pages)
    (root / "dangling.md").symlink_to(root / "missing-target.md")
    report = ingest(settings, stores, root, "bad")
    errors = {e["path"]: e["error"] for e in report.errors}
    assert set(errors) == {"empty.md", "latin1.md", "huge.md", "dangling.md"}
    assert "file is empty" in errors["empty.md"]
    assert "not valid UTF-8" in errors["latin1.md"]
    assert "over the 5.0 MB limit" in errors["huge.md"]
    assert "cannot read" in errors["dangling.md"] or "not a regular file" in errors["dangling.md"]
    assert report.documents_changed == 5  # the three pages, the nested lists, the broken HTML
    texts = graph.read(
        "MATCH (d:Document {source: 'bad'})-[:HAS_SECTION]->(s) WHERE d.path IN ['nested.md', 'broken.html'] "
        "RETURN d.path AS path, collect(s.text) AS texts")
    by_path = {r["path"]: " ".join(r["texts"]) for r in texts}
    assert "level 199" in by_path["nested.md"] and "cell one" in by_path["broken.html"]

    # a file that turns bad keeps its last good version in the stores
    (root / "index.md").write_bytes(b"\xff\xfe not utf-8")
    before = snapshot(graph, "bad")
    again = ingest(settings, stores, root, "bad")
    assert "index.md" in {e["path"] for e in again.errors}
    assert snapshot(graph, "bad") == before


def test_values_too_long_to_index_are_bounded_not_fatal(settings: Settings, stores, tmp_path: Path) -> None:
    """Neo4j refuses to index a property over ~8 kB ("Property value is too large
    to index"): one page with a huge heading or command line must not fail the
    transaction that carries its neighbours' pages too."""
    graph, _ = stores
    heading = "Tune " + "very " * 2000 + "long"  # a 10 kB heading, and so a 10 kB anchor
    command = "weka fs create " + " ".join(f"--opt{i} v" for i in range(1500))  # a 16 kB command line
    pages: dict[str, str | bytes] = {
        **PAGES,
        "long.md": f"# Long\n\n## {heading}\n\nOnce.\n\n## {heading}\n\nAgain.\n\n## Run\n\n```\n{command}\n```\n",
    }
    report = ingest(settings, stores, write_tree(tmp_path / "t", pages), "long")
    assert report.errors == []
    rows = graph.read(
        "MATCH (d:Document {source: 'long', path: 'long.md'})-[:HAS_SECTION]->(s) "
        "RETURN s.anchor AS anchor, s.title AS title ORDER BY s.anchor")
    anchors = {r["anchor"] for r in rows if r["title"] == heading}  # the heading text is kept whole
    assert len(anchors) == 2 and all(len(a.encode()) <= 512 for a in anchors)
    assert all(a.startswith("tune-very-very") for a in anchors)
    names = graph.read("MATCH (e) WHERE e.name STARTS WITH 'weka fs create' RETURN e.name AS name")
    assert names and all(len(r["name"].encode()) <= 512 for r in names)
    assert graph.read("MATCH (d:Document {source: 'long'}) RETURN count(d) AS n")[0]["n"] == len(pages)


def test_reconcile_reports_and_repairs_drift(settings: Settings, stores, tmp_path: Path) -> None:
    graph, vectors = stores
    ingest(settings, stores, write_tree(tmp_path / "t", PAGES), "drift")
    clean = reconcile(settings, graph, vectors, repair=False)
    assert clean.drift_pct == 0.0
    ids = sorted(point_ids(vectors, settings, "drift"))
    vectors.delete(settings.vector_collection, ids[:2])  # missing
    graph.write("MATCH (s:Section {id: $id}) SET s.checksum = 'tampered'", id=ids[2])  # stale
    from wekadocs.vectors import VectorPoint

    vectors.upsert(settings.vector_collection, [VectorPoint("ee" * 32, [0.1] * settings.embedding_dims, {})])  # extra
    drift = reconcile(settings, graph, vectors, repair=False)
    assert (drift.missing, drift.stale, drift.extra) == (2, 1, 1)
    assert drift.drift_pct == pytest.approx(100 * 4 / drift.sections, abs=0.01)
    repaired = reconcile(settings, graph, vectors, repair=True)
    assert repaired.repaired and repaired.vectors_deleted == 1 and repaired.vectors_upserted == 3
    assert reconcile(settings, graph, vectors, repair=False).drift_pct == 0.0


def test_a_collection_being_built_whose_model_fails_does_not_fail_the_serving_write(
        settings: Settings, stores, tmp_path: Path) -> None:
    """A re-embed job's collection is kept current as a courtesy; its parity
    check repairs what a writer could not do. The serving write must land."""
    graph, vectors = stores
    registry = ensure_serving(settings, vectors)
    broken = CollectionRecord(collection_name("broken.1"), "broken.1", "no-such-model-here", 8, state=BUILDING)
    vectors.create_collection(broken.name, broken.dims)
    registry.put(broken)
    try:
        encoders = ModelCache(lambda spec: Embedder(spec.name, dims=spec.dims, device="cpu"))
        report = Ingestor(settings, graph, vectors, progress=False, encoders=encoders).run(
            write_tree(tmp_path / "t", PAGES), source="building", version="1.0")
        assert report.collections == [settings.vector_collection]
        assert len(report.warnings) == 1 and broken.name in report.warnings[0]
        assert "no-such-model-here" in report.warnings[0] and "catch-up fills it" in report.warnings[0]
        assert len(point_ids(vectors, settings, "building")) == report.sections_written > 0
        assert vectors.count(broken.name) == 0
    finally:
        registry.remove(broken.name)
        vectors.drop_collection(broken.name)


def test_corpus_update_4_3_to_4_4_touches_exactly_what_changed(
    settings: Settings, stores, tmp_path: Path, corpus_root: Path, count_tokens
) -> None:
    """Three real folders of the corpus move from 4.3 to 4.4 as one source:
    modified, added and removed pages."""
    from pipelines.parse import parse_document
    from wekadocs.graph_writer import section_state

    folders = ["best-practice-guides", "wekapod", "licensing"]
    repo = tmp_path / "repo"

    def checkout(version: str) -> Path:
        if repo.exists():
            shutil.rmtree(repo)
        for folder in folders:
            shutil.copytree(corpus_root / version / folder, repo / folder)
        return repo

    def parsed_states(version: str) -> dict[str, tuple[str, str]]:
        states = {}
        for path in sorted((corpus_root / version).rglob("*.md")):
            rel = path.relative_to(corpus_root / version).as_posix()
            if rel.split("/")[0] in folders:
                doc = parse_document(path.read_bytes(), path=rel, source="corpus", version="live",
                                     source_uri="", count_tokens=count_tokens,
                                     token_budget=settings.section_token_budget, max_bytes=5_000_000)
                states.update({s.id: (section_state(s), s.checksum) for s in doc.sections})
        return states

    graph, vectors = stores
    first = ingest(settings, stores, checkout("4.3"), "corpus", "live")
    assert first.errors == []
    old, new = parsed_states("4.3"), parsed_states("4.4")
    changed = {sid for sid in new if old.get(sid, ("", ""))[0] != new[sid][0]}
    removed = set(old) - set(new)
    known_texts = {checksum for _, checksum in old.values()}
    new_texts = {new[sid][1] for sid in changed} - known_texts
    # Vectors are shared by text across sources: other tests may have embedded some already.
    embedded_elsewhere = set(vectors.vectors_for_checksums(settings.vector_collection, sorted(new_texts)))

    update = ingest(settings, stores, checkout("4.4"), "corpus", "live")
    assert update.errors == []
    assert update.sections_deleted == len(removed)
    assert update.sections_written >= len(changed)
    # parts of a split section are re-written together (they share a procedure)
    rewritten = update.sections_written - len(changed)
    assert rewritten <= sum(1 for sid in new if sid not in changed and sid in old)
    assert update.embeddings_computed == len(new_texts - embedded_elsewhere)
    now = {r["id"] for r in snapshot(graph, "corpus")["sections"]}  # type: ignore[index]
    assert now == set(new)
    assert point_ids(vectors, settings, "corpus") == now


def test_a_killed_run_leaves_consistent_stores_and_a_rerun_finishes(settings: Settings, stores, tmp_path: Path) -> None:
    graph, vectors = stores
    pages = {f"p{i:02d}.md": f"# Page {i}\n\n## Part A\n\nAlpha text {i}.\n\n## Part B\n\nBeta text {i}.\n"
             for i in range(40)}
    root = write_tree(tmp_path / "t", pages)
    env = {**os.environ, "WEKADOCS_DATA_DIR": str(settings.data_dir),
           "WEKADOCS_NEO4J_PORT": str(settings.neo4j_port), "WEKADOCS_REDIS_PORT": str(settings.redis_port),
           "WEKADOCS_RAY_PORT": str(settings.ray_port),
           "WEKADOCS_RAY_DASHBOARD_PORT": str(settings.ray_dashboard_port),
           "WEKADOCS_WRITE_BATCH_DOCUMENTS": "4"}
    cli = str(Path(sys.executable).with_name("wekadocs"))
    process = subprocess.Popen([cli, "ingest", str(root), "--source", "killed", "--version", "1.0", "--json"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        n = graph.read("MATCH (d:Document {source: 'killed'}) RETURN count(d) AS n")[0]["n"]
        if n > 0:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # every document present is complete: batches are transactions
    partial = graph.read(
        "MATCH (d:Document {source: 'killed'}) OPTIONAL MATCH (d)-[:HAS_SECTION]->(s) "
        "WITH d, count(s) AS n WHERE n <> 3 RETURN d.path AS path")
    assert partial == []
    report = ingest(settings, stores, root, "killed")
    assert report.errors == []
    sections = {r["id"] for r in snapshot(graph, "killed")["sections"]}  # type: ignore[index]
    assert len(sections) == 120
    assert point_ids(vectors, settings, "killed") == sections
    assert reconcile(settings, graph, vectors, repair=False).drift_pct == 0.0


@ray.remote
class CpuHolder:
    """Holds part of a CPU, as Serve replicas do."""

    def ready(self) -> bool:
        return True


def test_embedding_reserves_only_the_cpus_that_are_free() -> None:
    # threads 0: the actor takes its node's cores, whatever it could reserve
    assert embedding_cpus(2.0, 1) == (0, 2.0)
    assert embedding_cpus(1.65, 1) == (0, 1.65)  # Serve replicas hold 0.35
    assert embedding_cpus(0.5, 1) == (0, 0.5)  # never more than is free
    assert embedding_cpus(4.0, 2) == (0, 2.0)
    assert embedding_cpus(1.65, 1, threads=1) == (1, 1.0)  # set threads cap the reservation
    assert embedding_cpus(0.5, 1, threads=4) == (4, 0.5)


class ThreadProbe(EmbedBatch):
    """The embedding actor, asked how many threads torch runs it with."""

    def torch_threads(self) -> int:
        import torch

        return int(torch.get_num_threads())


def test_the_embedding_actor_uses_the_nodes_cores_while_serve_holds_part_of_a_cpu(
        settings: Settings, stores: tuple[GraphStore, VectorStore]) -> None:
    holder = CpuHolder.options(num_cpus=0.35).remote()  # type: ignore[attr-defined]
    ray.get(holder.ready.remote())
    try:
        # built as the ingest job builds it, from what is free now
        threads, cpus = embedding_cpus(ray.available_resources().get("CPU", 0.0), 1)
        assert 0 < cpus < settings.ray_num_cpus  # type: ignore[operator]
        actor = ray.remote(ThreadProbe).options(num_cpus=cpus).remote(  # type: ignore[attr-defined]
            settings.embedding_model, 32, "cpu", threads)
        cores = len(os.sched_getaffinity(0))  # the actor runs on this node
        assert cores > 1, "this test needs a node with two cores or more"
        assert ray.get(actor.torch_threads.remote(), timeout=300) == cores
        ray.kill(actor)
    finally:
        ray.kill(holder)


def test_ingest_finishes_while_other_actors_hold_part_of_the_cpus(settings: Settings, stores,
                                                                  tmp_path: Path) -> None:
    holder = CpuHolder.options(num_cpus=0.5).remote()  # type: ignore[attr-defined]
    ray.get(holder.ready.remote())
    try:
        marker = uuid.uuid4().hex
        root = write_tree(tmp_path / "held", {"page.md": f"# Held cores\n\nA text seen once: {marker}.\n"})
        report = ingest(settings, stores, root, f"held-{marker[:6]}")
        assert (report.documents_changed, report.embeddings_computed) == (1, 1)
    finally:
        ray.kill(holder)
