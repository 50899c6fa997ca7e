"""A circuit breaker per source: stop calling a source that keeps failing.

CLOSED (calls go through) → OPEN after ``failure_threshold`` failures in a row
(calls are refused) → HALF_OPEN once ``reset_timeout_s`` has passed (at most
``half_open_calls`` trial calls) → CLOSED on a trial's success, OPEN again on
its failure. A trial that ends with no verdict (the source asked to wait, or
our own store failed before the call) hands its slot back (``release``), and
a trial never answered within ``reset_timeout_s`` lapses, so a half-open
breaker can never refuse forever. Plain Python; the Ray actor that polls a
source holds one, so its state lives as long as the poller and is reported
from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    reset_timeout_s: float = 30.0
    half_open_calls: int = 1
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)  # injectable for tests
    failures: int = 0
    opened_at: float | None = None
    trials: int = 0
    trial_started_at: float | None = None
    last_error: str = ""

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.reset_timeout_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go out now (a half-open trial counts as one)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN:
            if self.trials and self.trial_started_at is not None \
                    and self.clock() - self.trial_started_at >= self.reset_timeout_s:
                self.trials = 0  # the trials lapsed unanswered (their caller died): start afresh
            if self.trials < self.half_open_calls:
                self.trials += 1
                self.trial_started_at = self.clock()
                return True
        return False

    def release(self) -> None:
        """A call ``allow`` let through ended with no verdict on the source
        (it asked to wait, or our side failed first): its trial slot is free again."""
        if self.trials:
            self.trials -= 1

    def record_success(self) -> None:
        self.failures, self.opened_at, self.trials, self.last_error = 0, None, 0, ""

    def record_failure(self, error: str = "") -> None:
        self.last_error = error
        if self.state is BreakerState.HALF_OPEN:  # the trial failed: open again, for a full timeout
            self.opened_at, self.trials = self.clock(), 0
            return
        self.failures += 1
        if self.failures >= self.failure_threshold:
            self.opened_at, self.trials = self.clock(), 0

    def snapshot(self) -> dict[str, object]:
        """What `sources status` and the metrics show."""
        return {"state": self.state.value, "failures": self.failures, "last_error": self.last_error}
