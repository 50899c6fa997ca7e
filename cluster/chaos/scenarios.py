"""The scenarios. Each needs Ray connected to the stack, and returns an ``Outcome``.

Search scenarios load the deployed MCP service; freshness scenarios push
new pages of a git source the deployed consumer follows (``PushTarget``):
an event is *lost* when its delivery was accepted but its page never reached
the graph, *duplicated* when one delivery queued more events than it names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis
from ray import serve

from cluster.chaos.clients import Answer, PushResult, PushSender, SearchLoad
from cluster.chaos.faults import actor_pid, alive_actors, crash_service, kill_actor, replica_pids, signal_service, worker_raylet_pid
from cluster.chaos.outcome import Outcome
from cluster.freshness import CONSUMER, SUPERVISOR, freshness_status
from cluster.neo4j_server import Neo4jServer
from cluster.ray_workers import list_nodes
from cluster.redis_server import RedisServer
from cluster.services import start_one, stop_one
from cluster.vector_owner import owner_name, vector_store_for
from serve_apps.mcp_app import application
from wekadocs.auth.api_tokens import ApiTokenStore
from wekadocs.change_queue import ChangeQueue
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceRegistry
from wekadocs.source_state import SourceState

__all__ = ["PushTarget", "freshness_actors_killed", "neo4j_stopped", "neo4j_stopped_during_ingest", "redis_restarted",
           "serve_replica_killed", "vector_owner_killed", "worker_killed_during_reembed"]

QUERIES = ["fixed port for NFS mountd", "how licensing works", "what does the alerts page list",
           "background tasks", "how to add a client to the cluster"]


class PageRepo(Protocol):
    def write(self, path: str, text: str) -> None: ...
    def commit(self, message: str) -> str: ...


@dataclass
class PushTarget:
    """A git source the deployed consumer follows: its working repository
    (``docs_path`` inside it), and a sender for its push webhooks."""

    settings: Settings
    source: str
    version: str  # the source's effective version (its branch for git)
    docs_path: str
    repo: PageRepo
    sender: PushSender

    def new_pages(self, count: int, tag: str) -> tuple[str, list[str]]:
        """Commit ``count`` new pages; the revision and their page paths."""
        paths = [f"chaos-{tag}-{n:03d}.md" for n in range(count)]
        for n, path in enumerate(paths):
            self.repo.write(f"{self.docs_path}/{path}",
                            f"# Chaos page {tag} {n}\n\nA page pushed while something failed ({tag}, {n}).\n")
        return self.repo.commit(f"chaos {tag}: {count} pages"), paths

    def applied(self, paths: list[str]) -> set[str]:
        with GraphStore.connect(self.settings) as graph:
            return set(GraphWriter(graph).documents(self.source, self.version, paths))

    def drain(self, paths: list[str], since: float, timeout_s: float) -> tuple[set[str], float | None]:
        """Wait until every page is in the graph and none of the source's
        entries is left in the queue: the pages still missing, and seconds from
        ``since`` until then (None: not within ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        client = redis.Redis.from_url(self.settings.effective_redis_url, decode_responses=True)
        try:
            while True:
                missing, held = self._left(paths, client)
                if not missing and not held:
                    return missing, time.monotonic() - since
                if time.monotonic() > deadline:
                    return missing, None
                time.sleep(0.5)
        finally:
            client.close()

    def _left(self, paths: list[str], client: redis.Redis) -> tuple[set[str], int]:
        """Pages not in the graph yet, and the source's entries still queued."""
        try:
            missing = set(paths) - self.applied(paths)
            held = ChangeQueue(client, capacity=self.settings.queue_capacity).held_for(self.source)
        except Exception:  # noqa: BLE001 — a store may still be coming back: everything is left
            return set(paths), 1
        return missing, held

    def pushes(self, revision: str, paths: list[str], tag: str) -> list[tuple[str, list[str], str]]:
        """One delivery per page (GitHub sends one per push)."""
        return [(revision, [f"{self.docs_path}/{path}"], f"chaos-{tag}-{n}") for n, path in enumerate(paths)]


# --- search under faults ------------------------------------------------------------


def vector_owner_killed(settings: Settings, mcp_url: str, *, version: str | None = None,
                        timeout_s: float = 60.0) -> Outcome:
    """SIGKILL the vector store's owner actor under a search load: answers go
    on from keyword + graph (degraded), Ray restarts the owner, vectors return."""
    with vector_store_for(settings) as store:
        points_before = store.count(settings.vector_collection)
    with SearchLoad(mcp_url, QUERIES, version=version) as load:
        load.wait_answers(4, timeout_s=120)
        killed = time.monotonic()
        kill_actor(settings, owner_name(settings))
        recovered = load.wait(lambda answers: _whole_again(answers, killed) is not None, timeout_s)
        if recovered:
            load.wait_answers(4, after=time.monotonic(), timeout_s=60)
        answers = load.snapshot()
    with vector_store_for(settings) as store:
        points_after = store.count(settings.vector_collection)
    after = [a for a in answers if a.ended >= killed]
    return _search_outcome("vector store owner killed under search load", answers, killed, points_before - points_after,
                           {"degraded answers": sum(a.degraded for a in after),
                            "points before/after": f"{points_before}/{points_after}"})


def serve_replica_killed(settings: Settings, base_url: str, *, version: str | None = None,
                         timeout_s: float = 180.0) -> Outcome:
    """A two-replica copy of the MCP app; SIGKILL one replica under a search
    load: the other answers while Serve starts a replacement."""
    app, prefix, deployment = f"chaos-replicas-{uuid.uuid4().hex[:6]}", "/chaos-replicas", "MCPServer"
    serve.run(application(settings, partial(vector_store_for, settings),
                          {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0}}),
              name=app, route_prefix=prefix, blocking=False)
    try:
        _wait(lambda: len(replica_pids(settings, app, deployment)) == 2 and _healthy(f"{base_url}{prefix}/health"),
              "two replicas answering", timeout_s)
        with SearchLoad(f"{base_url}{prefix}/mcp", QUERIES, version=version, concurrency=4) as load:
            load.wait_answers(8, timeout_s=120)
            victim = replica_pids(settings, app, deployment)[0]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced = _wait(lambda: _replaced(settings, app, deployment, victim), "a replacement replica", timeout_s,
                             raise_=False)
            recovery = time.monotonic() - killed if replaced else None
            load.wait_answers(8, after=time.monotonic(), timeout_s=60)
            answers = load.snapshot()
    finally:
        serve.delete(app)
    outcome = _search_outcome("Serve replica killed under search load (2 replicas)", answers, killed, 0,
                              {"replica killed": victim})
    outcome.recovery_s = round(recovery, 1) if recovery is not None else None
    return outcome


