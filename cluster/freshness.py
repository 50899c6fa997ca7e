"""The freshness actors: a supervisor that polls every configured source, and
a consumer that drains the change queue into ingestion.

Both are named, detached Ray actors (restarted by Ray if they die) and thin
shells: the polling step is ``connectors.poller.SourcePoller``, the draining
step ``pipelines.change_consumer.ChangeConsumer``. Everything they must not
lose lives in Redis (queue, cursors, statuses), so a restarted actor carries
on where the dead one stopped. Their loops run in ``SupervisedThread``s: a
crash of a loop (not of the actor) restarts that loop, and the status shows it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import ray
import redis
from ray.actor import ActorHandle

from cluster.freshness_metrics import BREAKER_VALUES, HEARTBEAT_S, ConsumerMetrics, SupervisorMetrics
from cluster.supervised import SupervisedThread
from connectors.factory import open_connector
from connectors.poller import SourcePoller
from connectors.source_connector import SourceConnector
from pipelines.change_consumer import ChangeConsumer
from pipelines.ingest import Ingestor
from wekadocs.change_queue import ChangeQueue
from wekadocs.embedder import Embedder, ModelCache
from wekadocs.errors import WekadocsError
from wekadocs.graph_store import GraphStore
from wekadocs.secrets import SecretStore
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry
from wekadocs.source_state import SourceState
from wekadocs.vectors.registry import ensure_serving

__all__ = ["SourceSupervisor", "ChangeConsumerActor", "start_freshness", "stop_freshness", "SUPERVISOR",
           "CONSUMER", "freshness_status", "save_source_secrets"]

SUPERVISOR = "wekadocs-sources"
CONSUMER = "wekadocs-consumer"
SYNC_S = 2.0  # how often the supervisor re-reads the source registry
STORE_RETRY_S = 5.0  # the consumer's Neo4j driver gives up on a transaction after this
log = logging.getLogger(__name__)


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.effective_redis_url, decode_responses=True,
                                socket_timeout=30, socket_connect_timeout=5)


class _PollerThread:
    """One source's loop: poll when due or woken by a trigger, else sleep."""

    def __init__(self, poller: SourcePoller, metrics: SupervisorMetrics) -> None:
        self.poller = poller
        self.metrics = metrics
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.loop = SupervisedThread(f"poll-{poller.name}", self._run, self.stopping)

    def _run(self) -> None:
        woken = False
        beat = {"loop": f"poll-{self.poller.name}"}  # self.loop is not assigned yet when this starts
        while not self.stopping.is_set():
            self.metrics.heartbeat.set(time.time(), tags=beat)
            if woken or self.poller.due():
                try:
                    outcome = self.poller.poll()
                except WekadocsError as exc:  # Redis down: try again shortly
                    log.warning("polling %s: %s", self.poller.name, exc)
                    self.poller.next_due = self.poller.clock() + 5
                else:
                    tags = {"source": self.poller.name}
                    self.metrics.polls.inc(tags={**tags, "status": outcome.status})
                    if outcome.events:
                        self.metrics.events.inc(outcome.events, tags=tags)
                    self.metrics.breaker.set(BREAKER_VALUES[self.poller.breaker.state.value], tags=tags)
            # woken at least every HEARTBEAT_S, to beat, however long until the next poll
            woken = self.wake.wait(timeout=min(HEARTBEAT_S, max(0.05, self.poller.next_due - self.poller.clock())))
            self.wake.clear()
        self.metrics.heartbeat.set(0, tags=beat)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=4)
