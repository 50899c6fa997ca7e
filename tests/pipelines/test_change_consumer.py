"""The change consumer against real Redis, Neo4j, Ray (the vector owner) and git:
each step leaves the graph and the vectors exactly as the repository is."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import neo4j
import pytest
import ray
import redis

from cluster.processes import free_port
from cluster.vector_owner import vector_store_for
from connectors.circuit_breaker import CircuitBreaker
from connectors.git_connector import GitConnector
from connectors.poller import SourcePoller
from connectors.source_connector import SourceConnector
from pipelines.change_consumer import ChangeConsumer, pages_to_read
from pipelines.ingest import Ingestor
from connectors.push_payload import GitPush
from serve_apps.webhook_app import push_events
from wekadocs.change_event import ChangeEvent
from wekadocs.change_queue import ChangeQueue
from wekadocs.embedder import Embedder, ModelCache
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.ids import checksum
from wekadocs.query.assembly import open_toolbox
from wekadocs.query.engine import QueryEngine
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry
from wekadocs.source_state import SourceState
from wekadocs.vectors import VectorStore
from tests.git_repo import Repo


@pytest.fixture(scope="module")
def encoders() -> ModelCache:
    return ModelCache(lambda spec: Embedder(spec.name, dims=spec.dims, device="cpu", threads=1))


@pytest.fixture(scope="module")
def query_engine(settings: Settings, graph: GraphStore, ray_connection: object) -> QueryEngine:
    """The query engine a replica holds, kept across the pushes of a test."""
    return open_toolbox(settings, vector_store_for(settings), graph=graph).engine


@dataclass
class Rig:
    repo: Repo
    config: SourceConfig
    registry: SourceRegistry
    queue: ChangeQueue
    poller: SourcePoller
    consumer: ChangeConsumer
    graph: GraphStore
    vectors: VectorStore
    settings: Settings

    def stored(self) -> dict[str, str]:
        return {path: digest for path, (_, digest) in
                GraphWriter(self.graph).documents(self.config.name, self.config.effective_version).items()}

    def expected(self) -> dict[str, str]:
        return {path: checksum(data) for path, data in self.repo.pages("docs").items()}

    def vector_ids(self) -> set[str]:
        return {pid for pid, _ in self.vectors.scroll_points(self.settings.vector_collection,
                                                            {"source": self.config.name})}

    def section_ids(self) -> set[str]:
        rows = self.graph.read("MATCH (d:Document {source: $s})-[:HAS_SECTION]->(x:Section) RETURN x.id AS id",
                               s=self.config.name)
        return {row["id"] for row in rows}


@pytest.fixture
def rig(settings: Settings, graph: GraphStore, ray_connection: object, encoders: ModelCache,
        tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """``request.param`` (indirect): how the source names its repository,
    ``path`` (the default) or a ``file://`` URL."""
    apply_schema(graph)
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    prefix = f"test:{uuid.uuid4().hex[:8]}"
    name = f"cons-{uuid.uuid4().hex[:6]}"
    repo = Repo(tmp_path / "work")
    repo.write("docs/intro.md", "# Gadgets\n\nGadgets hold widgets. Run `gadget list` to see them.\n")
    repo.write("docs/setup.md", "# Set up gadgets\n\n## Install\n\nRun `gadget install --fast` first.\n")
    repo.write("docs/moving.md", "# Moving page\n\n" + "This body stays while the page moves.\n" * 6)
    repo.commit("first")
    url = repo.root.as_uri() if getattr(request, "param", "path") == "file" else str(repo.root)
    config = SourceConfig(name=name, kind="git", url=url, docs_path="docs", version="1.0")
    registry = SourceRegistry(client, key=f"{prefix}:sources")
    registry.add(config)
    queue = ChangeQueue(client, name=f"{prefix}:changes")
    vectors = vector_store_for(settings)
    connector = GitConnector(config, tmp_path / "read-mirrors")
    poller = SourcePoller(GitConnector(config, tmp_path / "poll-mirrors"), queue,
                          SourceState(client, prefix=f"{prefix}:source"))
    ingestor = Ingestor(settings, graph, vectors, progress=False, encoders=encoders)
    consumer = ChangeConsumer(queue, registry, ingestor, lambda _: connector, name="c1", reclaim_idle_ms=500)
    yield Rig(repo, config, registry, queue, poller, consumer, graph, vectors, settings)
    ids = GraphWriter(graph).source_documents(name)
    stats = GraphWriter(graph).delete_documents(ids)
    vectors.delete(settings.vector_collection, stats.deleted_section_ids)
    client.delete(*(client.keys(f"{prefix}:*") or ["-"]))
    client.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s:g} s for {what}"
        time.sleep(0.05)


