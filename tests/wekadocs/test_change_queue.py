"""The change queue against the real Redis the test stack starts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from pydantic import ValidationError

from wekadocs.change_event import ChangeEvent
from wekadocs.change_queue import ChangeQueue, QueueFull
from wekadocs.errors import StoreError
from wekadocs.settings import Settings


@pytest.fixture
def client(settings: Settings, stack: object) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def queue(client: redis.Redis) -> Iterator[ChangeQueue]:
    name = f"test:changes:{uuid.uuid4().hex[:8]}"  # each test its own streams
    yield ChangeQueue(client, name=name, capacity=10)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)


def event(path: str, *, priority: str = "normal", delivery: str | None = None, **extra: object) -> ChangeEvent:
    return ChangeEvent(source="docs", path=path, change="modified", revision="abc123", priority=priority,
                       delivery_id=delivery or uuid.uuid4().hex, **extra)


def test_an_event_goes_round_trip_and_is_gone_once_acknowledged(queue: ChangeQueue) -> None:
    sent = event("guide/a.md")
    assert queue.enqueue(sent).status == "accepted"
    [got] = queue.read("c1")
    assert got.event == sent and not got.redelivered
    assert queue.stats().pending == 1
    assert queue.ack([got]) == 1
    stats = queue.stats()
    assert (stats.depth, stats.pending, stats.lag) == (0, 0, 0)
    assert queue.read("c1") == []


def test_a_sources_entries_are_held_until_acknowledged(queue: ChangeQueue) -> None:
    other = ChangeEvent(source="other", path="c.md", change="modified", delivery_id=uuid.uuid4().hex)
    queue.enqueue_all([event("a.md"), event("b.md", priority="high"), other])
    assert (queue.held_for("docs"), queue.held_for("other"), queue.held_for("none")) == (2, 1, 0)
    read = queue.read("c1", count=10)
    assert queue.held_for("docs") == 2  # in flight is still held
    queue.ack([d for d in read if d.event.source == "docs"])
    assert (queue.held_for("docs"), queue.held_for("other")) == (0, 1)


def test_the_high_lane_is_read_first(queue: ChangeQueue) -> None:
    queue.enqueue(event("slow.md"))
    queue.enqueue(event("urgent.md", priority="high"))
    got = queue.read("c1", count=2)
    assert [d.event.path for d in got] == ["urgent.md", "slow.md"]


def test_a_repeated_delivery_is_added_once(queue: ChangeQueue) -> None:
    first = queue.enqueue(event("a.md", delivery="gh-1"))
    again = queue.enqueue(event("a.md", delivery="gh-1"))
    assert (first.status, again.status, again.entry_id) == ("accepted", "duplicate", "")
    assert queue.stats().depth == 1


def test_a_full_queue_refuses_and_loses_nothing(queue: ChangeQueue) -> None:
    sent = [event(f"p{i}.md") for i in range(10)]
    for i, e in enumerate(sent):
        queue.enqueue(e)
        assert queue.backpressure() == (i + 1 >= 8)  # at 80 % of 10
    with pytest.raises(QueueFull, match="10 of 10 entries"):
        queue.enqueue(event("one-too-many.md"))
    got = queue.read("c1", count=20)
    assert [d.event for d in got] == sent
    queue.ack(got)
    assert queue.enqueue(event("room-again.md")).status == "accepted"


def test_a_batch_is_queued_whole_or_not_at_all(queue: ChangeQueue) -> None:
    for i in range(7):
        queue.enqueue(event(f"p{i}.md"))
    with pytest.raises(QueueFull):  # 4 new events do not fit in the 3 places left
        queue.enqueue_all([event(f"b{i}.md", delivery=f"batch-{i}") for i in range(4)])
    assert queue.stats().depth == 7
    # nothing of the refused batch was marked as seen: sent again later, all of it goes in
    results = queue.enqueue_all([event("p0.md", delivery="batch-0"), event("p1.md", delivery="batch-1"),
                                 event("p1.md", delivery="batch-1")])
    assert [r.status for r in results] == ["accepted", "accepted", "duplicate"]
    assert queue.stats().depth == 9


def test_a_dead_consumers_events_are_redelivered_once(queue: ChangeQueue) -> None:
    queue.enqueue(event("held.md"))
    [taken] = queue.read("dies")  # and never acknowledges
    time.sleep(0.05)
    assert queue.reclaim("survivor", min_idle_ms=10_000) == []  # not idle long enough yet
    [again] = queue.reclaim("survivor", min_idle_ms=20)
    assert again.event == taken.event and again.redelivered
    time.sleep(0.02)  # a claim restarts the idle clock, which counts whole milliseconds
    assert queue.stats().oldest_pending_age_s > 0
    queue.ack([again])
    assert queue.reclaim("third", min_idle_ms=0) == []
    assert queue.stats().pending == 0


def test_bad_events_are_refused_clearly() -> None:
    with pytest.raises(ValidationError, match="change"):
        ChangeEvent(source="docs", path="a.md", change="exploded", delivery_id="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="old_path is required for a rename"):
        ChangeEvent(source="docs", path="b.md", change="renamed", delivery_id="y")
    renamed = ChangeEvent(source="docs", path="b.md", change="renamed", delivery_id="z", old_path="a.md")
    assert ChangeEvent.model_validate_json(renamed.model_dump_json()) == renamed


def test_a_bad_entry_moves_to_dead_letters_and_the_rest_flows(queue: ChangeQueue, client: redis.Redis) -> None:
    client.xadd(queue.streams["normal"], {"event": "{not json"})
    good = event("after.md")
    queue.enqueue(good)
    assert [d.event for d in queue.read("c1", count=5)] == [good]
    [(_, fields)] = client.xrange(queue.dead_letters)
    assert fields["event"] == "{not json" and "Invalid JSON" in fields["error"]
    assert queue.stats().depth == 1  # only the good one, in flight


def test_an_unreachable_redis_is_a_store_error() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, decode_responses=True)
    with pytest.raises(StoreError, match="Redis is unreachable"):
        ChangeQueue(dead, name="test:nowhere")
