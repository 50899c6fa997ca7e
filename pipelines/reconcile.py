"""Graph vs vectors: measure drift, and repair it.

For the current embedding version's collection, a section is

* **missing** when no point has its id,
* **stale** when its point was computed from other text (checksum differs) or
  the graph does not record the vector as confirmed,

and a point is **extra** when no section has its id (left behind by a crash
between a graph delete and a vector delete). Drift is
``(missing + stale + extra) / sections`` in percent. Repair deletes extra
points and re-embeds missing and stale sections through the normal pipeline
(content-addressed: text embedded before is reused, not recomputed).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.ingest import IngestReport, Ingestor, ensure_collection
from pipelines.metrics import IngestMetrics
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.settings import Settings
from wekadocs.vectors import VectorStore

__all__ = ["DriftReport", "reconcile"]

_CHUNK = 1000


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
    writer = GraphWriter(graph)
    collection = ensure_collection(settings, vectors)
    sections = writer.all_sections()
    points = dict(vectors.scroll_points(collection))
    missing = [sid for sid in sections if sid not in points]
    stale = [
        sid for sid, (checksum, version) in sections.items()
        if sid in points and (points[sid] != checksum or version != settings.embedding_version)
    ]
    extra = [pid for pid in points if pid not in sections]
    drift = 100.0 * (len(missing) + len(stale) + len(extra)) / max(len(sections), 1)
    report = DriftReport(collection, len(sections), len(points), len(missing), len(stale), len(extra),
                         round(drift, 3))
    if repair and (missing or stale or extra):
        for start in range(0, len(extra), _CHUNK):
            vectors.delete(collection, extra[start:start + _CHUNK])
        report.vectors_deleted = len(extra)
        unconfirm(graph, missing + stale)
        ingest = IngestReport(source="*", version="*")
        Ingestor(settings, graph, vectors, progress=False).embed_pending(ingest, IngestMetrics(), {"source": "*"})
        report.embeddings_computed = ingest.embeddings_computed
        report.vectors_upserted = ingest.vectors_upserted
        report.repaired = True
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def unconfirm(graph: GraphStore, section_ids: list[str]) -> None:
    """Forget that these sections have vectors, so the embed stage redoes them."""
    for start in range(0, len(section_ids), _CHUNK):
        graph.write(
            "UNWIND $ids AS sid MATCH (s:Section {id: sid}) REMOVE s.embedding_version",
            ids=section_ids[start:start + _CHUNK],
        )
