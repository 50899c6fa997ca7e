"""Ingestion metrics, exported by Ray's metrics agent to Prometheus.

``ray.util.metrics`` objects must be created after ``ray.init``; one
``IngestMetrics`` is made per job run.
"""

from __future__ import annotations

from ray.util.metrics import Counter, Histogram

__all__ = ["IngestMetrics"]

_LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]


class IngestMetrics:
    def __init__(self) -> None:
        keys = ("source",)
        self.documents = Counter("wekadocs_ingest_documents", "Documents written or deleted.",
                                 tag_keys=(*keys, "outcome"))
        self.sections = Counter("wekadocs_ingest_sections", "Sections written or deleted.",
                                tag_keys=(*keys, "outcome"))
        self.embeddings = Counter("wekadocs_ingest_embeddings_computed",
                                  "Section texts embedded (reused vectors not counted).", tag_keys=keys)
        self.reused = Counter("wekadocs_ingest_embeddings_reused",
                              "Section texts given the stored vector of an identical text.", tag_keys=keys)
        self.failures = Counter("wekadocs_ingest_failures", "Files that could not be ingested.",
                                tag_keys=keys)
        self.batch_seconds = Histogram("wekadocs_ingest_batch_seconds",
                                       "Latency of one graph write or embedding batch.",
                                       boundaries=_LATENCY_BUCKETS, tag_keys=(*keys, "stage"))
