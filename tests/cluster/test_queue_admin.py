"""`wekadocs queue dead-letters [--replay]` against the real Redis, run as a user runs it."""

from __future__ import annotations

import json
import uuid

import redis

from wekadocs.change_event import ChangeEvent
from wekadocs.change_queue import ChangeQueue
from wekadocs.settings import Settings
from tests.cluster.test_cli import run, stack_env


def test_dead_letters_are_listed_and_replayed(settings: Settings, stack: object) -> None:
    env = stack_env(settings)
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    queue = ChangeQueue(client, capacity=settings.queue_capacity)  # the queue the service uses
    consumer = f"test-{uuid.uuid4().hex[:6]}"
    event = ChangeEvent(source="gone-source", path="never/readable.md", change="modified",
                        delivery_id=f"dl-{uuid.uuid4().hex[:8]}")
    try:
        queue.enqueue(event)
        read = queue.read(consumer, count=1)
        stream = queue.streams["normal"]
        assert len(read) == 1, (client.xinfo_groups(stream), client.xinfo_consumers(stream, queue.group),
                                client.xrevrange(stream, count=3))
        [delivery] = read
        assert queue.dead_letter([delivery], "SourceUnavailable: cannot be read") == 1
        client.xadd(queue.streams["normal"], {"event": "{not an event"})
        queue.read(consumer, count=10)  # the bad entry moves aside on reading

        listed = run("queue", "dead-letters", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        shown = json.loads(listed.stdout.strip().splitlines()[-1])
        mine = [d for d in shown["dead_letters"] if (d["event"] or {}).get("delivery_id") == event.delivery_id]
        assert len(mine) == 1 and mine[0]["deliveries"] == 1 and "cannot be read" in mine[0]["error"]
        assert any(d["event"] is None and d["raw"] == "{not an event" for d in shown["dead_letters"])
        text = run("queue", "dead-letters", env=env)
        assert "never/readable.md" in text.stdout and "(not an event)" in text.stdout

        replayed = run("queue", "dead-letters", "--replay", "--json", env=env)
        assert replayed.returncode == 0, replayed.stderr
        report = json.loads(replayed.stdout.strip().splitlines()[-1])
        assert report["replayed"] == 1 and report["remaining"] == 1  # the non-event stays, listed
        assert [letter.event for letter in queue.dead_letter_list()] == [None]
        [back] = queue.read(consumer, count=10)
        assert back.event == event and back.deliveries == 1
        queue.ack([back])
    finally:
        client.delete(queue.dead_letters)
        client.close()
