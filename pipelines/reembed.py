"""The re-embed job: every section of the graph into a new collection, checked,
then served.

1. **Register** the collection of the new embedding version as ``building``
   with its model. From then on every writer (ingest, freshness, reconcile)
   keeps it current beside the serving collection (``Registry.write_targets``),
   so a page changed while the job runs is not missed.
2. **Fill** it through ``SectionVectors``: each distinct text encoded once on
   Ray Data's actor pool (CPU or GPU, the code is the same), longest first,
   stored batch by batch and confirmed in the graph after each upsert. Killed
   half-way and started again, it finds what it stored and encodes the rest.
3. **Catch up and check parity**: compare the collection with the graph as it
   is *now*; delete points of sections that went away, re-embed sections that
   changed, and repeat until nothing differs (writers' dual writes make this
   converge in one or two rounds even under a steady stream of changes).
4. **Verify a sample**: re-encode randomly chosen texts here, with the same
   model, and compare with what is stored (cosine >= ``MIN_SAMPLE_COSINE``).
5. **Switch**: the record becomes ``ready`` and the alias moves in one atomic
   step. Readers resolve the alias per query and encode with the model of the
   collection it names, so no query mixes models.

The same function checks a kept collection before a rollback
(``wekadocs vectors switch V``): step 3 brings it up to date first.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from pipelines.metrics import IngestMetrics
from pipelines.nodes import add_per_node, alive_nodes, note_lost_nodes
from pipelines.section_vectors import FillCounts, SectionVectors
from wekadocs.bundled_models import bundled
from wekadocs.embedder import Embedder, ModelSpec
from wekadocs.errors import VectorStoreError
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.model import embed_text
from wekadocs.settings import Settings, collection_name
from wekadocs.vectors import VectorStore
from wekadocs.vectors.registry import BUILDING, READY, CollectionRecord, Registry, ensure_serving, now_iso

__all__ = ["ReembedReport", "ReembedError", "reembed", "model_dims", "MIN_SAMPLE_COSINE"]

MIN_SAMPLE_COSINE = 0.999
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # it names a collection
SAMPLE = 32
MAX_CATCH_UP_ROUNDS = 5

Say = Callable[[str], None]


class ReembedError(VectorStoreError):
    """The job cannot run as asked, or the new collection failed its checks."""


@dataclass
class ReembedReport:
    embedding_version: str
    collection: str
    model: str
    dims: int
    previous: str | None  # the collection the alias served before
    sections: int = 0
    texts: int = 0
    embeddings_computed: int = 0
    embeddings_reused: int = 0
    vectors_upserted: int = 0
    vectors_deleted: int = 0
    catch_up_rounds: int = 0
    sample_checked: int = 0
    sample_min_cosine: float | None = None
    verified: bool = False
    switched: bool = False
    seconds: float = 0.0
    embedded_per_node: dict[str, int] = field(default_factory=dict)  # Ray node id -> texts it encoded
    nodes_lost: list[str] = field(default_factory=list)  # alive when the job began, gone at its end
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_dims(model: str) -> int:
    """The model's own dimension (a model that is not bundled is loaded to ask)."""
    known = bundled(model)
    if known:
        return known.dims
    try:
        return Embedder(model, device="cpu").dims
    except (OSError, ValueError) as exc:  # what sentence-transformers raises for a name it cannot load
        raise ReembedError(f"cannot load the model {model!r}: {exc}") from exc


