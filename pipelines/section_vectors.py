"""Keeping one collection's vectors equal to the graph's sections.

The graph is the source of truth; a collection holds one point per section,
computed by the collection's own model from the section's text. Both the
ingest job (for the serving collection and any being built) and the re-embed
job use this:

* **fill** gives every section without a confirmed vector for the collection
  one, content-addressed: a text already in the collection (another section,
  another version, an interrupted run) is reused, each new text is encoded
  once, longest first so batches pad little, and vectors are stored batch by
  batch as they come, each batch confirmed in the graph (``embedded_in``)
  only after its upsert. A run killed half-way keeps what it stored.
* **drift** compares the collection with the graph: sections with no point,
  points computed from other text, and points no section has.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from pipelines.embedding import EmbedBatch, cluster_placement
from pipelines.metrics import IngestMetrics
from pipelines.nodes import current_node
from wekadocs.embedder import ModelCache, ModelSpec
from wekadocs.graph_writer import GraphWriter
from wekadocs.model import embed_text
from wekadocs.settings import Settings
from wekadocs.vectors import VectorPoint, VectorStore
from wekadocs.vectors.registry import CollectionRecord

__all__ = ["Drift", "FillCounts", "SectionVectors", "LOCAL_EMBED_MAX"]

UPSERT_CHUNK = 512
LOCAL_EMBED_MAX = 256  # texts a warm in-process encoder takes before Ray Data's actors are worth starting

Progress = Callable[[int, int], None]


@dataclass
class FillCounts:
    sections: int = 0  # sections that needed a vector
    computed: int = 0  # distinct texts encoded
    reused: int = 0  # distinct texts found in the collection already
    upserted: int = 0
    per_node: dict[str, int] = field(default_factory=dict)  # texts encoded, by Ray node id


@dataclass
class Drift:
    sections: int
    points: int
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    checksums: set[str] = field(default_factory=set, repr=False)  # the graph's distinct texts

    @property
    def pct(self) -> float:
        return round(100.0 * (len(self.missing) + len(self.stale) + len(self.extra)) / max(self.sections, 1), 3)

    @property
    def parity(self) -> bool:
        return not (self.missing or self.stale or self.extra)


class SectionVectors:
    """Args:
        encoders: warm in-process models for small fills (a change consumer's
            few pages); starting Ray Data's actors costs ~10 s, longer than
            encoding a few dozen sections here. None: always Ray Data.
    """

    def __init__(self, settings: Settings, writer: GraphWriter, vectors: VectorStore, *,
                 encoders: ModelCache | None = None) -> None:
        self.settings = settings
        self.writer = writer
        self.vectors = vectors
        self.encoders = encoders

    def fill(self, record: CollectionRecord, metrics: IngestMetrics, tags: dict[str, str],
             progress: Progress | None = None) -> FillCounts:
        pending = self.writer.sections_needing_vectors(record.embedding_version)
        counts = FillCounts(sections=len(pending))
        if not pending:
            return counts
        rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
        texts: dict[str, str] = {}
        for row in pending:
            rows_of[row["checksum"]].append(row)
            texts[row["checksum"]] = embed_text(row["trail"] or [], row["text"] or "")
        reused = self.vectors.vectors_for_checksums(record.name, list(texts))
        counts.reused = len(reused)
        counts.upserted += self._store(record, rows_of, reused)
        if reused:
            metrics.reused.inc(len(reused), tags=tags)
        missing = sorted(((c, t) for c, t in texts.items() if c not in reused), key=lambda ct: -len(ct[1]))
        if progress:
            progress(0, len(missing))
        for checksums, vectors, nodes in self._encode(record.spec, missing, metrics, tags):
            counts.upserted += self._store(record, rows_of, dict(zip(checksums, vectors)))
            counts.computed += len(checksums)
            if checksums:  # counted as each batch is stored: a long job's progress shows
                metrics.embeddings.inc(len(checksums), tags=tags)
            for node in nodes:
                counts.per_node[node] = counts.per_node.get(node, 0) + 1
            if progress:
                progress(counts.computed, len(missing))
        return counts

    def drift(self, record: CollectionRecord) -> Drift:
        sections = self.writer.all_sections()
        points = dict(self.vectors.scroll_points(record.name))
        drift = Drift(sections=len(sections), points=len(points),
                      checksums={checksum for checksum, _ in sections.values()})
        for sid, (checksum, versions) in sections.items():
            if sid not in points:
                drift.missing.append(sid)
            elif points[sid] != checksum or record.embedding_version not in versions:
                drift.stale.append(sid)
        drift.extra = [pid for pid in points if pid not in sections]
        return drift

    def repair(self, record: CollectionRecord, drift: Drift, metrics: IngestMetrics, tags: dict[str, str],
               progress: Progress | None = None) -> tuple[FillCounts, int]:
        """Delete extra points, re-embed missing and stale sections; (fill counts, points deleted)."""
        for start in range(0, len(drift.extra), UPSERT_CHUNK):
            self.vectors.delete(record.name, drift.extra[start:start + UPSERT_CHUNK])
        self.writer.unmark_embedded(drift.missing + drift.stale, record.embedding_version)
        return self.fill(record, metrics, tags, progress), len(drift.extra)

    # --- stages ----------------------------------------------------------------

    def _store(self, record: CollectionRecord, rows_of: dict[str, list[dict[str, Any]]],
               vectors: dict[str, Any]) -> int:
        """Points for every section with these texts, then their confirmation."""
        rows = [(row, vector) for checksum, vector in vectors.items() for row in rows_of.get(checksum, [])]
        for start in range(0, len(rows), UPSERT_CHUNK):
            chunk = rows[start:start + UPSERT_CHUNK]
            self.vectors.upsert(record.name, [VectorPoint(
                id=row["id"],
                vector=vector.tolist() if isinstance(vector, np.ndarray) else vector,
                payload={"document_id": row["document_id"], "version": row["version"],
                         "source": row["source"], "path": row["path"], "checksum": row["checksum"]},
            ) for row, vector in chunk])
            self.writer.mark_embedded([row["id"] for row, _ in chunk], record.embedding_version)
        return len(rows)

    def _encode(self, spec: ModelSpec, missing: list[tuple[str, str]], metrics: IngestMetrics,
                tags: dict[str, str]) -> Iterator[tuple[list[str], np.ndarray, list[str]]]:
        """(checksums, vectors, the node that encoded each) batch by batch, in
        whatever order they finish."""
        if not missing:
            return
        if self.encoders is not None and len(missing) <= LOCAL_EMBED_MAX:
            started = time.perf_counter()
            encoded = self.encoders.get(spec).encode([text for _, text in missing])
            metrics.batch_seconds.observe(time.perf_counter() - started, tags={**tags, "stage": "embed"})
            yield [c for c, _ in missing], encoded, [current_node()] * len(missing)
            return
        yield from self._encode_on_ray(spec, missing, metrics, tags)

    def _encode_on_ray(self, spec: ModelSpec, missing: list[tuple[str, str]], metrics: IngestMetrics,
                       tags: dict[str, str]) -> Iterator[tuple[list[str], np.ndarray, list[str]]]:
        s = self.settings
        use_gpu = s.embedding_device == "cuda" or (
            s.embedding_device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1
        )
        placement = cluster_placement(s.embedding_actors, s.embed_threads)
        threads, cpus = (s.embed_threads, 1.0) if use_gpu else (placement.threads, placement.cpus)
        per_call = s.embedding_batch_size * 8  # texts per call of an embedding actor
        # a block per call: results are stored as each block finishes. At least
        # four blocks per actor (while each still fills a forward pass): with
        # fewer, the first actor ready takes them all and the others, on other
        # nodes, idle.
        blocks = max(-(-len(missing) // per_call),
                     min(4 * s.embedding_actors, -(-len(missing) // s.embedding_batch_size)))
        dataset = ray.data.from_items(
            [{"checksum": c, "text": t} for c, t in missing],
            override_num_blocks=max(1, min(blocks, 64)),
        ).map_batches(
            EmbedBatch,
            fn_constructor_kwargs=dict(model_name=spec.name, dims=spec.dims, batch_size=s.embedding_batch_size,
                                       device="cuda" if use_gpu else "cpu", threads=threads,
                                       actors=placement.actors_per_node, node_cpus=placement.nodes),
            batch_size=per_call,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=s.embedding_actors),
            num_gpus=1 if use_gpu else 0,
            num_cpus=cpus,
            # only on the nodes that offer `embed`, when some do
            **({"resources": placement.resources} if placement.resources else {}),
        )
        last = time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield [str(c) for c in batch["checksum"]], batch["vector"], [str(n) for n in batch["node"]]
            now = time.perf_counter()
            metrics.batch_seconds.observe(now - last, tags={**tags, "stage": "embed"})
            last = now
