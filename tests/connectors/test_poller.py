"""The polling step against real Redis and real git, on a controllable clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from connectors.circuit_breaker import BreakerState, CircuitBreaker
from connectors.git_connector import GitConnector
from connectors.github_api import GitHubConnector
from connectors.poller import SourcePoller, backoff_delay
from wekadocs.change_queue import ChangeQueue
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig
from wekadocs.source_state import SourceState
from tests.connectors.github_server import FakeGitHub
from tests.git_repo import Repo


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stores:
    client: redis.Redis
    prefix: str

    def queue(self, capacity: int = 100) -> ChangeQueue:
        return ChangeQueue(self.client, name=f"{self.prefix}:changes", capacity=capacity)

    def state(self) -> SourceState:
        return SourceState(self.client, prefix=f"{self.prefix}:source")


@pytest.fixture
def stores(settings: Settings, stack: object) -> Iterator[Stores]:
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    prefix = f"test:{uuid.uuid4().hex[:8]}"
    yield Stores(client, prefix)
    client.delete(*(client.keys(f"{prefix}:*") or ["-"]))
    client.close()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "work")
    for name in ("a", "b", "c", "d", "e"):
        repo.write(f"docs/{name}.md", f"# Page {name}\n\nText of page {name}.\n")
    repo.write("README.md", "# not in the docs folder\n")
    repo.commit("first")
    return repo


def poller(tmp_path: Path, url: str, stores: Stores, *, clock: Clock | None = None, queue: ChangeQueue | None = None,
           breaker: CircuitBreaker | None = None, mirrors: str = "mirrors") -> SourcePoller:
    config = SourceConfig(name="docs", kind="git", url=url, docs_path="docs", interval_s=60)
    clock = clock or Clock()
    return SourcePoller(GitConnector(config, tmp_path / mirrors), queue or stores.queue(), stores.state(),
                        breaker=breaker or CircuitBreaker(failure_threshold=3, reset_timeout_s=30, clock=clock),
                        clock=clock, rng=lambda: 0.5)


def drain(queue: ChangeQueue) -> list[tuple[str, str]]:
    deliveries = queue.read("t", count=100)
    queue.ack(deliveries)
    return sorted((d.event.change, d.event.path) for d in deliveries)


def test_first_poll_queues_every_page_then_only_what_changed(tmp_path: Path, repo: Repo, stores: Stores) -> None:
    p = poller(tmp_path, str(repo.root), stores)
    first = p.poll()
    assert (first.status, first.events, first.wait_s) == ("polled", 5, 60)
    assert drain(p.queue) == [("added", f"{n}.md") for n in "abcde"]
    assert p.poll().events == 0  # nothing new
    repo.write("docs/a.md", "# Page a\n\nEdited.\n")
    repo.remove("docs/b.md")
    head = repo.commit("edit")
    assert p.poll().events == 2
    assert drain(p.queue) == [("modified", "a.md"), ("removed", "b.md")]
    assert stores.state().cursor("docs") == {"revision": head}
    status = stores.state().status("docs")
    assert (status["last_status"], status["breaker"], status["events_total"]) == ("polled", "closed", "7")


def test_a_restarted_poller_resumes_from_the_saved_cursor(tmp_path: Path, repo: Repo, stores: Stores) -> None:
    poller(tmp_path, str(repo.root), stores).poll()
    drain(stores.queue())
    repo.write("docs/f.md", "# Page f\n\nNew.\n")
    repo.commit("add f")
    fresh = poller(tmp_path, str(repo.root), stores, mirrors="other-mirrors")  # a new process, a new mirror
    assert fresh.poll().events == 1
    assert drain(fresh.queue) == [("added", "f.md")]


def test_breaker_opens_after_failures_stops_calling_and_recovers(tmp_path: Path, stores: Stores) -> None:
    clock = Clock()
    missing = tmp_path / "not-yet"
    p = poller(tmp_path, str(missing), stores, clock=clock)
    waits = []
    for _ in range(3):
        outcome = p.poll()
        assert outcome.status == "failed" and "not-yet" in outcome.error
        waits.append(outcome.wait_s)
    assert waits == [1.5, 3.0, 6.0]  # exponential, half of it jitter (rng fixed at 0.5)
    assert p.breaker.state is BreakerState.OPEN
    assert stores.state().status("docs")["breaker"] == "open"

    # The source comes back, but the open breaker does not call it yet.
    repo = Repo(missing)
    repo.write("docs/a.md", "# A\n\nText.\n")
    repo.commit("first")
    refused = p.poll()
    assert (refused.status, refused.events) == ("breaker_open", 0)
    assert refused.wait_s == pytest.approx(30)

    clock.now += 30  # half-open: one trial call, which succeeds
    recovered = p.poll()
    assert (recovered.status, recovered.events) == ("polled", 1)
    assert p.breaker.state is BreakerState.CLOSED


def test_a_failed_half_open_trial_opens_the_breaker_again(tmp_path: Path, stores: Stores) -> None:
    clock = Clock()
    p = poller(tmp_path, str(tmp_path / "never"), stores, clock=clock)
    for _ in range(3):
        p.poll()
    clock.now += 30
    assert p.poll().status == "failed"  # the trial
    assert p.breaker.state is BreakerState.OPEN
    assert p.poll().status == "breaker_open"


def test_backpressure_pauses_the_poller_without_calling_the_source(tmp_path: Path, repo: Repo,
                                                                     stores: Stores) -> None:
    queue = stores.queue(capacity=5)
    first = poller(tmp_path, str(repo.root), stores, queue=queue)
    assert first.poll().events == 5  # 5 of 5: over the 80 % mark now
    repo.write("docs/f.md", "# F\n\nNew.\n")
    repo.commit("add f")
    paused = first.poll()
    assert (paused.status, paused.events) == ("paused", 0)
    assert queue.depth() == 5
    assert stores.state().cursor("docs")["revision"] != repo.git("rev-parse", "HEAD").strip()


def test_a_full_queue_keeps_the_cursor_and_nothing_is_lost_or_repeated(tmp_path: Path, repo: Repo,
                                                                         stores: Stores) -> None:
    queue = ChangeQueue(stores.client, name=f"{stores.prefix}:changes", capacity=3, backpressure_at=2.0)
    p = poller(tmp_path, str(repo.root), stores, queue=queue)
    full = p.poll()
    assert (full.status, full.events) == ("queue_full", 3)
    assert stores.state().cursor("docs") == {}  # not moved: the range is polled again
    seen = drain(queue)
    again = p.poll()
    assert (again.status, again.events, again.duplicates) == ("polled", 2, 3)
    assert sorted(seen + drain(queue)) == [("added", f"{n}.md") for n in "abcde"]


def test_backoff_is_capped_and_never_zero() -> None:
    assert backoff_delay(1, base_s=2, cap_s=300, rng=lambda: 0.0) == 1.0
    assert backoff_delay(20, base_s=2, cap_s=300, rng=lambda: 1.0) == 300
    assert backoff_delay(20, base_s=2, cap_s=300, rng=lambda: 0.0) == 150


def test_breaker_on_a_server_answering_500s_and_timeouts_then_recovering(stores: Stores) -> None:
    server = FakeGitHub("acme", "docs", token="t").start()
    server.push({"docs/a.md": "# A\n\nText.\n"}, "first")
    try:
        clock = Clock()
        config = SourceConfig(name="docs", kind="github", url="acme/docs", api_url=server.url, docs_path="docs")
        # A timeout loose enough for a loaded machine's answers; the hang below is far longer.
        p = SourcePoller(GitHubConnector(config, token="t", timeout_s=1.0), stores.queue(), stores.state(),
                         breaker=CircuitBreaker(failure_threshold=3, reset_timeout_s=30, clock=clock),
                         clock=clock, rng=lambda: 0.5)
        server.reply_next(500, {"message": "Server Error"}, times=2)
        assert [p.poll().status, p.poll().status] == ["failed", "failed"]
        server.delay_s = 3.0  # now it hangs past the client's timeout
        timed_out = p.poll()
        assert timed_out.status == "failed" and "tim" in timed_out.error.lower()
        assert p.breaker.state is BreakerState.OPEN
        server.delay_s = 0.0
        calls = len(server.requests)
        assert p.poll().status == "breaker_open"
        assert len(server.requests) == calls  # open: the server is not called at all
        clock.now += 30
        recovered = p.poll()
        assert (recovered.status, recovered.events) == ("polled", 1)
        assert p.breaker.state is BreakerState.CLOSED
    finally:
        server.stop()


def _open_github_poller(server: FakeGitHub, stores: Stores, clock: Clock) -> SourcePoller:
    config = SourceConfig(name="docs", kind="github", url="acme/docs", api_url=server.url, docs_path="docs")
    p = SourcePoller(GitHubConnector(config, token="t", timeout_s=5), stores.queue(), stores.state(),
                     breaker=CircuitBreaker(failure_threshold=1, reset_timeout_s=30, clock=clock),
                     clock=clock, rng=lambda: 0.5)
    server.reply_next(500, {"message": "Server Error"})
    assert p.poll().status == "failed" and p.breaker.state is BreakerState.OPEN
    clock.now += 30  # half-open: the next call is the trial
    return p


def test_a_rate_limited_half_open_trial_does_not_leave_the_breaker_refusing(stores: Stores) -> None:
    server = FakeGitHub("acme", "docs", token="t").start()
    server.push({"docs/a.md": "# A\n\nText.\n"}, "first")
    try:
        clock = Clock()
        p = _open_github_poller(server, stores, clock)
        server.reply_next(429, {"message": "secondary rate limit"}, {"Retry-After": "7"})
        limited = p.poll()
        assert (limited.status, limited.wait_s) == ("rate_limited", 7)
        clock.now += 7  # waited what the source asked: the trial is due again, and goes out
        calls = len(server.requests)
        recovered = p.poll()
        assert (recovered.status, recovered.events) == ("polled", 1), recovered
        assert len(server.requests) > calls and p.breaker.state is BreakerState.CLOSED
    finally:
        server.stop()


def test_a_store_error_during_a_half_open_trial_hands_the_trial_back(stores: Stores) -> None:
    from cluster.processes import free_port
    from wekadocs.errors import StoreError

    server = FakeGitHub("acme", "docs", token="t").start()
    server.push({"docs/a.md": "# A\n\nText.\n"}, "first")
    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=1, decode_responses=True)
    try:
        clock = Clock()
        p = _open_github_poller(server, stores, clock)
        state, p.state = p.state, SourceState(unreachable)  # Redis gone right after allow()
        with pytest.raises(StoreError):
            p.poll()
        p.state = state  # Redis is back
        recovered = p.poll()
        assert (recovered.status, recovered.events) == ("polled", 1), recovered
        assert p.breaker.state is BreakerState.CLOSED
    finally:
        unreachable.close()
        server.stop()
