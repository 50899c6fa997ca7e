"""The durable change queue: Redis Streams with a consumer group.

* **At-least-once.** Consumers read through a consumer group and acknowledge
  only after the stores are written; an entry a dead consumer held is claimed
  by another after ``min_idle_ms`` (``reclaim``). Ingestion is idempotent, so
  a re-delivered event changes nothing twice.
* **Nothing dropped silently.** ``enqueue``/``enqueue_all`` add atomically
  (one Lua script) only what fits under ``capacity`` as a whole; otherwise
  they raise :class:`QueueFull`, which the sender sees (a webhook answers 503).
  ``backpressure`` turns on at 80 % so pollers pause before that.
* **A priority lane.** Two streams; readers drain ``high`` before ``normal``.
* **Duplicates.** A delivery id seen within ``dedupe_ttl_s`` is not added again.
* **Poison entries.** An entry that is not a valid event moves to a
  dead-letter stream instead of blocking the consumers; so does an event the
  consumer gives up on (its page failed on each of N deliveries:
  ``dead_letter``). ``dead_letters`` lists them, ``replay_dead_letters``
  puts the events back in their lane.

Acknowledged entries are deleted, so a stream's length is exactly what is
waiting or in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis
from pydantic import ValidationError

from wekadocs.change_event import ChangeEvent, Priority
from wekadocs.errors import StoreError
from wekadocs.redis_errors import redis_errors

__all__ = ["ChangeQueue", "QueueFull", "Delivery", "QueueStats", "EnqueueResult", "DeadLetter"]

PRIORITIES: tuple[Priority, ...] = ("high", "normal")

# All of one batch or none of it. KEYS: high stream, normal stream, then per
# event its dedupe key and its target stream. ARGV: capacity, dedupe ttl s,
# then per event its JSON. Reply: {'full', depth} or {'ok', id or '' per event}.
_ENQUEUE = """
local depth = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2])
local count = #ARGV - 2
local fresh = 0
for i = 1, count do
  if redis.call('EXISTS', KEYS[1 + 2 * i]) == 0 then fresh = fresh + 1 end
end
if fresh > 0 and depth + fresh > tonumber(ARGV[1]) then return {'full', tostring(depth)} end
local reply = {'ok'}
for i = 1, count do
  if redis.call('SET', KEYS[1 + 2 * i], '1', 'NX', 'EX', tonumber(ARGV[2])) then
    reply[i + 1] = redis.call('XADD', KEYS[2 + 2 * i], '*', 'event', ARGV[2 + i])
  else
    reply[i + 1] = ''
  end
