"""Freshness metrics, exported by Ray's metrics agent (prefixed ``ray_``).

Created inside the actors that own them, after ``ray.init``.
"""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge, Histogram

__all__ = ["SupervisorMetrics", "ConsumerMetrics", "BREAKER_VALUES", "HEARTBEAT_S", "heartbeat_gauge"]

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
HEARTBEAT_S = 15.0  # the longest a live loop goes without a heartbeat (pollers wake this often)
_SECONDS = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0]


def heartbeat_gauge() -> Gauge:
    """Unix time each loop last went round (0: stopped on purpose). A loop
    that died, or hangs in one call, stops beating while its actor still
    answers, which no other metric shows (``LoopStalled`` alerts on it)."""
    return Gauge("wekadocs_loop_heartbeat_timestamp_seconds",
                 "Unix time a freshness loop last went round; 0 once stopped.", tag_keys=("loop",))


class SupervisorMetrics:
    def __init__(self) -> None:
        self.heartbeat = heartbeat_gauge()
        self.queue_depth = Gauge("wekadocs_queue_depth", "Change events waiting or in flight.")
        self.queue_pending = Gauge("wekadocs_queue_pending", "Change events delivered, not yet acknowledged.")
        self.queue_lag = Gauge("wekadocs_queue_lag", "Change events never delivered to a consumer.")
        self.queue_oldest = Gauge("wekadocs_queue_oldest_pending_seconds",
                                  "Age of the oldest delivered, unacknowledged change event.")
        self.queue_fill = Gauge("wekadocs_queue_fill_ratio", "Queue depth over its capacity.")
        self.breaker = Gauge("wekadocs_source_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.",
                             tag_keys=("source",))
        self.polls = Counter("wekadocs_source_polls", "Poll rounds by outcome.", tag_keys=("source", "status"))
        self.events = Counter("wekadocs_source_events_queued", "Change events a poller queued.",
                              tag_keys=("source",))


class ConsumerMetrics:
    def __init__(self) -> None:
        self.heartbeat = heartbeat_gauge()
        self.applied = Counter("wekadocs_changes_applied", "Change events applied and acknowledged.",
                               tag_keys=("source",))
        self.retried = Counter("wekadocs_changes_retry_later",
                               "Change events left pending because a source or store failed.")
        self.step_seconds = Histogram("wekadocs_change_step_seconds", "One consumer micro-batch, read to ack.",
                                      boundaries=_SECONDS)
        self.event_age = Histogram("wekadocs_change_age_seconds",
                                   "Oldest event of a micro-batch: queued to applied (freshness lag).",
                                   boundaries=_SECONDS)
