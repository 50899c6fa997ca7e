"""The ingestion job: a documentation tree -> graph + vectors, incrementally.

1. Scan the tree; compare file checksums with the stored documents of this
   source and version: unchanged files are not even read again.
2. Parse and extract the changed files on Ray Data (an actor pool, so each
   worker loads the tokenizer once); write them to Neo4j in batches, one
   transaction per batch, re-writing only sections whose content or place
   changed. Files that vanished are deleted with everything derived from them.
3. Embed what has no vector yet, content-addressed: a (text checksum,
   embedding version) pair embedded before, in any page or version, is reused
   from the vector store; only new texts go through the Ray Data embedding
   actors, globally sorted by length so batches pad little.
4. Upsert the vectors, then mark the sections embedded (a crash between the
   two leaves sections unmarked, and the next run finishes the job); only
   then drop the vectors of removed sections, which step 3 may have reused
   (a crash before that leaves extra vectors, which ``reconcile`` removes).

A file that cannot be read or parsed is reported with its reason and left as
it was in the stores; the rest of the run goes on.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray

from pipelines.embedding import EmbedBatch
from pipelines.extract import extract_document
from pipelines.metrics import IngestMetrics
from pipelines.parse import parse_document
from pipelines.source_tree import SourceFile, scan_tree
from wekadocs.embedder import Embedder, TokenCounter
from wekadocs.errors import WekadocsError
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import DocumentWrite, GraphWriter, WriteStats
from wekadocs.ids import checksum
from wekadocs.model import embed_text
from wekadocs.settings import Settings
from wekadocs.vectors import VectorPoint, VectorStore

__all__ = ["IngestReport", "Ingestor", "PageChange", "PageParser", "embedding_cpus", "ensure_collection"]

_UPSERT_CHUNK = 512
LOCAL_EMBED_MAX = 256  # texts a warm in-process encoder takes before Ray Data's actors are worth starting


@dataclass(frozen=True)
class PageChange:
    """One page as its source holds it now; ``content`` None when it is gone."""

    path: str
    content: bytes | None
    source_uri: str = ""


@dataclass
class IngestReport:
    source: str
    version: str
    documents_seen: int = 0
    documents_changed: int = 0
    documents_deleted: int = 0
    sections_written: int = 0
    sections_deleted: int = 0
    entities_written: int = 0
    embeddings_computed: int = 0
    embeddings_reused: int = 0
    vectors_upserted: int = 0
    vectors_deleted: int = 0
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PageParser:
    """Bytes of one page -> ``DocumentWrite``; loads the tokenizer once."""

    def __init__(self, model_name: str, token_budget: int, max_bytes: int, source: str, version: str) -> None:
        self.count_tokens = TokenCounter(model_name)
        self.options = dict(token_budget=token_budget, max_bytes=max_bytes, source=source, version=version)

    @classmethod
    def for_settings(cls, settings: Settings, source: str, version: str) -> PageParser:
        return cls(settings.embedding_model, settings.section_token_budget, int(settings.max_file_mb * 1_000_000),
                   source, version)

    def parse(self, raw: bytes, path: str, source_uri: str) -> DocumentWrite:
        """Raises ``WekadocsError`` (or ``RecursionError``) for a page that cannot be parsed."""
        parsed = parse_document(raw, path=path, source_uri=source_uri, count_tokens=self.count_tokens,
                                **self.options)  # type: ignore[arg-type]
        return DocumentWrite(parsed, extract_document(parsed))


class ParseAndExtract:
    """Ray Data callable class: file -> pickled ``DocumentWrite`` or an error."""

    def __init__(self, model_name: str, token_budget: int, max_bytes: int, source: str, version: str) -> None:
        self.parser = PageParser(model_name, token_budget, max_bytes, source, version)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            raw = Path(row["absolute"]).read_bytes()
            write = self.parser.parse(raw, row["path"], row["source_uri"])
            return {"path": row["path"], "payload": pickle.dumps(write), "error": ""}
        except OSError as exc:
            return {"path": row["path"], "payload": b"", "error": f"{row['path']}: cannot read: {exc}"}
        except (WekadocsError, RecursionError) as exc:
            return {"path": row["path"], "payload": b"", "error": _parse_failure(row["path"], exc)}


class Ingestor:
    """Runs ingestion for one tree. Ray must be initialised by the caller."""

    def __init__(self, settings: Settings, graph: GraphStore, vectors: VectorStore, *, progress: bool = True,
                 encoder: Embedder | None = None) -> None:
        self.settings = settings
        self.writer = GraphWriter(graph)
        self.vectors = vectors
        self.progress = progress
        # A warm in-process model for small jobs (a change consumer's few
        # pages): starting Ray Data's embedding actors costs ~10 s, longer
        # than encoding a few dozen sections here.
        self.encoder = encoder

    def run(self, root: Path, *, source: str, version: str) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(source=source, version=version)
        metrics = IngestMetrics()
        tags = {"source": source}
        ray.data.DataContext.get_current().enable_progress_bars = self.progress

        files, read_errors = scan_tree(root)
        report.errors += [{"path": p, "error": f"{p}: {why}"} for p, why in read_errors]
        report.documents_seen = len(files) + len(read_errors)
        stored = self.writer.documents(source, version)
        # a file that could not be read keeps what the stores hold for it
        present = {f.path for f in files} | {p for p, _ in read_errors}
        changed = [f for f in files if stored.get(f.path, ("", ""))[1] != f.checksum]
        gone = [doc_id for path, (doc_id, _) in stored.items() if path not in present]

        # A write that fails leaves the parse stage suspended: close it here, so Ray
        # Data's executor shuts down now and not whenever the garbage collector
        # gets to it (by then Ray may be gone, and the shutdown fails unreported).
        with closing(self._parsed_batches(changed, source, version, report)) as batches:
            stats = self._write(batches, gone, metrics, tags)
        return self._finish(stats, report, metrics, tags, started)

    def apply_pages(self, pages: list[PageChange], *, source: str, version: str,
                    parser: PageParser | None = None) -> IngestReport:
        """Bring the stores to the given state of some pages of one source and
        version: new or changed bytes are written, ``None`` deletes, bytes
        equal to what is stored change nothing (so a re-delivered change is
        a no-op). Parses in this process; for a change consumer's micro-batch."""
        started = time.perf_counter()
        report = IngestReport(source=source, version=version, documents_seen=len(pages))
        metrics = IngestMetrics()
        tags = {"source": source}
        parser = parser or PageParser.for_settings(self.settings, source, version)
        stored = self.writer.documents(source, version, [page.path for page in pages])
        writes: list[DocumentWrite] = []
        gone: list[str] = []
        for page in pages:
            doc_id, stored_checksum = stored.get(page.path, ("", ""))
            if page.content is None:
                gone += [doc_id] if doc_id else []
            elif checksum(page.content) != stored_checksum:
                try:
                    writes.append(parser.parse(page.content, page.path, page.source_uri))
                except (WekadocsError, RecursionError) as exc:
                    report.errors.append({"path": page.path, "error": _parse_failure(page.path, exc)})
        size = self.settings.write_batch_documents
        batches = (writes[i:i + size] for i in range(0, len(writes), size))
        stats = self._write(batches, gone, metrics, tags)
        return self._finish(stats, report, metrics, tags, started)

    def _finish(self, stats: WriteStats, report: IngestReport, metrics: IngestMetrics, tags: dict[str, str],
                started: float) -> IngestReport:
        report.documents_changed = stats.documents_written
        report.documents_deleted = stats.documents_deleted
        report.sections_written = stats.sections_written
        report.sections_deleted = stats.sections_deleted
        report.entities_written = stats.entities_written

        # Embed before deleting the vectors of removed sections: a text that
        # moved (new section id, same checksum) reuses the old vector.
        self.embed_pending(report, metrics, tags)
        collection = self.settings.vector_collection  # embed_pending ensured it, alias and all
        for start in range(0, len(stats.deleted_section_ids), _UPSERT_CHUNK):
            self.vectors.delete(collection, stats.deleted_section_ids[start:start + _UPSERT_CHUNK])
        report.vectors_deleted = len(stats.deleted_section_ids)
        report.errors.sort(key=lambda e: e["path"])
        report.seconds = round(time.perf_counter() - started, 3)
        _count(metrics, report, tags)
        return report

    # --- stages --------------------------------------------------------------------

    def _write(self, batches: Iterable[list[DocumentWrite]], gone: list[str], metrics: IngestMetrics,
               tags: dict[str, str]) -> WriteStats:
        """Changed documents into the graph batch by batch, vanished ones out."""
        stats = WriteStats()
        run_id = _run_id()
        for batch in batches:
            batch_started = time.perf_counter()
            states = self.writer.section_states([w.parsed.document.id for w in batch])
            stats.add(self.writer.write(batch, states, run_id))
            metrics.batch_seconds.observe(time.perf_counter() - batch_started, tags={**tags, "stage": "graph"})
        stats.add(self.writer.delete_documents(gone))
        if stats.sections_written or stats.sections_deleted:
            self.writer.delete_orphan_entities()  # only re-written sections can orphan one
        return stats

    def _parsed_batches(
        self, changed: list[SourceFile], source: str, version: str, report: IngestReport
    ) -> Iterator[list[DocumentWrite]]:
        """Parse/extract on Ray Data; yield batches of DocumentWrite as they come."""
        if not changed:
            return
        s = self.settings
        rows = [{"path": f.path, "absolute": f.absolute, "source_uri": Path(f.absolute).as_uri()} for f in changed]
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 64)).map(
            ParseAndExtract,
            fn_constructor_kwargs=dict(
                model_name=s.embedding_model, token_budget=s.section_token_budget,
                max_bytes=int(s.max_file_mb * 1_000_000), source=source, version=version,
            ),
            concurrency=(1, max(1, int(ray.cluster_resources().get("CPU", 1)))),
            num_cpus=min(1.0, ray.available_resources().get("CPU", 0.0)),  # see embedding_cpus
        )
        batch: list[DocumentWrite] = []
        with closing(iter(dataset.iter_rows())) as rows:
            for row in rows:
                if row["error"]:
                    report.errors.append({"path": row["path"], "error": row["error"]})
                    continue
                batch.append(pickle.loads(row["payload"]))
                if len(batch) >= s.write_batch_documents:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def embed_pending(self, report: IngestReport, metrics: IngestMetrics, tags: dict[str, str]) -> None:
        """Give every section without a confirmed vector one (any source)."""
        s = self.settings
        collection = ensure_collection(s, self.vectors)
        pending = self.writer.sections_needing_vectors(s.embedding_version)
        if not pending:
            return
        texts = {row["checksum"]: embed_text(row["trail"] or [], row["text"] or "") for row in pending}
        reused = self.vectors.vectors_for_checksums(collection, list(texts))
        missing = sorted(((c, t) for c, t in texts.items() if c not in reused), key=lambda ct: -len(ct[1]))
        computed = self._compute(missing, metrics, tags) if missing else {}
        report.embeddings_computed = len(computed)
        report.embeddings_reused = len(texts) - len(missing)
        vectors = {**reused, **computed}
        for start in range(0, len(pending), _UPSERT_CHUNK):
            chunk = pending[start:start + _UPSERT_CHUNK]
            points = [VectorPoint(
                id=row["id"],
                vector=vectors[row["checksum"]],
                payload={"document_id": row["document_id"], "version": row["version"],
                         "source": row["source"], "path": row["path"], "checksum": row["checksum"]},
            ) for row in chunk]
            self.vectors.upsert(collection, points)
            self.writer.mark_embedded([row["id"] for row in chunk], s.embedding_version)
            report.vectors_upserted += len(points)

    def _compute(self, missing: list[tuple[str, str]], metrics: IngestMetrics, tags: dict[str, str]) -> dict[str, list[float]]:
        s = self.settings
        if self.encoder is not None and len(missing) <= LOCAL_EMBED_MAX:
            local_started = time.perf_counter()
            encoded = self.encoder.encode([text for _, text in missing])
            metrics.batch_seconds.observe(time.perf_counter() - local_started, tags={**tags, "stage": "embed"})
            return {c: vector.tolist() for (c, _), vector in zip(missing, encoded)}
        use_gpu = s.embedding_device == "cuda" or (
            s.embedding_device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1
        )
        threads, cpus = (s.embed_threads, 1.0) if use_gpu else embedding_cpus(
            ray.available_resources().get("CPU", 0.0), s.embedding_actors, s.embed_threads)
        dataset = ray.data.from_items(
            [{"checksum": c, "text": t} for c, t in missing],
            override_num_blocks=max(1, min(len(missing) // 256, 64)),
        ).map_batches(
            EmbedBatch,
            fn_constructor_kwargs=dict(model_name=s.embedding_model, batch_size=s.embedding_batch_size,
                                       device="cuda" if use_gpu else "cpu", threads=threads,
                                       actors=s.embedding_actors),
            batch_size=s.embedding_batch_size * 8,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=s.embedding_actors),
            num_gpus=1 if use_gpu else 0,
            num_cpus=cpus,
        )
        computed: dict[str, list[float]] = {}
        last = time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for text_checksum, vector in zip(batch["checksum"], batch["vector"]):
                computed[str(text_checksum)] = vector.tolist()
            now = time.perf_counter()
            metrics.batch_seconds.observe(now - last, tags={**tags, "stage": "embed"})
            last = now
        return computed


def _count(metrics: IngestMetrics, report: IngestReport, tags: dict[str, str]) -> None:
    if report.errors:
        metrics.failures.inc(len(report.errors), tags=tags)
    for outcome, documents, sections in (
        ("written", report.documents_changed, report.sections_written),
        ("deleted", report.documents_deleted, report.sections_deleted),
    ):
        if documents:
            metrics.documents.inc(documents, tags={**tags, "outcome": outcome})
        if sections:
            metrics.sections.inc(sections, tags={**tags, "outcome": outcome})
    if report.embeddings_computed:
        metrics.embeddings.inc(report.embeddings_computed, tags=tags)


def embedding_cpus(free: float, actors: int, threads: int = 0) -> tuple[int, float]:
    """(torch threads, CPUs to reserve) for each CPU embedding actor, from the
    CPUs free *now*. The two are separate: the reservation is what is free
    (a fraction when Serve replicas hold some), never more, or an actor
    asking for more than the cluster has left would wait forever; the
    threads are ``threads`` when set (``WEKADOCS_EMBED_THREADS``), else 0:
    the cores of the actor's node (``EmbedBatch``), not the reservation
    floored, which left one thread on two cores while Serve was up. A set
    thread count also caps the reservation, leaving the rest to others."""
    share = max(free / max(1, actors), 0.0)
    return threads, min(float(threads), share) if threads > 0 else share


def ensure_collection(settings: Settings, vectors: VectorStore) -> str:
    """The collection for this embedding version; the alias points at it if unset."""
    vectors.create_collection(settings.vector_collection, settings.embedding_dims)
    if settings.vector_alias not in vectors.aliases():
        vectors.set_alias(settings.vector_alias, settings.vector_collection)
    return settings.vector_collection


def _parse_failure(path: str, exc: Exception) -> str:
    return f"{path}: nested too deeply to parse" if isinstance(exc, RecursionError) else str(exc)


def _run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