end
return reply
"""


class QueueFull(StoreError):
    """The queue is at capacity; the event was not added and must be sent again later."""

    def __init__(self, depth: int, capacity: int) -> None:
        self.depth = depth
        self.capacity = capacity
        super().__init__(f"change queue is full ({depth} of {capacity} entries); retry later")


@dataclass(frozen=True)
class EnqueueResult:
    status: Literal["accepted", "duplicate"]
    entry_id: str  # "" for a duplicate


@dataclass(frozen=True)
class Delivery:
    stream: str
    entry_id: str
    event: ChangeEvent
    redelivered: bool = False  # taken over from a consumer that did not acknowledge it
    deliveries: int = 1  # times Redis handed this entry out, this one included


@dataclass(frozen=True)
class DeadLetter:
    """An entry moved aside: what it held, where from, and why."""

    entry_id: str  # in the dead-letter stream
    origin: str  # "<stream> <entry id>" it came from
    error: str
    deliveries: int  # 0 when it never was a valid event
    event: ChangeEvent | None  # None when the entry is not a valid event (it cannot be replayed)
    raw: str  # the entry's event field as stored

    def as_dict(self) -> dict[str, object]:
        return {"id": self.entry_id, "from": self.origin, "error": self.error, "deliveries": self.deliveries,
                "event": self.event.model_dump() if self.event else None,
                "raw": None if self.event else self.raw[:2000]}


@dataclass(frozen=True)
class QueueStats:
    depth: int  # waiting + in flight
    pending: int  # delivered, not yet acknowledged
    oldest_pending_age_s: float
    lag: int  # never delivered
    capacity: int

    @property
    def fill(self) -> float:
        return self.depth / self.capacity if self.capacity else 0.0


class ChangeQueue:
    """Args:
        client: a Redis client (``decode_responses=True``).
        name: key prefix of the streams.
        group: the consumer group every consumer joins.
        capacity: most entries held (waiting + in flight).
    """

    def __init__(self, client: redis.Redis, *, name: str = "wekadocs:changes", group: str = "ingest",
                 capacity: int = 10_000, backpressure_at: float = 0.8, dedupe_ttl_s: int = 86_400) -> None:
        self.client = client
        self.name = name
        self.group = group
        self.capacity = capacity
        self.backpressure_at = backpressure_at
        self.dedupe_ttl_s = dedupe_ttl_s
        self.streams = {p: f"{name}:{p}" for p in PRIORITIES}
        self.dead_letters = f"{name}:dead"
        self._enqueue = client.register_script(_ENQUEUE)
        self._ensure_group()

    def enqueue(self, event: ChangeEvent) -> EnqueueResult:
        return self.enqueue_all([event])[0]

    def enqueue_all(self, events: list[ChangeEvent]) -> list[EnqueueResult]:
        """Add a batch (one webhook delivery's pages) atomically: every new
        event or, when they do not all fit, none (``QueueFull``) — a sender
        that retries after a refusal never finds half its delivery queued."""
        if not events:
            return []
        keys = [self.streams["high"], self.streams["normal"]]
        for event in events:
            keys += [f"{self.name}:seen:{event.delivery_id}", self.streams[event.priority]]
        args: list[str | int] = [self.capacity, self.dedupe_ttl_s, *(e.model_dump_json() for e in events)]
        with redis_errors("adding change events"):
            status, *detail = self._enqueue(keys=keys, args=args)
        if status == "full":
            raise QueueFull(int(detail[0]), self.capacity)
        return [EnqueueResult("accepted", entry) if entry else EnqueueResult("duplicate", "") for entry in detail]

    def backpressure(self) -> bool:
        """True from ``backpressure_at`` of capacity: producers should pause.
        Asked on every webhook, so it reads the depth only."""
        return self.depth() >= self.backpressure_at * self.capacity

    def depth(self) -> int:
        """Entries waiting or in flight, both lanes."""
        with redis_errors("reading the queue depth"):
            return sum(int(self.client.xlen(stream)) for stream in self.streams.values())

    def read(self, consumer: str, count: int = 10, block_ms: int | None = None) -> list[Delivery]:
        """New entries for ``consumer``, the high lane first."""
        deliveries: list[Delivery] = []
        for priority in PRIORITIES:
            wanted = count - len(deliveries)
            if wanted <= 0:
                break
            with redis_errors("reading change events"):
                reply = self.client.xreadgroup(self.group, consumer, {self.streams[priority]: ">"}, count=wanted)
            deliveries += self._parse(reply)
        if not deliveries and block_ms:
            with redis_errors("waiting for change events"):
                reply = self.client.xreadgroup(self.group, consumer, {s: ">" for s in self.streams.values()},
                                               count=count, block=block_ms)
            deliveries = self._parse(reply)
        return deliveries

    def reclaim(self, consumer: str, min_idle_ms: int, count: int = 10) -> list[Delivery]:
        """Entries another consumer took and held longer than ``min_idle_ms``
        (it died or hung): they move to ``consumer``."""
        deliveries: list[Delivery] = []
        for priority in PRIORITIES:
            stream = self.streams[priority]
            with redis_errors("reclaiming change events"):
                _, claimed, _ = self.client.xautoclaim(stream, self.group, consumer, min_idle_ms, "0-0", count=count)
            claimed = [(entry_id, fields) for entry_id, fields in claimed if fields]
            counts = self._delivery_counts(stream, consumer, [entry_id for entry_id, _ in claimed])
            found = [self._delivery(stream, entry_id, fields, redelivered=True, deliveries=counts.get(entry_id, 2))
                     for entry_id, fields in claimed]
            deliveries += [d for d in found if d is not None]
        return deliveries

    def _delivery_counts(self, stream: str, consumer: str, entry_ids: list[str]) -> dict[str, int]:
        """How often each claimed entry was handed out: one read of the
        pending list over the claimed range (XAUTOCLAIM itself does not say)."""
        if not entry_ids:
            return {}
        ordered = sorted(entry_ids, key=lambda e: tuple(int(part) for part in e.split("-")))
        with redis_errors("reading delivery counts"):
            rows = self.client.xpending_range(stream, self.group, ordered[0], ordered[-1], len(entry_ids) + 100,
                                              consumername=consumer)
        return {str(row["message_id"]): int(row["times_delivered"]) for row in rows}

    def dead_letter(self, deliveries: list[Delivery], error: str) -> int:
        """Give up on these entries: each moves to the dead-letter stream with
        the error and its delivery count, acknowledged and deleted from its lane
        in the same MULTI/EXEC (never in both places, never in neither)."""
        if not deliveries:
            return 0
        with redis_errors("moving change events to the dead-letter stream"):
            with self.client.pipeline(transaction=True) as batch:
                for d in deliveries:
                    batch.xadd(self.dead_letters, {"event": d.event.model_dump_json(), "from": f"{d.stream} {d.entry_id}",
                                                   "error": error[:2000], "deliveries": str(d.deliveries)})
                    batch.xack(d.stream, self.group, d.entry_id)
                    batch.xdel(d.stream, d.entry_id)
                replies = batch.execute()
        return sum(int(acked) for acked in replies[1::3])

    def dead_letter_list(self, count: int = 1000) -> list[DeadLetter]:
        """The oldest ``count`` dead letters, oldest first."""
        with redis_errors("reading the dead-letter stream"):
            entries = self.client.xrange(self.dead_letters, count=count)
        letters = []
        for entry_id, fields in entries:
            raw = fields.get("event", "")
            try:
                event: ChangeEvent | None = ChangeEvent.model_validate_json(raw)
            except ValidationError:
                event = None
            letters.append(DeadLetter(entry_id, fields.get("from", ""), fields.get("error", ""),
                                      int(fields.get("deliveries") or 0), event, raw))
        return letters

    def replay_dead_letters(self, letters: list[DeadLetter]) -> int:
        """Put these dead letters' events back in their lanes as new entries
        (delivery count from one again; the dedupe key is bypassed, since the
        event was seen) and remove them from the dead-letter stream, in one
        MULTI/EXEC. Entries that are not valid events stay. Refused whole
        with ``QueueFull`` when they do not fit under the capacity."""
        events = [(letter.entry_id, letter.event) for letter in letters if letter.event is not None]
        if not events:
            return 0
        depth = self.depth()
        if depth + len(events) > self.capacity:
            raise QueueFull(depth, self.capacity)
        with redis_errors("replaying dead letters"):
            with self.client.pipeline(transaction=True) as batch:
                for entry_id, event in events:
                    batch.xadd(self.streams[event.priority], {"event": event.model_dump_json()})
                    batch.xdel(self.dead_letters, entry_id)
                replies = batch.execute()
        return sum(int(removed) for removed in replies[1::2])

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge (after the stores are written) and delete the entries,
        in one MULTI/EXEC: an ack whose delete never ran (the consumer killed
        between the two, a dropped connection) left an entry that no consumer
        would ever see again and that the depth counted forever."""
        if not deliveries:
            return 0
        with redis_errors("acknowledging change events"):
            with self.client.pipeline(transaction=True) as batch:
                for delivery in deliveries:
                    batch.xack(delivery.stream, self.group, delivery.entry_id)
                    batch.xdel(delivery.stream, delivery.entry_id)
                replies = batch.execute()
        return sum(int(acked) for acked in replies[::2])

    def stats(self) -> QueueStats:
        pending = lag = 0
        oldest_ms = 0
        with redis_errors("reading queue statistics"):
            for stream in self.streams.values():
                summary = self.client.xpending(stream, self.group)
                pending += int(summary["pending"])
                if summary["pending"]:
                    first = self.client.xpending_range(stream, self.group, "-", "+", 1)
                    oldest_ms = max(oldest_ms, int(first[0]["time_since_delivered"]))
                for group in self.client.xinfo_groups(stream):
                    lag += int(group.get("lag") or 0)
        return QueueStats(self.depth(), pending, oldest_ms / 1000, lag, self.capacity)

    def held_for(self, source: str) -> int:
        """Entries of one source still in the lanes, waiting or in flight
        (acknowledged entries are deleted): 0 once its changes are all applied."""
        with redis_errors("counting a source's entries"):
            entries = [fields for stream in self.streams.values() for _, fields in self.client.xrange(stream)]
        return sum(1 for fields in entries if _source_of(fields) == source)

    def _ensure_group(self) -> None:
        for stream in self.streams.values():
            try:
                self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise StoreError(f"creating consumer group {self.group} on {stream}: {exc}") from exc
            except redis.RedisError as exc:
                raise StoreError(f"Redis is unreachable: {exc}") from exc

    def _parse(self, reply: list[tuple[str, list[tuple[str, dict[str, str]]]]] | None) -> list[Delivery]:
        deliveries = [self._delivery(stream, entry_id, fields) for stream, entries in (reply or [])
                      for entry_id, fields in entries]
        return [d for d in deliveries if d is not None]

    def _delivery(self, stream: str, entry_id: str, fields: dict[str, str], *,
                  redelivered: bool = False, deliveries: int = 1) -> Delivery | None:
        """The entry as an event; one that is not a valid event is moved to the
        dead-letter stream (kept for a person to look at, never retried)."""
        try:
            event = ChangeEvent.model_validate_json(fields["event"])
        except (KeyError, ValidationError) as exc:
            with redis_errors("moving a bad entry aside"):
                self.client.xadd(self.dead_letters, {**fields, "from": f"{stream} {entry_id}",
                                                     "error": str(exc)[:2000]})
                self.client.xack(stream, self.group, entry_id)
                self.client.xdel(stream, entry_id)
            return None
        return Delivery(stream, entry_id, event, redelivered, deliveries)


def _source_of(fields: dict[str, str]) -> str | None:
    try:
        return ChangeEvent.model_validate_json(fields["event"]).source
    except (KeyError, ValidationError):
        return None  # not an event: the next read moves it aside
