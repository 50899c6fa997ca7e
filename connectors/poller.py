"""One source's polling step: circuit breaker, backoff with jitter, cursor.

``SourcePoller.poll`` does one round and says what happened; the supervisor
actor decides when to call it (``next_due``, or at once for a webhook's
trigger). Plain Python, so the same step runs in a test with a fake clock.

Order of checks, each one a reason to not call the source:

1. the change queue is back-pressured — pause (not a source failure);
2. the breaker is OPEN — wait for its timeout;
then the call: a ``RateLimited`` answer waits what the source asked (and
hands a half-open breaker's trial back, as does any error of our own), a
``SourceUnavailable`` one counts as a failure and backs off exponentially
(with jitter, so many pollers do not retry in step). Events are queued
before the cursor moves; a full queue stops the round without saving, and
the next round polls the same range again (repeated ids are dropped).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from connectors.circuit_breaker import CircuitBreaker
from connectors.source_connector import RateLimited, SourceConnector, SourceUnavailable
from wekadocs.change_queue import ChangeQueue, QueueFull
from wekadocs.errors import StoreError
from wekadocs.source_state import SourceState

__all__ = ["SourcePoller", "PollOutcome", "backoff_delay"]

PAUSE_S = 5.0  # how long a back-pressured poller waits before asking the queue again


@dataclass(frozen=True)
class PollOutcome:
    source: str
    status: str  # polled | paused | breaker_open | rate_limited | failed | queue_full
    events: int = 0  # queued this round
    duplicates: int = 0
    error: str = ""
    wait_s: float = 0.0  # until the next round


def backoff_delay(failures: int, *, base_s: float, cap_s: float, rng: Callable[[], float]) -> float:
    """Exponential in the failures in a row, capped; "equal jitter": half fixed,
    half random, so a retry is never immediate and never in lock-step."""
    ceiling = min(cap_s, base_s * 2 ** max(0, failures - 1))
    return ceiling / 2 + rng() * ceiling / 2


class SourcePoller:
    def __init__(self, connector: SourceConnector, queue: ChangeQueue, state: SourceState, *,
                 breaker: CircuitBreaker | None = None, backoff_base_s: float = 2.0, backoff_cap_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random) -> None:
        self.connector = connector
        self.name = connector.config.name
        self.queue = queue
        self.state = state
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.clock = clock
        self.rng = rng
        self.next_due = 0.0  # due at once
        self.polls = 0
        self.events_total = 0

    def due(self) -> bool:
        return self.clock() >= self.next_due

    def poll(self) -> PollOutcome:
        outcome = self._round()
        self.next_due = self.clock() + outcome.wait_s
        self.polls += 1
        self.events_total += outcome.events
        self._record(outcome)
        return outcome

    def _round(self) -> PollOutcome:
        if self.queue.backpressure():
            return PollOutcome(self.name, "paused", wait_s=PAUSE_S)
        if not self.breaker.allow():
            opened = self.breaker.opened_at or self.clock()
            wait = max(1.0, opened + self.breaker.reset_timeout_s - self.clock())
            return PollOutcome(self.name, "breaker_open", error=self.breaker.last_error, wait_s=wait)
        verdict = False  # every way out below says success or failure, or hands the trial back
        try:
            result = self.connector.poll(self.state.cursor(self.name))
        except RateLimited as exc:
            return PollOutcome(self.name, "rate_limited", error=str(exc), wait_s=max(1.0, exc.retry_after_s))
        except SourceUnavailable as exc:
            verdict = True
            self.breaker.record_failure(str(exc))
            wait = backoff_delay(self.breaker.failures or 1, base_s=self.backoff_base_s,
                                 cap_s=self.backoff_cap_s, rng=self.rng)
            return PollOutcome(self.name, "failed", error=str(exc), wait_s=wait)
        else:
            verdict = True
        finally:
            if not verdict:
                self.breaker.release()
        self.breaker.record_success()
        queued = duplicates = 0
        for event in result.events:
            try:
                queued_now = self.queue.enqueue(event).status == "accepted"
            except QueueFull as exc:
                # the cursor stays: the next round re-polls this range
                return PollOutcome(self.name, "queue_full", queued, duplicates, str(exc), PAUSE_S)
            queued += queued_now
            duplicates += not queued_now
        self.state.save_cursor(self.name, result.cursor)
        return PollOutcome(self.name, "polled", queued, duplicates, wait_s=self.connector.config.interval_s)

    def _record(self, outcome: PollOutcome) -> None:
        """The status `wekadocs sources status` shows, kept in Redis."""
        snapshot = self.breaker.snapshot()
        fields: dict[str, str | int | float] = {
            "last_poll": round(time.time(), 3), "last_status": outcome.status, "last_events": outcome.events,
            "last_error": outcome.error[:500], "breaker": str(snapshot["state"]),
            "failures": int(snapshot["failures"]),  # type: ignore[call-overload]
            "next_poll_in_s": round(outcome.wait_s, 1), "polls": self.polls, "events_total": self.events_total,
        }
        if outcome.status == "polled":
            fields["last_success"] = fields["last_poll"]
        try:
            self.state.record(self.name, fields)
        except StoreError:
            pass  # status is advisory; the poll itself already succeeded or failed on its own terms
