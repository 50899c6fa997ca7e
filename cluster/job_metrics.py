"""What the maintenance jobs found, exported for alerting (``ray_wekadocs_*``).

Reconcile and re-embed run as short jobs (the CLI, ``ray job submit``, a
RayCronJob), so their outcome is a gauge set once at the end, not a counter:
a counter born at 1 in a process that then exits never shows an increase to
Prometheus. The alert rules read these with ``last_over_time``, which keeps
the verdict after the job's process (and with it the series) is gone.
Made after ``ray.init``, like every ``ray.util.metrics`` object.
"""

from __future__ import annotations

import time

from ray.util.metrics import Gauge

__all__ = ["record_drift", "record_reembed"]


def record_drift(collection: str, drift_pct: float) -> None:
    """The serving collection's drift from the graph, as a ratio (0.005 is 0.5 %)."""
    Gauge("wekadocs_vector_drift_ratio", "Vectors missing, stale or extra over sections, at the last reconcile.",
          tag_keys=("collection",)).set(drift_pct / 100.0, tags={"collection": collection})


def record_reembed(embedding_version: str, *, failed: bool) -> None:
    """When a re-embed job of this embedding version last ended, by outcome.
    A time per outcome, not a 0/1 flag: a later success (on whichever node)
    is seen to supersede a failure by comparing the two."""
    Gauge("wekadocs_reembed_last_run_timestamp_seconds", "Unix time a re-embed job last ended, by outcome.",
          tag_keys=("embedding_version", "outcome")).set(
        time.time(), tags={"embedding_version": embedding_version, "outcome": "failed" if failed else "succeeded"})
