"""Drains the change queue in micro-batches into ingestion.

One ``step``: take over entries a dead consumer left pending, read new ones
(high lane first), group them by source, collapse each page's events to
"read it now", apply the pages in one ingestion call per source, and
acknowledge only then. Events are hints, not payloads: the page is read as
the source holds it now, so an old or re-delivered event can never roll a
page back, and applying it twice changes nothing the second time.

A source that cannot be read, or a store that fails, leaves its entries
unacknowledged: they stay pending and are claimed again after
``reclaim_idle_ms`` — a retry with a delay, and nothing lost. A store of ours
that fails opens the consumer's store breaker: while it is open, steps read
nothing (entries wait in the queue, and no delivery count climbs), then one
trial step goes through (``connectors.circuit_breaker``). When a batch
fails, its events are applied one by one, so a page that can never be read
holds back only itself; once such an event has been delivered
``max_deliveries`` times it moves to the dead-letter stream
(``wekadocs queue dead-letters``). An entry for a source that no longer
exists is acknowledged and dropped (its pages went with the source).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.circuit_breaker import BreakerState, CircuitBreaker
from connectors.source_connector import RateLimited, SourceConnector, SourceUnavailable, read_pages
from pipelines.ingest import IngestReport, Ingestor, PageChange
from wekadocs.change_event import ChangeEvent
from wekadocs.change_queue import ChangeQueue, Delivery
from wekadocs.errors import StoreError
from wekadocs.source_registry import SourceConfig, SourceError, SourceRegistry

__all__ = ["ChangeConsumer", "StepReport", "pages_to_read"]


@dataclass
class StepReport:
    deliveries: int = 0
    redelivered: int = 0
    acknowledged: int = 0
    retry_later: int = 0  # left pending: the source or a store failed
    dropped: int = 0  # for sources that no longer exist
    dead_lettered: int = 0  # failed on their own on their last allowed delivery
    pages: int = 0
    store_breaker: str = BreakerState.CLOSED.value  # open: nothing was read, a store of ours is failing
    reports: list[IngestReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    oldest_event_age_s: float = 0.0  # created -> applied, for the freshness metric


def pages_to_read(events: list[ChangeEvent]) -> dict[str, str]:
    """page path -> the newest revision any event named for it. A rename is
    a read of both paths: the old one is gone now, the new one holds the page."""
    newest: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e.created_at):
        newest[event.path] = event.revision
        if event.old_path is not None:
            newest.setdefault(event.old_path, event.revision)
    return newest


class ChangeConsumer:
    """Args:
        name: this consumer's name in the group (unique per live consumer).
        connector_for: the connector of a source, kept by the caller.
        store_breaker: opened by a failing graph or vector store (default: at
            the first failure, for 5 s before a trial step).
    """

    def __init__(self, queue: ChangeQueue, registry: SourceRegistry, ingestor: Ingestor,
                 connector_for: Callable[[SourceConfig], SourceConnector], *, name: str,
                 batch: int = 64, reclaim_idle_ms: int = 30_000, max_deliveries: int = 5,
                 store_breaker: CircuitBreaker | None = None) -> None:
        self.queue = queue
        self.registry = registry
        self.ingestor = ingestor
        self.connector_for = connector_for
        self.name = name
        self.batch = batch
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_deliveries = max_deliveries
        self.store_breaker = store_breaker or CircuitBreaker(failure_threshold=1, reset_timeout_s=5.0)

    def step(self, block_ms: int | None = 1000) -> StepReport:
        if not self.store_breaker.allow():
            # Reading now would only fail: the entries wait, their delivery counts untouched.
            return StepReport(store_breaker=self.store_breaker.state.value)
        report = self._step(block_ms)
        if (report.reports or report.dropped) and self.store_breaker.state is not BreakerState.OPEN:
            self.store_breaker.record_success()
        elif self.store_breaker.state is BreakerState.HALF_OPEN:
            self.store_breaker.release()  # the trial wrote nothing: no verdict on the stores
        report.store_breaker = self.store_breaker.state.value
        return report

    def _step(self, block_ms: int | None) -> StepReport:
        deliveries = self.queue.reclaim(self.name, self.reclaim_idle_ms, count=self.batch)
        if len(deliveries) < self.batch:
            deliveries += self.queue.read(self.name, self.batch - len(deliveries),
                                          block_ms=None if deliveries else block_ms)
        report = StepReport(deliveries=len(deliveries), redelivered=sum(d.redelivered for d in deliveries))
        by_source: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in deliveries:
            by_source[delivery.event.source].append(delivery)
        for source, group in sorted(by_source.items()):
            self._apply(source, group, report)
        return report

    def _apply(self, source: str, group: list[Delivery], report: StepReport) -> None:
        try:
            config = self.registry.get(source)
        except SourceError:
            report.dropped += self.queue.ack(group)
            return
        failure = self._ingest(config, group, report)
        if failure is None:
            return
        report.errors.append(f"{source}: {failure}")
        if isinstance(failure, StoreError):
            self.store_breaker.record_failure(str(failure))
        if isinstance(failure, (StoreError, RateLimited)) or len(group) == 1:
            self._retry_or_give_up(group, failure, report)
            return
        # One page may be what fails the batch: each event alone, so the others are applied now.
        failures: list[tuple[Delivery, Exception]] = []
        for n, delivery in enumerate(group):
            alone = self._ingest(config, [delivery], report)
            if alone is None:
                continue
            report.errors.append(f"{source} {delivery.event.path!r}: {alone}")
            failures.append((delivery, alone))
            if isinstance(alone, StoreError):  # our side is down: the rest would fail the same way
                self.store_breaker.record_failure(str(alone))
                failures += [(rest, alone) for rest in group[n + 1:]]
                break
        # Every page unreadable is the source being down, not each page being poison.
        source_down = len(failures) == len(group) and all(isinstance(e, SourceUnavailable) for _, e in failures)
        for delivery, error in failures:
            self._retry_or_give_up([delivery], error, report, transient=source_down)

    def _ingest(self, config: SourceConfig, group: list[Delivery], report: StepReport) -> Exception | None:
        """Read and apply these events' pages, acknowledge them; the error
        instead when they could not be applied (nothing acknowledged)."""
        try:
            wanted = pages_to_read([d.event for d in group])
            contents = read_pages(self.connector_for(config), wanted)
            pages = [PageChange(path, contents[path], _uri(config, path)) for path in sorted(wanted)]
            ingested = self.ingestor.apply_pages(pages, source=config.name, version=config.effective_version)
        except Exception as exc:  # noqa: BLE001 — ours, the source's, or a page no parser can take
            return exc
        report.pages += len(pages)
        report.reports.append(ingested)
        report.acknowledged += self.queue.ack(group)
        now = time.time()
        report.oldest_event_age_s = max(report.oldest_event_age_s,
                                        max(now - d.event.created_at for d in group))
        return None

    def _retry_or_give_up(self, group: list[Delivery], error: Exception, report: StepReport, *,
                          transient: bool = False) -> None:
        """Failed events stay pending for a retry, until one has been delivered
        ``max_deliveries`` times: then it moves to the dead-letter stream. A
        store of ours being down, a source asking to wait or a source that
        answers for none of the pages is no fault of the event, so those
        never count against it."""
        transient = transient or isinstance(error, (StoreError, RateLimited))
        spent = [] if transient else [d for d in group if d.deliveries >= self.max_deliveries]
        if spent:
            report.dead_lettered += self.queue.dead_letter(spent, f"{type(error).__name__}: {error}")
        report.retry_later += len(group) - len(spent)


def _uri(config: SourceConfig, path: str) -> str:
    """Where a reader finds the page: the source's URL and the page path."""
    base = config.url.rstrip("/")
    folder = config.docs_path.strip("/")
    return f"{base}/{folder}/{path}" if folder else f"{base}/{path}"
