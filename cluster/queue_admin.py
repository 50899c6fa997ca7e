"""What `wekadocs queue dead-letters [--replay]` does: show the change events
the consumer gave up on (and entries that never were valid events), and put
the events back in the queue once their cause is fixed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from wekadocs.change_queue import ChangeQueue, DeadLetter
from wekadocs.settings import Settings

__all__ = ["DeadLetterReport", "dead_letters"]


@dataclass
class DeadLetterReport:
    letters: list[DeadLetter] = field(default_factory=list)  # as found, before any replay
    replayed: int = 0
    remaining: int = 0  # still in the dead-letter stream afterwards

    def as_dict(self) -> dict[str, Any]:
        return {"dead_letters": [letter.as_dict() for letter in self.letters], "replayed": self.replayed,
                "remaining": self.remaining}


def dead_letters(settings: Settings, *, replay: bool = False, limit: int = 1000) -> DeadLetterReport:
    """The oldest ``limit`` dead letters; with ``replay`` their events go back
    in their lanes (all or none, under the queue's capacity) and leave the
    dead-letter stream. Entries that are not valid events are only listed."""
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True,
                                  socket_timeout=10, socket_connect_timeout=5)
    try:
        queue = ChangeQueue(client, capacity=settings.queue_capacity)
        report = DeadLetterReport(queue.dead_letter_list(limit))
        if replay:
            report.replayed = queue.replay_dead_letters(report.letters)
        report.remaining = len(report.letters) - report.replayed
        return report
    finally:
        client.close()