def _search_outcome(name: str, answers: list[Answer], fault_at: float, lost: int,
                    details: dict[str, Any]) -> Outcome:
    whole = _whole_again(answers, fault_at)
    failures = [a.error for a in answers if not a.ok]
    return Outcome(name, sent=len(answers), failed=len(failures), retried=sum(a.tries - 1 for a in answers),
                   lost=max(lost, 0), recovery_s=None if whole is None else round(whole - fault_at, 1),
                   details={**details, **({"first failure": failures[0]} if failures else {})})


def _whole_again(answers: list[Answer], since: float, run: int = 3) -> float | None:
    """When the service answered whole again after ``since``: the end of the
    first of the last ``run`` answers in a row that were ok and not degraded."""
    later = sorted((a for a in answers if a.ended >= since), key=lambda a: a.ended)
    streak: list[Answer] = []
    for answer in later:
        streak = streak + [answer] if answer.ok and not answer.degraded else []
    return streak[0].ended if len(streak) >= run else None


def _replaced(settings: Settings, app: str, deployment: str, victim: int) -> bool:
    pids = replica_pids(settings, app, deployment)
    return len(pids) == 2 and victim not in pids


# --- freshness under faults ---------------------------------------------------------


def redis_restarted(target: PushTarget, *, pages: int = 30, down_s: float = 3.0,
                    drain_timeout_s: float = 240.0) -> Outcome:
    """Stop Redis (SIGTERM: it writes its append-only file) in the middle of a
    webhook burst and start it again: the sources, cursors, tokens and queued
    events are all there after, refused deliveries are sent again, and every
    pushed page arrives."""
    settings = target.settings
    server = RedisServer(settings)
    kept: dict[str, Any] = {}

    def fault() -> None:
        kept["before"] = _redis_keepsakes(settings, target.source)
        stop_one(settings, server)
        time.sleep(down_s)
        start_one(settings, server)
        kept["after"] = _redis_keepsakes(settings, target.source)

    paths, results, fault_at = _burst_during(target, pages, fault)
    missing, recovery = target.drain(_accepted_pages(paths, results), fault_at, drain_timeout_s)
    outcome = _push_outcome("Redis restarted during a webhook burst (AOF on)", paths, results, missing, recovery)
    survived = kept["before"] == kept["after"]
    outcome.details.update({"sources, cursor, tokens survived": survived})
    if not survived:
        outcome.details.update({"before": kept["before"], "after": kept["after"]})
    return outcome


