"""The one seam where Redis client errors become ``StoreError``, for every
store kept in Redis (the change queue, the source registry)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from wekadocs.errors import StoreError

__all__ = ["redis_errors"]


@contextmanager
def redis_errors(action: str) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise StoreError(f"{action}: Redis failed: {exc}") from exc
