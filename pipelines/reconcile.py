"""Graph vs vectors: measure drift, and repair it.

For the serving collection (the one the alias points at), a section is

* **missing** when no point has its id,
* **stale** when its point was computed from other text (checksum differs) or
  the graph does not record the vector as confirmed,

and a point is **extra** when no section has its id (left behind by a crash
between a graph delete and a vector delete). Drift is
``(missing + stale + extra) / sections`` in percent. Repair deletes extra
points and re-embeds missing and stale sections with the collection's own
model (content-addressed: text embedded before is reused, not recomputed).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.metrics import IngestMetrics
from pipelines.section_vectors import SectionVectors
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.settings import Settings
from wekadocs.vectors import VectorStore
from wekadocs.vectors.registry import ensure_serving

__all__ = ["DriftReport", "reconcile"]


@dataclass
class DriftReport:
    collection: str
    sections: int
    points: int
    missing: int
    stale: int
    extra: int
    drift_pct: float
    repaired: bool = False
    embeddings_computed: int = 0
    vectors_upserted: int = 0
    vectors_deleted: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(settings: Settings, graph: GraphStore, vectors: VectorStore, *, repair: bool) -> DriftReport:
    started = time.perf_counter()
    record = ensure_serving(settings, vectors).require_serving()
    section_vectors = SectionVectors(settings, GraphWriter(graph), vectors)
    drift = section_vectors.drift(record)
    report = DriftReport(record.name, drift.sections, drift.points, len(drift.missing), len(drift.stale),
                         len(drift.extra), drift.pct)
    if repair and not drift.parity:
        counts, deleted = section_vectors.repair(record, drift, IngestMetrics(), {"source": "*"})
        report.vectors_deleted = deleted
        report.embeddings_computed = counts.computed
        report.vectors_upserted = counts.upserted
        report.repaired = True
    report.seconds = round(time.perf_counter() - started, 3)
    return report
