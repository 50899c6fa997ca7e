"""The breaker's state machine, on a clock the test moves."""

from __future__ import annotations

from connectors.circuit_breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_repeated_failures_then_recovers_through_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure("HTTP 500")
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure("HTTP 500")
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial call only
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.snapshot()["failures"] == 0


def test_a_failed_trial_opens_it_again_for_a_full_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.record_failure("timeout")
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure("timeout again")
    assert breaker.state is BreakerState.OPEN
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    assert breaker.snapshot() == {"state": "half_open", "failures": 1, "last_error": "timeout again"}


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