def neo4j_stopped(target: PushTarget, *, pages: int = 20, frozen_s: float = 10.0,
                  drain_timeout_s: float = 300.0) -> Outcome:
    """During a webhook burst, SIGSTOP Neo4j for ``frozen_s``, then SIGKILL it
    and start it again: deliveries are accepted throughout (they only touch
    Redis), the consumer's store breaker opens, nothing is acknowledged
    unwritten, and every page arrives once Neo4j is back."""
    settings = target.settings
    server = Neo4jServer(settings)
    seen: dict[str, Any] = {}

    def fault() -> None:
        signal_service(settings, server, signal.SIGSTOP)
        time.sleep(frozen_s)
        crash_service(settings, server)
        seen["restart_s"] = _timed(lambda: start_one(settings, server))

    with _BreakerWatch(settings) as breaker:
        paths, results, fault_at = _burst_during(target, pages, fault)
        missing, recovery = target.drain(_accepted_pages(paths, results), fault_at, drain_timeout_s)
    outcome = _push_outcome("Neo4j frozen, then killed, during a webhook burst", paths, results, missing, recovery)
    consumer = _consumer(settings)
    outcome.details.update({"consumer store breaker seen": sorted(breaker.seen),
                            "Neo4j restart s": round(seen["restart_s"], 1),
                            "dead-lettered": consumer.get("dead_lettered", 0)})
    return outcome


def neo4j_stopped_during_ingest(settings: Settings, env: dict[str, str], tree: Path, *, source: str = "chaos-ingest",
                                frozen_s: float = 10.0, timeout_s: float = 900.0) -> Outcome:
    """``wekadocs ingest`` of ``tree``; once its graph writes have begun,
    SIGSTOP Neo4j for ``frozen_s``, SIGKILL it and start it again. The job
    may fail (with a clear error) or finish; run again, as an operator would,
    it must leave one vector per section and no drift."""
    server = Neo4jServer(settings)
    command = [sys.executable, "-m", "cluster.cli", "ingest", str(tree), "--source", source, "--version", "1.0",
               "--json"]
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: job.poll() is not None or _documents(settings, source) > 0, "the ingest's first write", 300)
        fault_at = time.monotonic()
        signal_service(settings, server, signal.SIGSTOP)
        time.sleep(frozen_s)
        crash_service(settings, server)
        start_one(settings, server)
        _, first_err = job.communicate(timeout=timeout_s)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    first = "finished" if job.returncode == 0 else (first_err.strip().splitlines() or ["?"])[-1][:200]
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    recovered = time.monotonic() - fault_at
    if again.returncode != 0:
        return Outcome("Neo4j frozen, then killed, during an ingest", sent=1, failed=1,
                       details={"first run": first, "rerun": again.stderr.strip().splitlines()[-1:]})
    report = json.loads(again.stdout.splitlines()[-1])
    drift = subprocess.run([sys.executable, "-m", "cluster.cli", "reconcile", "--json"], env=env,
                           capture_output=True, text=True, timeout=timeout_s)
    parity = json.loads(drift.stdout.splitlines()[-1]) if drift.returncode == 0 else {}
    return Outcome("Neo4j frozen, then killed, during an ingest", sent=report["documents_seen"], failed=0,
                   lost=int(parity.get("missing", -1)), duplicated=int(parity.get("extra", -1)),
                   recovery_s=round(recovered, 1),
                   details={"first run": first, "rerun changed": report["documents_changed"],
                            "drift %": parity.get("drift_pct"), "stale": parity.get("stale")})