def test_the_graph_follows_each_commit_exactly(rig: Rig) -> None:
    rig.poller.poll()
    first = rig.consumer.step(block_ms=None)
    assert (first.deliveries, first.acknowledged, first.pages) == (3, 3, 3)
    assert rig.stored() == rig.expected()
    assert rig.vector_ids() == rig.section_ids() != set()

    rig.repo.write("docs/intro.md", "# Gadgets\n\nGadgets hold widgets and sprockets.\n")  # modified
    rig.repo.remove("docs/setup.md")  # removed
    rig.repo.move("docs/moving.md", "docs/guide/moved.md")  # renamed
    rig.repo.write("docs/new.md", "# New page\n\nRun `gadget prune` weekly.\n")  # added
    rig.repo.commit("second")
    assert rig.poller.poll().events == 4
    second = rig.consumer.step(block_ms=None)
    assert second.pages == 5  # a rename reads both of its paths
    [report] = second.reports
    assert (report.documents_changed, report.documents_deleted) == (3, 2)
    assert report.embeddings_computed <= 2  # the moved page's text reused its vectors
    assert rig.stored() == rig.expected()
    assert rig.vector_ids() == rig.section_ids()
    assert rig.queue.depth() == 0


def test_a_redelivered_event_changes_nothing_the_second_time(rig: Rig) -> None:
    rig.poller.poll()
    rig.consumer.step(block_ms=None)
    before = rig.graph.read("MATCH (d:Document {source: $s})-[:HAS_SECTION]->(x) RETURN x.id AS id, "
                            "x.run_id AS run ORDER BY id", s=rig.config.name)
    for path in ("intro.md", "setup.md"):  # the same changes, delivered again under new ids
        rig.queue.enqueue(ChangeEvent(source=rig.config.name, path=path, change="modified",
                                      delivery_id=f"again:{path}"))
    again = rig.consumer.step(block_ms=None)
    assert again.acknowledged == 2
    assert again.reports[0].documents_changed == 0
    assert rig.graph.read("MATCH (d:Document {source: $s})-[:HAS_SECTION]->(x) RETURN x.id AS id, "
                          "x.run_id AS run ORDER BY id", s=rig.config.name) == before


@ray.remote(num_cpus=0)
class Victim:
    """A consumer that takes entries and dies before acknowledging them."""

    def take(self, redis_url: str, queue_name: str) -> int:
        queue = ChangeQueue(redis.Redis.from_url(redis_url, decode_responses=True), name=queue_name)
        return len(queue.read("victim", count=100))

    def hang(self) -> None:
        time.sleep(3600)


def test_a_killed_consumers_events_are_redelivered_and_ingested_once(rig: Rig) -> None:
    rig.poller.poll()
    victim = Victim.remote()  # type: ignore[attr-defined]
    assert ray.get(victim.take.remote(rig.settings.effective_redis_url, rig.queue.name)) == 3
    victim.hang.remote()
    ray.kill(victim)
    assert rig.queue.stats().pending == 3
    # A consumer takes over only entries idle for reclaim_idle_ms: none are that old yet.
    # (Asked with an hour, not the rig's 500 ms, which a loaded machine can pass by now.)
    rig.consumer.reclaim_idle_ms = 3_600_000
    assert rig.consumer.step(block_ms=None).deliveries == 0
    rig.consumer.reclaim_idle_ms = 500
    wait_until(lambda: rig.queue.stats().oldest_pending_age_s >= 0.5, "the entries to be idle for 500 ms")
    taken = rig.consumer.step(block_ms=None)
    assert (taken.redelivered, taken.acknowledged) == (3, 3)
    assert rig.stored() == rig.expected()
    counts = rig.graph.read("MATCH (d:Document {source: $s}) RETURN d.path AS path, count(*) AS n",
                            s=rig.config.name)
    assert all(row["n"] == 1 for row in counts) and len(counts) == 3
    assert rig.queue.stats().pending == 0 and rig.queue.depth() == 0


