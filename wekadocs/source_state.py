"""What the pollers keep in Redis: a cursor and a status per source, and the
trigger list webhooks use to ask for an immediate poll.

The cursor is written only after every event of a poll is queued, so a
poller restarted anywhere resumes from the last range it finished: it may poll
a range twice (the queue drops the repeated delivery ids), never skip one.
"""

from __future__ import annotations

import redis

from wekadocs.redis_errors import redis_errors

__all__ = ["SourceState"]


class SourceState:
    def __init__(self, client: redis.Redis, *, prefix: str = "wekadocs:source") -> None:
        self.client = client
        self.prefix = prefix
        self.triggers = f"{prefix}:triggers"

    def cursor(self, name: str) -> dict[str, str]:
        with redis_errors("reading a source cursor"):
            return dict(self.client.hgetall(self._key(name, "cursor")))

    def save_cursor(self, name: str, cursor: dict[str, str]) -> None:
        """Replace the cursor in one transaction (never half old, half new)."""
        key = self._key(name, "cursor")
        with redis_errors("saving a source cursor"):
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            if cursor:
                pipe.hset(key, mapping=cursor)
            pipe.execute()

    def record(self, name: str, fields: dict[str, str | int | float]) -> None:
        with redis_errors("saving a source status"):
            self.client.hset(self._key(name, "status"), mapping={k: str(v) for k, v in fields.items()})

    def status(self, name: str) -> dict[str, str]:
        with redis_errors("reading a source status"):
            return dict(self.client.hgetall(self._key(name, "status")))

    def forget(self, name: str) -> None:
        with redis_errors("forgetting a source"):
            self.client.delete(self._key(name, "cursor"), self._key(name, "status"))

    def trigger(self, name: str) -> None:
        """Ask the supervisor to poll ``name`` now (a push webhook arrived)."""
        with redis_errors("triggering a poll"):
            self.client.rpush(self.triggers, name)

    def next_trigger(self, timeout_s: float) -> str | None:
        """The next requested poll, waiting at most ``timeout_s``."""
        with redis_errors("waiting for poll triggers"):
            reply = self.client.blpop([self.triggers], timeout=timeout_s)
        return reply[1] if reply else None

    def _key(self, name: str, part: str) -> str:
        return f"{self.prefix}:{name}:{part}"
