"""`wekadocs backup` of the shared test stack (the ingested query slice plus
queue entries, an API token and a cursor in Redis), restored into a fresh
stack of its own (Neo4j and Redis on free ports; the embedded vectors opened
in this process, as the CLI does when no Ray head runs): equal manifests, the
same search results, and the refusals that keep live data safe."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis

from cluster import services
from cluster.backup import Manifest, RestoreReport, backup, restore
from cluster.backup import neo4j_dump, redis_dump, vector_dump
from cluster.neo4j_server import Neo4jServer
from cluster.redis_server import RedisServer
from tests.conftest import SLICE_VERSION, make_settings
from wekadocs.auth.api_tokens import ApiTokenStore
from wekadocs.change_event import ChangeEvent
from wekadocs.change_queue import ChangeQueue
from wekadocs.errors import BackupError
from wekadocs.graph_store import GraphStore
from wekadocs.query.assembly import open_toolbox
from wekadocs.query.tools import Toolbox
from wekadocs.settings import Settings
from wekadocs.source_state import SourceState
from wekadocs.vectors import open_vector_store

# A backup and a restore each stop and start Neo4j several times (about a
# minute each on a busy 2-core machine), on top of the session stack and the
# slice's ingest in the first test's setup.
pytestmark = pytest.mark.timeout(1800)

QUESTIONS = ["how do I deactivate a license", "fixed port for the NFS mountd service",
             "what does a background task do", "which alerts does the cluster raise", "NFS client permissions"]
PROBE_SOURCE = "backup-probe"


def _ranked(toolbox: Toolbox) -> dict[str, list[str]]:
    found = {}
    for question in QUESTIONS:
        result = toolbox.engine.search(question, version=SLICE_VERSION)
        assert not result.diagnostics["degraded"], result.diagnostics
        found[question] = [c.section_id for c in result.ranked[:10]]
    return found


@pytest.fixture(scope="module")
def held(toolbox: Toolbox) -> dict[str, list[str]]:
    """The held queries' answers on the source stack, before the backup."""
    found = _ranked(toolbox)
    assert all(found.values()), found
    return found


@pytest.fixture(scope="module")
def source_redis(settings: Settings, stack: object) -> Iterator[None]:
    """Queue entries, an API token and a cursor in the shared stack's Redis;
    removed again afterwards (other modules count the queue)."""
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    before = set(client.scan_iter(match="wekadocs:*"))
    queue = ChangeQueue(client, capacity=settings.queue_capacity)
    results = queue.enqueue_all([ChangeEvent(source=PROBE_SOURCE, path=f"docs/page-{i}.md", change="modified",
                                             delivery_id=f"backup-test-{i}", priority="high" if i == 0 else "normal")
                                 for i in range(3)])
    ApiTokenStore(client).create("backup-probe", ["docs:read"])
    SourceState(client).save_cursor(PROBE_SOURCE, {"commit": "0123abcd"})
    yield
    ids = [r.entry_id for r in results if r.entry_id]
    for stream in queue.streams.values():
        if ids:
            client.xdel(stream, *ids)
    ApiTokenStore(client).revoke("backup-probe")
    added = set(client.scan_iter(match="wekadocs:*")) - before
    if added:
        client.delete(*added)
    client.close()


@pytest.fixture(scope="module")
def backup_dir(settings: Settings, ingested: object, source_redis: None, held: object, short_tmp: Path) -> Path:
    return backup(settings, short_tmp / "bk").folder


@pytest.fixture(scope="module")
def target(short_tmp: Path) -> Iterator[Settings]:
    """A fresh, empty stack: Neo4j and Redis only (no Ray head, so the vector
    store is opened in this process)."""
    fresh = make_settings(short_tmp / "restored")
    try:
        for server in (Neo4jServer(fresh), RedisServer(fresh)):
            services.start_one(fresh, server)
        yield fresh
    finally:
        services.down(fresh)


@pytest.fixture(scope="module")
def restored(target: Settings, backup_dir: Path) -> RestoreReport:
    return restore(target, backup_dir)


def _nodes(settings: Settings) -> int:
    with GraphStore.connect(settings) as graph:
        return int(graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"])


def test_restore_into_a_fresh_stack_gives_equal_manifests_and_the_same_search_results(
        target: Settings, backup_dir: Path, restored: RestoreReport, held: dict[str, list[str]]) -> None:
    manifest = Manifest.read(backup_dir)
    counts = {name: part.counts for name, part in manifest.parts.items()}
    assert counts["neo4j"]["documents"] > 0 and counts["neo4j"]["sections"] > 0
    assert sum(v for k, v in counts["vectors"].items() if k.startswith("points:sections-")) >= \
        counts["neo4j"]["sections"]
    assert counts["redis"]["queue_entries"] >= 3 and counts["redis"]["api_tokens"] >= 1
    assert counts["redis"]["cursors"] >= 1
    assert restored.verified == manifest.content()
    assert restored.safety_backup is None  # the stack was empty

    # the restored stack's own manifest content, read again from its live stores
    with GraphStore.connect(target) as graph, open_vector_store(target) as vectors, \
            closing(redis_dump.client_for(target)) as client:
        again = {"neo4j": neo4j_dump.graph_summary(graph).content(),
                 "vectors": vector_dump.summary(vectors).content(),
                 "redis": redis_dump.summary(client).content()}
        assert again == manifest.content()
        assert _ranked(open_toolbox(target, vectors, graph=graph)) == held


def test_restore_refuses_a_stack_that_holds_data_without_force(target: Settings, backup_dir: Path,
                                                              restored: RestoreReport) -> None:
    nodes = _nodes(target)
    with pytest.raises(BackupError, match=r"already holds data \(\d+ graph nodes; \d+ vectors; \d+ Redis keys"):
        restore(target, backup_dir)
    assert neo4j_dump.is_running(target) and _nodes(target) == nodes


def test_restore_refuses_a_tampered_backup_and_changes_nothing(target: Settings, backup_dir: Path,
                                                               restored: RestoreReport, short_tmp: Path) -> None:
    tampered = short_tmp / "bk-tampered"
    shutil.copytree(backup_dir, tampered)
    keys = tampered / "redis" / "keys.jsonl"
    keys.write_text("".join(keys.read_text().splitlines(keepends=True)[:-1]))  # one key fewer
    nodes = _nodes(target)
    with pytest.raises(BackupError) as caught:
        restore(target, tampered, force=True)
    assert "failed its integrity check (nothing was changed)" in str(caught.value)
    assert "redis/keys.jsonl:" in str(caught.value)
    assert neo4j_dump.is_running(target) and _nodes(target) == nodes
    assert not (target.data_dir / "backups").exists()  # refused before any safety backup


def test_restore_with_force_keeps_a_safety_backup_then_replaces_what_was_there(
        target: Settings, backup_dir: Path, restored: RestoreReport) -> None:
    """Runs last: a write made after the restore is replaced by the backup's
    content, and the data it replaced is kept in a safety backup first."""
    with GraphStore.connect(target) as graph:
        graph.write("CREATE (:Stray {note: 'written after the restore'})")
    report = restore(target, backup_dir, force=True)
    assert report.verified == Manifest.read(backup_dir).content()
    assert report.safety_backup is not None
    safety = Manifest.read(Path(report.safety_backup))
    assert safety.parts["neo4j"].counts["nodes"] == _nodes(target) + 1  # the stray node is in it, not here
    with GraphStore.connect(target) as graph:
        assert graph.read("MATCH (s:Stray) RETURN count(s) AS n")[0]["n"] == 0
