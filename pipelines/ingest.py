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

from pipelines.extract import extract_document
from pipelines.metrics import IngestMetrics
from pipelines.nodes import add_per_node, alive_nodes, largest_free_cpus, note_lost_nodes
from pipelines.parse import parse_document
from pipelines.section_vectors import UPSERT_CHUNK, SectionVectors
from pipelines.source_tree import SourceFile, scan_tree
from wekadocs.embedder import ModelCache, TokenCounter
from wekadocs.errors import WekadocsError
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import DocumentWrite, GraphWriter, WriteStats
from wekadocs.ids import checksum
from wekadocs.settings import Settings
from wekadocs.vectors import VectorStore
from wekadocs.vectors.registry import CollectionRecord, ensure_serving

__all__ = ["IngestReport", "Ingestor", "PageChange", "PageParser"]


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
    collections: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    embedded_per_node: dict[str, int] = field(default_factory=dict)  # Ray node id -> texts it encoded
    nodes_lost: list[str] = field(default_factory=list)  # alive when the job began, gone at its end

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PageParser:
    """Bytes of one page -> ``DocumentWrite``; loads the tokenizer once."""

    def __init__(self, token_budget: int, max_bytes: int, source: str, version: str) -> None:
        self.count_tokens = TokenCounter()
        self.options = dict(token_budget=token_budget, max_bytes=max_bytes, source=source, version=version)

    @classmethod
    def for_settings(cls, settings: Settings, source: str, version: str) -> PageParser:
        return cls(settings.section_token_budget, int(settings.max_file_mb * 1_000_000), source, version)

    def parse(self, raw: bytes, path: str, source_uri: str) -> DocumentWrite:
        """Raises ``WekadocsError`` (or ``RecursionError``) for a page that cannot be parsed."""
        parsed = parse_document(raw, path=path, source_uri=source_uri, count_tokens=self.count_tokens,
                                **self.options)  # type: ignore[arg-type]
        return DocumentWrite(parsed, extract_document(parsed))


class ParseAndExtract:
    """Ray Data callable class: file -> pickled ``DocumentWrite`` or an error."""

    def __init__(self, token_budget: int, max_bytes: int, source: str, version: str) -> None:
        self.parser = PageParser(token_budget, max_bytes, source, version)

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
                 encoders: ModelCache | None = None) -> None:
        """``encoders``: warm in-process models for small jobs (see ``SectionVectors``)."""
        self.settings = settings
        self.writer = GraphWriter(graph)
        self.vectors = vectors
        self.progress = progress
        self.section_vectors = SectionVectors(settings, self.writer, vectors, encoders=encoders)

    def run(self, root: Path, *, source: str, version: str) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(source=source, version=version)
        metrics = IngestMetrics()
        tags = {"source": source}
        ray.data.DataContext.get_current().enable_progress_bars = self.progress
        nodes = alive_nodes()

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
        self._finish(stats, report, metrics, tags, started)
        note_lost_nodes(report.nodes_lost, report.warnings, nodes)
        return report

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
        targets = self.embed_pending(report, metrics, tags)
        for record in targets:
            for start in range(0, len(stats.deleted_section_ids), UPSERT_CHUNK):
                self.vectors.delete(record.name, stats.deleted_section_ids[start:start + UPSERT_CHUNK])
        report.vectors_deleted = len(stats.deleted_section_ids)
        report.errors.sort(key=lambda e: e["path"])
        report.seconds = round(time.perf_counter() - started, 3)
        _count(metrics, report, tags)
        return report

    # --- stages --------------------------------------------------------------------

    def embed_pending(self, report: IngestReport, metrics: IngestMetrics,
                      tags: dict[str, str]) -> list[CollectionRecord]:
        """Give every section without a confirmed vector one (any source), in
        the serving collection and in any a re-embed job is building (so the
        job's switch loses nothing written meanwhile); the collections written."""
        registry = ensure_serving(self.settings, self.vectors)
        targets = registry.write_targets()
        if targets and targets[0].embedding_version != self.settings.embedding_version:
            report.warnings.append(
                f"the settings name embedding version {self.settings.embedding_version!r}, but the alias serves "
                f"{targets[0].embedding_version!r} ({targets[0].spec.label}); vectors were written there. To move, "
                f"run `wekadocs reembed --embedding-version {self.settings.embedding_version}`")
        for record in targets:
            try:
                counts = self.section_vectors.fill(record, metrics, tags)
            except Exception as exc:
                if record is targets[0]:
                    raise
                # A collection being built is kept current as a courtesy: the
                # re-embed job's parity check re-embeds whatever is missing
                # before it may switch. Its model failing here (not installed
                # on this worker, out of memory) must not fail the serving write.
                report.warnings.append(f"{record.name} (being built with {record.spec.label}) was not updated: "
                                       f"{type(exc).__name__}: {exc}; the re-embed job's catch-up fills it")
                continue
            report.collections.append(record.name)
            report.embeddings_computed += counts.computed
            report.embeddings_reused += counts.reused
            report.vectors_upserted += counts.upserted
            add_per_node(report.embedded_per_node, counts.per_node)
        return targets

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
                token_budget=s.section_token_budget,
                max_bytes=int(s.max_file_mb * 1_000_000), source=source, version=version,
            ),
            concurrency=(1, max(1, int(ray.cluster_resources().get("CPU", 1)))),
            num_cpus=min(1.0, largest_free_cpus()),  # one node must have it free, see embedding_cpus
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


def _parse_failure(path: str, exc: Exception) -> str:
    return f"{path}: nested too deeply to parse" if isinstance(exc, RecursionError) else str(exc)


def _run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