class SourceSupervisor:
    """One poller thread per configured source; a trigger thread turning
    webhook triggers into immediate polls; queue gauges refreshed as it goes."""

    def __init__(self, settings: Settings) -> None:
        client = _redis(settings)
        self.registry = SourceRegistry(client)
        self.queue = ChangeQueue(client, capacity=settings.queue_capacity)
        self.state = SourceState(client)
        self.mirrors = settings.data_dir / "mirrors" / "poll"
        self.secrets = SecretStore(settings.effective_secrets_dir)
        self.metrics = SupervisorMetrics()
        self.threads: dict[str, _PollerThread] = {}
        self.configs: dict[str, SourceConfig] = {}
        self.broken: dict[str, SourceConfig] = {}  # configurations that cannot be opened, until they change
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.watch = SupervisedThread("sources-watch", self._watch, self.stopping)

    def _watch(self) -> None:
        last_sync = 0.0
        beat = {"loop": "sources-watch"}
        while not self.stopping.is_set():
            self.metrics.heartbeat.set(time.time(), tags=beat)
            try:
                if time.monotonic() - last_sync >= SYNC_S:
                    self._sync()
                    self._export_queue()
                    last_sync = time.monotonic()
                name = self.state.next_trigger(timeout_s=0.5)
                if name is not None:
                    if name not in self.threads:
                        self._sync()
                    if name in self.threads:
                        self.threads[name].wake.set()
            except WekadocsError as exc:
                log.warning("source supervisor: %s", exc)
                self.stopping.wait(1)
        self.metrics.heartbeat.set(0, tags=beat)

    def _sync(self) -> None:
        """Pollers follow the registry: new sources start, removed ones stop,
        changed ones restart with their new configuration."""
        configs = {c.name: c for c in self.registry.list()}
        with self.lock:
            for name in list(self.threads):
                if configs.get(name) != self.configs.get(name):
                    self.threads.pop(name).stop()
                    self.configs.pop(name, None)
            for name, config in configs.items():
                if name in self.threads or self.broken.get(name) == config:
                    continue
                try:
                    connector = open_connector(config, mirrors=self.mirrors, secrets=self.secrets)
                except WekadocsError as exc:  # e.g. its token variable is not set: the others still run
                    self.broken[name] = config
                    self.state.record(name, {"last_status": "misconfigured", "last_error": str(exc)[:500],
                                             "last_poll": round(time.time(), 3)})
                    continue
                self.broken.pop(name, None)
                self.threads[name] = _PollerThread(SourcePoller(connector, self.queue, self.state), self.metrics)
                self.configs[name] = config

    def _export_queue(self) -> None:
        stats = self.queue.stats()
        self.metrics.queue_depth.set(stats.depth)
        self.metrics.queue_pending.set(stats.pending)
        self.metrics.queue_lag.set(stats.lag)
        self.metrics.queue_oldest.set(stats.oldest_pending_age_s)
        self.metrics.queue_fill.set(stats.fill)

    def status(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: {**t.poller.breaker.snapshot(), **t.loop.snapshot(), "alive": t.loop.thread.is_alive(),
                           "next_poll_in_s": round(max(0.0, t.poller.next_due - t.poller.clock()), 1)}
                    for name, t in self.threads.items()}

    def watch_status(self) -> dict[str, object]:
        """The registry watch and trigger loop (it starts and stops the pollers)."""
        return self.watch.snapshot()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            for thread in self.threads.values():
                thread.stop()


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=2)
class ChangeConsumerActor:
    """Drains the queue with a warm model and its own git mirrors.

    No CPU reserved: it idles on a blocking read most of the time, and
    reserving a core would take it from ingestion jobs on a small machine.
    """

    def __init__(self, settings: Settings, reclaim_idle_ms: int = 30_000) -> None:
        from cluster.vector_owner import vector_store_for

        client = _redis(settings)
        self.registry = SourceRegistry(client)
        self.mirrors = settings.data_dir / "mirrors" / f"read-{uuid.uuid4().hex[:8]}"
        self.secrets = SecretStore(settings.effective_secrets_dir)
        self.connectors: dict[str, tuple[SourceConfig, SourceConnector]] = {}
        vectors = vector_store_for(settings)
        encoders = ModelCache(lambda spec: Embedder(spec.name, dims=spec.dims, device="cpu", batch_size=32,
                                                    threads=1))
        encoders.get(ensure_serving(settings, vectors).require_serving().spec)  # warm before the first page
        # A short retry inside the driver: while Neo4j is down the store breaker
        # (pipelines.change_consumer) holds the entries back, and its state shows.
        graph = GraphStore.connect(settings, retry_s=STORE_RETRY_S)
        ingestor = Ingestor(settings, graph, vectors, progress=False, encoders=encoders)
        self.consumer = ChangeConsumer(ChangeQueue(client, capacity=settings.queue_capacity), self.registry, ingestor, self._connector,
                                       name=f"consumer-{uuid.uuid4().hex[:8]}", reclaim_idle_ms=reclaim_idle_ms,
                                       max_deliveries=settings.queue_max_deliveries)
        self.metrics = ConsumerMetrics()
        self.totals = {"steps": 0, "deliveries": 0, "redelivered": 0, "acknowledged": 0, "retry_later": 0,
                       "dropped": 0, "dead_lettered": 0, "pages": 0, "documents_changed": 0, "documents_deleted": 0}
        self.store_breaker = "closed"
        self.last_errors: list[str] = []
        self.stopping = threading.Event()
        self.loop = SupervisedThread("consume", self._run, self.stopping)

    def _connector(self, config: SourceConfig) -> SourceConnector:
        held = self.connectors.get(config.name)
        if held is None or held[0] != config:
            if held is not None:
                held[1].close()
            held = (config, open_connector(config, mirrors=self.mirrors, secrets=self.secrets))
            self.connectors[config.name] = held
        return held[1]

    def _run(self) -> None:
        beat = {"loop": "consume"}
        while not self.stopping.is_set():
            self.metrics.heartbeat.set(time.time(), tags=beat)
            started = time.perf_counter()
            try:
                report = self.consumer.step(block_ms=500)
            except WekadocsError as exc:  # Redis or a store is down: entries stay pending
                self.last_errors = [str(exc)]
                self.stopping.wait(1)
                continue
            self.store_breaker = report.store_breaker
            if report.store_breaker == "open":  # a store of ours is failing: the entries wait in Redis
                self.stopping.wait(1)
                continue
            if not report.deliveries:
                continue
            self.metrics.step_seconds.observe(time.perf_counter() - started)
            if report.acknowledged:
                self.metrics.event_age.observe(report.oldest_event_age_s)
            for ingested in report.reports:
                self.metrics.applied.inc(ingested.documents_seen, tags={"source": ingested.source})
                self.totals["documents_changed"] += ingested.documents_changed
                self.totals["documents_deleted"] += ingested.documents_deleted
            if report.retry_later:
                self.metrics.retried.inc(report.retry_later)
            for key in ("deliveries", "redelivered", "acknowledged", "retry_later", "dropped", "dead_lettered",
                        "pages"):
                self.totals[key] += getattr(report, key)
            self.totals["steps"] += 1
            if report.errors:
                self.last_errors = report.errors[-5:]
        self.metrics.heartbeat.set(0, tags=beat)

    def stats(self) -> dict[str, Any]:
        return {**self.totals, **self.loop.snapshot(), "name": self.consumer.name, "last_errors": self.last_errors,
                "store_breaker": self.store_breaker}

    def stop(self) -> None:
        self.stopping.set()