def test_an_unreadable_source_leaves_events_pending_for_a_retry(rig: Rig, tmp_path: Path) -> None:
    rig.poller.poll()
    broken_config = rig.config.model_copy(update={"url": str(tmp_path / "gone")})
    broken: SourceConnector = GitConnector(broken_config, tmp_path / "broken-mirrors")
    working = rig.consumer.connector_for
    rig.consumer.connector_for = lambda _: broken
    failed = rig.consumer.step(block_ms=None)
    assert (failed.retry_later, failed.acknowledged) == (3, 0)
    assert "gone" in failed.errors[0]
    assert rig.stored() == {}
    rig.consumer.connector_for = working
    wait_until(lambda: rig.queue.stats().oldest_pending_age_s >= 0.5, "the entries to be idle for 500 ms")
    retried = rig.consumer.step(block_ms=None)
    assert (retried.redelivered, retried.acknowledged) == (3, 3)
    assert rig.stored() == rig.expected()


def test_a_source_down_for_every_page_sends_nothing_to_dead_letters(rig: Rig, tmp_path: Path) -> None:
    rig.poller.poll()
    broken = GitConnector(rig.config.model_copy(update={"url": str(tmp_path / "gone")}), tmp_path / "broken-mirrors")
    impatient = ChangeConsumer(rig.queue, rig.registry, rig.consumer.ingestor, lambda _: broken,
                               name="c-impatient", reclaim_idle_ms=0, max_deliveries=1)
    failed = impatient.step(block_ms=None)
    assert (failed.deliveries, failed.retry_later, failed.dead_lettered) == (3, 3, 0), failed
    assert rig.queue.dead_letter_list() == [] and rig.queue.stats().pending == 3
    rig.consumer.reclaim_idle_ms = 0
    assert rig.consumer.step(block_ms=None).acknowledged == 3  # back up: nothing was lost
    assert rig.stored() == rig.expected()


def test_a_failing_store_opens_the_breaker_and_the_events_wait_untouched(rig: Rig, encoders: ModelCache) -> None:
    """Neo4j down (a real driver, nothing listening): the first step fails and
    opens the store breaker; while it is open nothing is read, so no delivery
    count climbs towards the dead letters; the trial step after the timeout
    applies everything once the store is back."""
    rig.poller.poll()
    driver = neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{free_port()}", auth=("neo4j", "unused"),
                                        connection_timeout=1, max_transaction_retry_time=0)
    down = Ingestor(rig.settings, GraphStore(driver, "neo4j", 5), rig.vectors, progress=False, encoders=encoders)
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=lambda: now[0])
    consumer = ChangeConsumer(rig.queue, rig.registry, down, rig.consumer.connector_for, name="c-down",
                              reclaim_idle_ms=0, max_deliveries=1, store_breaker=breaker)
    failed = consumer.step(block_ms=None)
    assert (failed.deliveries, failed.acknowledged, failed.retry_later, failed.dead_lettered) == (3, 0, 3, 0)
    assert failed.store_breaker == "open" and "unreachable" in failed.errors[0], failed
    held = consumer.step(block_ms=None)
    assert (held.deliveries, held.store_breaker) == (0, "open")
    assert rig.queue.stats().pending == 3 and rig.queue.dead_letter_list() == []
    consumer.ingestor = rig.consumer.ingestor  # Neo4j is back
    now[0] = 6.0
    trial = consumer.step(block_ms=None)
    assert (trial.redelivered, trial.acknowledged, trial.dead_lettered, trial.store_breaker) == (3, 3, 0, "closed")
    assert rig.stored() == rig.expected()
    driver.close()


def test_events_of_a_removed_source_are_dropped(rig: Rig) -> None:
    rig.poller.poll()
    rig.registry.remove(rig.config.name)
    dropped = rig.consumer.step(block_ms=None)
    assert (dropped.dropped, dropped.pages) == (3, 0)
    assert rig.queue.depth() == 0


def test_pages_to_read_collapses_events_and_reads_both_ends_of_a_rename() -> None:
    events = [
        ChangeEvent(source="s", path="a.md", change="added", revision="r1", delivery_id="1", created_at=1),
        ChangeEvent(source="s", path="a.md", change="modified", revision="r2", delivery_id="2", created_at=2),
        ChangeEvent(source="s", path="c.md", change="renamed", old_path="b.md", revision="r2", delivery_id="3",
                    created_at=3),
    ]
    assert pages_to_read(events) == {"a.md": "r2", "c.md": "r2", "b.md": "r2"}