def _documents(settings: Settings, source: str) -> int:
    try:
        with GraphStore.connect(settings) as graph:
            return int(graph.read("MATCH (d:Document {source: $s}) RETURN count(d) AS n", s=source)[0]["n"])
    except Exception:  # noqa: BLE001 — not up yet: nothing written
        return 0


def freshness_actors_killed(target: PushTarget, *, pages: int = 40, drain_timeout_s: float = 240.0) -> Outcome:
    """Queue a burst, SIGKILL the consumer while it holds entries it has read
    but not acknowledged, and the supervisor: Ray restarts both, the new
    consumer claims the dead one's entries (after the reclaim idle time) and
    every page arrives."""
    settings = target.settings
    revision, paths = target.new_pages(pages, uuid.uuid4().hex[:6])
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    queue = ChangeQueue(client, capacity=settings.queue_capacity)
    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(target.sender.burst, target.pushes(revision, paths, uuid.uuid4().hex[:6]),
                              concurrency=4)
        consumer = actor_pid(settings, CONSUMER)
        pending_at_kill = _freeze_holding_entries(consumer, queue)
        killed = time.monotonic()
        os.kill(consumer, signal.SIGKILL)
        kill_actor(settings, SUPERVISOR)
        results = sending.result()
    _wait(lambda: _consumer(settings).get("loop") == "running", "the restarted consumer", 120)
    missing, recovery = target.drain(_accepted_pages(paths, results), killed, drain_timeout_s)
    status = freshness_status(settings)
    outcome = _push_outcome("consumer and supervisor actors killed", paths, results, missing, recovery)
    outcome.details.update({"pending at the kill": pending_at_kill,
                            "redelivered to the new consumer": status["consumer"].get("redelivered", 0),
                            "supervisor back": status["supervisor_running"]})
    client.close()
    return outcome


def _freeze_holding_entries(pid: int, queue: ChangeQueue, timeout_s: float = 120.0) -> int:
    """SIGSTOP the consumer at a moment it holds entries read but not
    acknowledged (frozen, it cannot acknowledge them after we looked): how many."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if queue.stats().pending:
            os.kill(pid, signal.SIGSTOP)
            if pending := queue.stats().pending:
                return pending
            os.kill(pid, signal.SIGCONT)  # it acknowledged in between: try again
        time.sleep(0.02)
    raise RuntimeError(f"the consumer never held a read entry within {timeout_s:.0f} s")


def _burst_during(target: PushTarget, pages: int, fault: Callable[[], None], *, lead_s: float = 1.0,
                  between_s: float = 0.2) -> tuple[list[str], list[PushResult], float]:
    """Push one delivery per new page while ``fault`` runs (it starts ``lead_s`` in)."""
    tag = uuid.uuid4().hex[:6]
    revision, paths = target.new_pages(pages, tag)
    with ThreadPoolExecutor(max_workers=1) as pool:
        sending = pool.submit(target.sender.burst, target.pushes(revision, paths, tag), concurrency=2,
                              between_s=between_s)
        time.sleep(lead_s)
        fault_at = time.monotonic()
        fault()
        results = sending.result()
    return paths, results, fault_at


def _accepted_pages(paths: list[str], results: list[PushResult]) -> list[str]:
    return [path for path, result in zip(paths, results) if result.accepted or result.duplicates]


def _push_outcome(name: str, paths: list[str], results: list[PushResult], missing: set[str],
                  recovery: float | None) -> Outcome:
    accepted = _accepted_pages(paths, results)
    failures = [r for r in results if not (r.accepted or r.duplicates)]
    details: dict[str, Any] = {"deliveries accepted": len(accepted)}
    if failures:
        details["first refusal"] = f"{failures[0].status} {failures[0].error}"
    return Outcome(name, sent=len(results), failed=len(failures), retried=sum(r.tries - 1 for r in results),
                   lost=len(missing), duplicated=sum(r.accepted for r in results) - len(accepted),
                   recovery_s=None if recovery is None else round(recovery, 1), details=details)


def _redis_keepsakes(settings: Settings, source: str) -> dict[str, Any]:
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    try:
        return {"sources": sorted(c.name for c in SourceRegistry(client).list()),
                "cursor": SourceState(client).cursor(source),
                "tokens": sorted(t.name for t in ApiTokenStore(client).list())}
    finally:
        client.close()


def _consumer(settings: Settings) -> dict[str, Any]:
    """The consumer's stats; empty while it is not answering (restarting)."""
    try:
        return freshness_status(settings)["consumer"]
    except Exception:  # noqa: BLE001 — a dead or restarting actor, a timeout: nothing to say yet
        return {}