def _handle(settings: Settings, name: str) -> ActorHandle | None:
    try:
        return ray.get_actor(name, namespace=settings.ray_namespace)
    except ValueError:
        return None


def save_source_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Copy the variables the configured sources name (webhook secrets, API
    tokens, users) that are set in the deploying shell into the secrets folder,
    where the webhook replicas and the freshness actors look them up on each
    use (``wekadocs.secrets``). Ray processes do not share the shell's
    environment, and Ray's ``runtime_env`` is no place for a secret. The names
    written."""
    client = _redis(settings)
    try:
        configs = SourceRegistry(client).list()
    finally:
        client.close()
    names = [n for c in configs for n in (c.webhook_secret_env, c.token_env, c.user_env)]
    return SecretStore(settings.effective_secrets_dir).save_from(names, os.environ if environ is None else environ)


def start_freshness(settings: Settings, *, replace: bool = False,
                    reclaim_idle_ms: int = 30_000) -> dict[str, str]:
    """Start the supervisor and the consumer (Ray must be connected). Running
    ones are kept, unless ``replace``: a deploy replaces them so they run the
    deployed code with the current secrets (a replaced consumer's
    unacknowledged entries are claimed by its successor).

    No ``runtime_env``: the dashboard and the state API show every actor's
    to anyone holding the cluster token, so the sources' tokens and webhook
    secrets reach the actors only through the secrets folder
    (``save_source_secrets``)."""
    handles = []
    for name, actor, args in ((SUPERVISOR, SourceSupervisor, (settings,)),
                              (CONSUMER, ChangeConsumerActor, (settings, reclaim_idle_ms))):
        running = _handle(settings, name)
        if running is not None and replace:
            _stop(running)
            _await_gone(settings, [name])  # else get_if_exists below hands back the dying actor
        handles.append(actor.options(  # type: ignore[attr-defined]
            name=name, namespace=settings.ray_namespace, lifetime="detached", get_if_exists=True,
        ).remote(*args))
    ray.get([handles[0].status.remote(), handles[1].stats.remote()])  # both constructed and answering
    return {"supervisor": SUPERVISOR, "consumer": CONSUMER}


def stop_freshness(settings: Settings, *, wait_s: float = 30.0) -> list[str]:
    """Stop the actors and return once Ray reports them gone: ``ray.kill``
    only asks, and a consumer still blocked in its read for a moment would
    take entries that whoever runs next (a new consumer, an operator's
    replay) expects to find."""
    stopped = []
    for name in (SUPERVISOR, CONSUMER):
        handle = _handle(settings, name)
        if handle is not None:
            _stop(handle)
            stopped.append(name)
    _await_gone(settings, stopped, wait_s)
    return stopped


def _await_gone(settings: Settings, names: list[str], wait_s: float = 30.0) -> None:
    deadline = time.monotonic() + wait_s
    while any(_handle(settings, name) is not None for name in names) and time.monotonic() < deadline:
        time.sleep(0.2)


def _stop(handle: ActorHandle) -> None:
    try:
        ray.get(handle.stop.remote(), timeout=10)
    except (ray.exceptions.RayError, TimeoutError):
        pass  # killed below either way
    ray.kill(handle, no_restart=True)


def freshness_status(settings: Settings) -> dict[str, Any]:
    """What the live actors say; empty parts when they are not running."""
    supervisor, consumer = _handle(settings, SUPERVISOR), _handle(settings, CONSUMER)
    return {
        "supervisor_running": supervisor is not None,
        "pollers": ray.get(supervisor.status.remote(), timeout=10) if supervisor else {},
        "watch": ray.get(supervisor.watch_status.remote(), timeout=10) if supervisor else {},
        "consumer": ray.get(consumer.stats.remote(), timeout=10) if consumer else {},
    }
