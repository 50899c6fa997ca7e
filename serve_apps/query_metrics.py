"""Query-service metrics, exported by Ray's metrics agent (``ray_wekadocs_query_*``).

Made once per replica, after Ray is up. The engine reports its stage timings
in each answer's diagnostics; this shell turns them into histograms.
"""

from __future__ import annotations

from typing import Any

from ray.util.metrics import Counter, Histogram

__all__ = ["QueryMetrics"]

_MS_BUCKETS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]


class QueryMetrics:
    def __init__(self) -> None:
        self.latency = Histogram("wekadocs_query_tool_latency_ms", "Latency of one MCP tool call.",
                                 boundaries=_MS_BUCKETS, tag_keys=("tool", "outcome"))
        self.stages = Histogram("wekadocs_query_stage_ms", "Time in one retrieval stage.",
                                boundaries=_MS_BUCKETS, tag_keys=("stage",))
        self.rejections = Counter("wekadocs_query_cypher_rejections",
                                  "Cypher statements the validator refused.")
        self.degraded = Counter("wekadocs_query_degraded_answers",
                                "Answers given without the vector store.", tag_keys=("tool",))

    def record(self, tool: str, outcome: str, elapsed_ms: float, diagnostics: dict[str, Any] | None) -> None:
        self.latency.observe(elapsed_ms, tags={"tool": tool, "outcome": outcome})
        for stage, ms in ((diagnostics or {}).get("stages_ms") or {}).items():
            self.stages.observe(float(ms), tags={"stage": stage})
        if (diagnostics or {}).get("degraded"):
            self.degraded.inc(tags={"tool": tool})

    def rejected(self, count: int) -> None:
        if count > 0:
            self.rejections.inc(count)