class _BreakerWatch:
    """The consumer's store breaker states, sampled every half second from a
    thread while the block runs (a failure may surface only after the
    driver's own retries, well after the fault)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-breaker-watch", daemon=True)

    def __enter__(self) -> _BreakerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            if state := _consumer(self.settings).get("store_breaker"):
                self.seen.add(state)


def _timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(condition: Callable[[], bool], what: str, timeout_s: float, *, raise_: bool = True) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            if raise_:
                raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")
            return False
        time.sleep(0.5)
    return True


# --- a node lost during a Ray Data job -------------------------------------------------


def worker_killed_during_reembed(settings: Settings, env: dict[str, str], *, worker: str = "ray-worker-1",
                                 timeout_s: float = 900.0) -> Outcome:
    """``wekadocs reembed`` into a new collection (not switched) on a cluster
    with worker nodes; SIGKILL the worker's raylet while one of the job's
    embedding actors runs there: Ray Data runs the lost blocks again on the
    other nodes, and the new collection holds one vector per section."""
    victim = next(str(n["node_id"]) for n in list_nodes(settings) if n["name"] == worker)
    version = f"chaos-{uuid.uuid4().hex[:6]}"
    job = subprocess.Popen([sys.executable, "-m", "cluster.cli", "reembed", "--embedding-version", version,
                            "--no-switch", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        on_victim = _wait(lambda: job.poll() is None and _embedding_actor_on(settings, victim), "an embedding actor on "
                          f"{worker}", 300, raise_=False)
        if not on_victim:
            job.kill()
            raise RuntimeError(f"the job ended or never placed an embedding actor on {worker}: "
                               f"{job.communicate()[1][-2000:]}")
        killed = time.monotonic()
        os.kill(worker_raylet_pid(settings, worker), signal.SIGKILL)
        out, err = job.communicate(timeout=timeout_s)
        ended = time.monotonic()
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    if job.returncode != 0:
        return Outcome("worker node killed during a re-embed job", sent=1, failed=1,
                       details={"error": err.strip().splitlines()[-1:]})
    report = json.loads(out.splitlines()[-1])
    with vector_store_for(settings) as store:
        points = store.count(report["collection"])
    return Outcome("worker node killed during a re-embed job", sent=report["sections"], failed=0,
                   lost=max(report["sections"] - points, 0), duplicated=max(points - report["sections"], 0),
                   recovery_s=round(ended - killed, 1),
                   details={"nodes lost": report["nodes_lost"] == [victim], "verified": report["verified"],
                            "texts computed/reused": f"{report['embeddings_computed']}/{report['embeddings_reused']}",
                            "nodes that embedded": len(report["embedded_per_node"])})


def _embedding_actor_on(settings: Settings, node_id: str) -> bool:
    return any("EmbedBatch" in str(a.get("class_name")) and a.get("node_id") == node_id
               for a in alive_actors(settings))
