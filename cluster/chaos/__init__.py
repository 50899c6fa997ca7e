"""Chaos scenarios: real faults injected into a live stack under real load.

Each scenario (``scenarios``) runs clients that behave as ours do in
production (``clients``: the official MCP client retrying a failed call, a
webhook sender honouring 503 and ``Retry-After``), injects one fault with
real signals (``faults``: SIGKILL an actor's process, SIGSTOP/SIGKILL a
store, stop and start Redis) and returns an ``Outcome``: requests sent and
failed, events lost and duplicated, seconds to recover. ``perf/chaos.py``
runs them all on a private stack and prints the table; the tests run the
fast ones on the test stack. Loops are bounded and everything stays on
loopback.
"""

from cluster.chaos.outcome import Outcome, format_table
from cluster.chaos.scenarios import (
    PushTarget,
    freshness_actors_killed,
    neo4j_stopped,
    neo4j_stopped_during_ingest,
    redis_restarted,
    serve_replica_killed,
    vector_owner_killed,
    worker_killed_during_reembed,
)

__all__ = ["Outcome", "PushTarget", "format_table", "freshness_actors_killed", "neo4j_stopped",
           "neo4j_stopped_during_ingest",
           "redis_restarted", "serve_replica_killed", "vector_owner_killed", "worker_killed_during_reembed"]