def reembed(settings: Settings, graph: GraphStore, vectors: VectorStore, *, embedding_version: str,
            model: str, dims: int | None = None, switch: bool = True, say: Say = print,
            require_record: bool = False) -> ReembedReport:
    """Fill, check and (``switch``) serve the collection of ``embedding_version``.

    ``require_record``: only a collection the registry knows (a rollback);
    its recorded model is used whatever ``model`` says."""
    started = time.perf_counter()
    nodes = alive_nodes()
    if not _VERSION.match(embedding_version):
        raise ReembedError(f"embedding version {embedding_version!r}: use letters, digits, '.', '_' or '-' "
                           "(up to 100, starting with a letter or digit)")
    registry = ensure_serving(settings, vectors)
    name = collection_name(embedding_version)
    record = _start(registry, name, embedding_version, model, dims, require_record)
    serving = registry.serving_name()
    report = ReembedReport(embedding_version, name, record.model, record.dims, previous=serving)
    section_vectors = SectionVectors(settings, GraphWriter(graph), vectors)
    metrics, tags = IngestMetrics(), {"source": "reembed"}

    say(f"filling {name} with {record.spec.label}")
    _add(report, section_vectors.fill(record, metrics, tags, _progress(say)))
    for round_ in range(1, MAX_CATCH_UP_ROUNDS + 1):
        drift = section_vectors.drift(record)
        report.sections, report.texts = drift.sections, len(drift.checksums)
        if drift.parity:
            break
        say(f"catch-up {round_}: {len(drift.missing)} missing, {len(drift.stale)} stale, {len(drift.extra)} extra")
        counts, deleted = section_vectors.repair(record, drift, metrics, tags)
        _add(report, counts)
        report.vectors_deleted += deleted
        report.catch_up_rounds = round_
    else:
        raise ReembedError(f"{name} did not reach parity with the graph after {MAX_CATCH_UP_ROUNDS} catch-up "
                           "rounds (changes arrive faster than they are embedded); run the job again")

    report.sample_checked, report.sample_min_cosine = _check_sample(graph, vectors, record, drift.checksums)
    if report.sample_min_cosine is not None and report.sample_min_cosine < MIN_SAMPLE_COSINE:
        raise ReembedError(f"stored vectors of {name} differ from a fresh encoding (cosine "
                           f"{report.sample_min_cosine:.4f} < {MIN_SAMPLE_COSINE}); not switching")
    report.verified = True
    registry.put(replace(record, state=READY, verified_at=now_iso(), points=vectors.count(name)))
    say(f"verified: {report.sections} sections, {report.texts} texts, sample of {report.sample_checked} "
        f"at cosine >= {report.sample_min_cosine}")
    if switch and serving != name:
        vectors.set_alias(registry.alias, name)
        report.switched = True
        say(f"alias {registry.alias} now serves {name} (was {serving})")
    note_lost_nodes(report.nodes_lost, report.warnings, nodes)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _start(registry: Registry, name: str, version: str, model: str, dims: int | None,
           require_record: bool) -> CollectionRecord:
    """The record to fill: the existing one (a resumed or rolled-back
    collection), or a new one. A collection keeps the model it was made with."""
    record = registry.get(name)
    if record is None and require_record:
        known = ", ".join(sorted(r.embedding_version for r in registry.records().values())) or "none"
        raise ReembedError(f"no collection for embedding version {version!r} (known: {known})")
    if record is not None:
        wanted = ModelSpec(model, dims or record.dims)
        if not require_record and wanted != record.spec:
            raise ReembedError(
                f"{name} already holds {record.spec.label} vectors; asked for {wanted.label}. Use another "
                f"--embedding-version, or drop it first (`wekadocs vectors drop {version}`)")
    else:
        # checked before anything is recorded: writers fill a building collection too
        native = model_dims(model)
        if dims is not None and dims > native:
            raise ReembedError(f"{model} makes {native}-dimensional vectors; --dims {dims} is more than that")
        record = CollectionRecord(name=name, embedding_version=version, model=model, dims=dims or native,
                                  created_at=now_iso())
    registry.store.create_collection(name, record.dims)
    if registry.serving_name() != name:
        # writers keep it current from now on (before the fill reads the graph)
        record = replace(record, state=BUILDING)
        registry.put(record)
    return record


def _check_sample(graph: GraphStore, vectors: VectorStore, record: CollectionRecord,
                  checksums: set[str]) -> tuple[int, float | None]:
    """Re-encode a random sample of the graph's texts here; the lowest cosine to
    the stored vectors."""
    if not checksums:
        return 0, None
    chosen = random.sample(sorted(checksums), min(SAMPLE, len(checksums)))
    sample = graph.read(
        "MATCH (s:Section) WHERE s.checksum IN $checksums WITH s.checksum AS checksum, head(collect(s)) AS s "
        "RETURN checksum, s.trail AS trail, s.text AS text",
        checksums=chosen,
    )
    stored = vectors.vectors_for_checksums(record.name, [r["checksum"] for r in sample])
    missing = [r["checksum"] for r in sample if r["checksum"] not in stored]
    if missing:
        raise ReembedError(f"{len(missing)} sampled texts have no vector in {record.name}")
    fresh = Embedder(record.model, dims=record.dims, device="cpu").encode(
        [embed_text(r["trail"] or [], r["text"] or "") for r in sample])
    kept = np.asarray([stored[r["checksum"]] for r in sample], dtype=np.float32)
    cosines = np.sum(fresh * kept, axis=1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(kept, axis=1))
    return len(sample), round(float(cosines.min()), 6)


def _add(report: ReembedReport, counts: FillCounts) -> None:
    report.embeddings_computed += counts.computed
    report.embeddings_reused += counts.reused
    report.vectors_upserted += counts.upserted
    add_per_node(report.embedded_per_node, counts.per_node)


def _progress(say: Say) -> Callable[[int, int], None]:
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done in (0, total) or now - last[0] >= 2:
            last[0] = now
            say(f"embedded {done}/{total} texts")

    return progress