def test_a_poison_event_holds_back_only_itself_and_goes_to_dead_letters(rig: Rig) -> None:
    rig.poller.poll()  # three good pages
    poison = ChangeEvent(source=rig.config.name, path="bad\nname.md", change="modified", revision="",
                         delivery_id="poison-1")
    rig.queue.enqueue(poison)
    consumer = ChangeConsumer(rig.queue, rig.registry, rig.consumer.ingestor, rig.consumer.connector_for,
                              name="c2", reclaim_idle_ms=0, max_deliveries=2)
    first = consumer.step(block_ms=None)
    assert (first.deliveries, first.acknowledged, first.retry_later) == (4, 3, 1), first
    assert rig.stored() == rig.expected()  # the good pages did not wait for the bad one
    assert any("line break" in error for error in first.errors)
    assert rig.queue.dead_letter_list() == []

    second = consumer.step(block_ms=None)  # the second delivery, the last allowed: it moves aside
    assert (second.redelivered, second.dead_lettered, second.retry_later) == (1, 1, 0), second
    assert rig.queue.depth() == 0 and rig.queue.stats().pending == 0
    [letter] = rig.queue.dead_letter_list()
    assert letter.event == poison and letter.deliveries == 2 and "line break" in letter.error

    assert rig.queue.replay_dead_letters([letter]) == 1  # back in its lane, counted from one again
    assert rig.queue.dead_letter_list() == []
    [again] = rig.queue.read("c3", count=10)
    assert (again.event, again.deliveries) == (poison, 1)


def _found(engine: QueryEngine, word: str, version: str) -> set[str]:
    """Paths of the sections a search for ``word`` returns that hold it."""
    result = engine.search(f"freshness marker {word}", version=version, top_k=5)
    return {e.path for e in result.evidence(5) if word in e.snippet}


@pytest.mark.parametrize("rig", ["path", "file"], indirect=True)
def test_each_kind_of_push_is_searchable_after_one_step(rig: Rig, query_engine: QueryEngine) -> None:
    """A push of an added, modified, renamed or removed page shows in search
    as soon as the consumer's one step applied it, with the engine's page
    lists already read before the push (as in a running query replica)."""
    rig.poller.poll()
    rig.consumer.step(block_ms=None)
    version = rig.config.effective_version
    pushes = 0

    def push(change: str, path: str, word: str = "", *, old_path: str = "") -> None:
        nonlocal pushes
        if change == "removed":
            rig.repo.remove(f"docs/{path}")
        elif change == "renamed":
            rig.repo.move(f"docs/{old_path}", f"docs/{path}")
        else:
            rig.repo.write(f"docs/{path}", f"# Pushed page\n\nThe freshness marker {word} arrived by a push.\n")
        sha = rig.repo.commit(f"{change} {path}")
        listed = {"added": [], "modified": [], "removed": []}
        if change == "renamed":  # GitHub lists a rename as the old path removed, the new one added
            listed["removed"].append(f"docs/{old_path}")
            listed["added"].append(f"docs/{path}")
        else:
            listed[change].append(f"docs/{path}")
        pushes += 1
        push = GitPush.parse({"ref": "refs/heads/main", "after": sha, "commits": [{"id": sha, **listed}]})
        for event in push_events(rig.config, push, f"push-{pushes}"):
            rig.queue.enqueue(event)
        step = rig.consumer.step(block_ms=None)
        assert step.acknowledged == step.deliveries > 0 and not step.errors, step

    assert _found(query_engine, "intro", version) == set()  # the engine has read this version's pages
    push("added", "fresh.md", "mkadded")
    assert _found(query_engine, "mkadded", version) == {"fresh.md"}, "an added page is not searchable"
    push("modified", "fresh.md", "mkmodified")
    assert _found(query_engine, "mkmodified", version) == {"fresh.md"}
    assert _found(query_engine, "mkadded", version) == set()
    push("renamed", "moved/fresh.md", old_path="fresh.md")
    assert _found(query_engine, "mkmodified", version) == {"moved/fresh.md"}, "a renamed page is not searchable"
    push("removed", "moved/fresh.md")
    assert _found(query_engine, "mkmodified", version) == set()
    assert rig.stored() == rig.expected()
