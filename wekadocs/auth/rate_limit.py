"""Per-client rate limits: a token bucket in Redis, checked by one Lua script.

Each (scope, client) pair has its own bucket, so a client over its rate is
refused at the cost of one round trip and never spends what others get: the
replicas' request slots go to the clients still within theirs. The script
reads Redis's own clock (``TIME``), refills, takes a token or says how long
until one is there, all atomically: replicas on different nodes share
buckets without racing or trusting their own clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis
import redis.asyncio

from wekadocs.errors import AuthUnavailable
from wekadocs.settings import RateLimit

__all__ = ["RateLimiter", "Decision"]

# KEYS[1] the bucket; ARGV rate (tokens/s), burst, cost.
# Returns {allowed 0|1, seconds until `cost` tokens are there (string), tokens left (string)}:
# Lua numbers become integers on the way out, so fractions travel as strings.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait), tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float  # 0 when allowed
    remaining: float


class RateLimiter:
    """Takes one token per request from the bucket of ``(scope, subject)``."""

    def __init__(self, client: redis.asyncio.Redis, limits: dict[str, RateLimit], *,
                 prefix: str = "wekadocs:ratelimit") -> None:
        self.limits = limits
        self.prefix = prefix
        self._script = client.register_script(_TOKEN_BUCKET)

    async def take(self, scope: str, subject: str, cost: int = 1) -> Decision:
        """Always allowed for a scope without a configured limit."""
        limit = self.limits.get(scope)
        if limit is None:
            return Decision(True, 0.0, math.inf)
        try:
            allowed, wait, left = await self._script(keys=[f"{self.prefix}:{scope}:{subject}"],
                                                     args=[limit.rate, limit.burst, cost])
        except redis.RedisError as exc:
            raise AuthUnavailable(f"rate limits cannot be checked: Redis failed: {exc}") from exc
        return Decision(bool(int(allowed)), float(wait), float(left))
