"""Ingestion figures, all measured in one run on this machine.

(a) raw ``SentenceTransformer.encode`` texts/s over every section of 4.4:
    in corpus order (chunks of 256, as a pipeline without sorting would see
    them), globally sorted by length, and as one ``encode`` call;
(b) the Ray Data embedding stage on the same texts, and its ratio to the
    better raw figure (with and without actor start-up);
(c) cold ingest of 4.4 (empty collection: nothing to reuse);
(d) no-op re-ingest of 4.4, as a % of (c);
(e) 4.3 -> 4.4 as an update of one source: embeddings computed vs section
    texts that actually changed;
(f) all versions: embeddings computed vs unique section texts, wall time,
    peak RSS (this process, and the Ray workers together);
(g) cold ingest of 4.4 again, with the MCP and webhook apps deployed on the
    same head (their replicas hold fractions of a CPU), into a fresh embedding
    version: the same work as (c), and its ratio to (c).

The benchmark starts its own stack (Neo4j, Redis, Ray head) on free ports in a
temporary folder and stops it at the end. Nothing is asserted.

    .venv/bin/python perf/bench_ingest.py                 # everything (~40 min on 2 cores)
    .venv/bin/python perf/bench_ingest.py --parts a b     # encode vs the Ray Data stage only
    .venv/bin/python perf/bench_ingest.py --parts c g     # cold ingest, idle head vs Serve deployed
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psutil  # noqa: E402

from cluster import services  # noqa: E402
from cluster.processes import free_ports  # noqa: E402
from cluster.ray_runtime import connect, disconnect  # noqa: E402
from cluster.vector_owner import vector_store_for  # noqa: E402
from pipelines.ingest import Ingestor  # noqa: E402
from pipelines.metrics import IngestMetrics  # noqa: E402
from pipelines.parse import parse_document  # noqa: E402
from wekadocs.embedder import Embedder, ModelSpec, TokenCounter  # noqa: E402
from wekadocs.graph_schema import apply_schema  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.settings import load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def corpus() -> Path:
    root = Path(os.environ.get("WEKADOCS_CORPUS", ROOT.parent / "shared" / "corpus" / "weka-docs"))
    if not (root / "4.4").is_dir():
        raise SystemExit(f"corpus not found at {root} (set WEKADOCS_CORPUS)")
    return root


def section_texts(tree: Path, counter: TokenCounter, budget: int) -> list[str]:
    texts = []
    for path in sorted(tree.rglob("*.md")):
        rel = path.relative_to(tree).as_posix()
        doc = parse_document(path.read_bytes(), path=rel, source="bench", version="x", source_uri="",
                             count_tokens=counter, token_budget=budget, max_bytes=10_000_000)
        texts += [s.embed_text() for s in doc.sections]
    return texts


class PeakRss:
    """Samples RSS of this process and of all Ray worker processes every 0.5 s."""

    def __init__(self) -> None:
        self.driver = 0
        self.workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.driver = max(self.driver, me.memory_info().rss)
            total = 0
            for proc in psutil.process_iter(["name", "cmdline"]):
                try:
                    if any("ray::" in part for part in (proc.info["cmdline"] or [])[:1]):
                        total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.workers = max(self.workers, total)
            self._stop.wait(0.5)


def texts_per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=list("abcdefg"), choices=list("abcdefg"),
                        help="which figures to measure ((b) needs (a), (d) and (g) need (c))")
    args = parser.parse_args()
    wanted = set(args.parts)
    parts = wanted | ({"a"} if "b" in wanted else set()) | ({"c"} if wanted & {"d", "g"} else set())
    root = corpus()
    data_dir = Path(tempfile.mkdtemp(prefix="wdb-"))
    settings = load_settings(
        data_dir=data_dir, **dict(zip(("neo4j_port", "redis_port", "ray_port", "ray_dashboard_port",
                                       "ray_client_port", "ray_metrics_port"), free_ports(6))),
    )
    counter = TokenCounter()
    budget = settings.section_token_budget

    texts = section_texts(root / "4.4", counter, budget)
    best_raw = raw_encode(settings, texts) if "a" in parts else 0.0
    print("starting a private stack in", data_dir)
    services.up(settings)
    try:
        connect(settings)
        with GraphStore.connect(settings) as graph:
            apply_schema(graph)
            figures(settings, graph, root, texts, best_raw, counter, parts)
    finally:
        disconnect()
        services.down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)


def raw_encode(settings, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    """(a), before the stack takes any CPU; returns the best texts/s."""
    embedder = Embedder(settings.embedding_model, device=None, batch_size=settings.embedding_batch_size)
    embedder.encode(texts[:64])  # warm up
    timings = {}
    for label, order in (("corpus order", texts), ("length-sorted", sorted(texts, key=len, reverse=True))):
        started = time.perf_counter()
        for start in range(0, len(order), 256):
            embedder.encode(order[start:start + 256])
        timings[label] = time.perf_counter() - started
    started = time.perf_counter()
    embedder.encode(texts)
    timings["one call"] = time.perf_counter() - started
    del embedder
    print(f"sections of 4.4: {len(texts)} (unique texts {len(set(texts))}), device "
          f"{'cuda' if os.environ.get('CUDA_VISIBLE_DEVICES') not in (None, '') else 'auto'}")
    for label, seconds in timings.items():
        print(f"(a) raw encode, {label:<14}: {texts_per_second(len(texts), seconds):7.1f} texts/s ({seconds:.1f} s)")
    return max(texts_per_second(len(texts), s) for s in timings.values())


def figures(settings, graph, root, texts, best_raw, counter, parts):  # type: ignore[no-untyped-def]
    from wekadocs.ids import checksum

    vectors = vector_store_for(settings)
    ingestor = Ingestor(settings, graph, vectors, progress=False)
    if "b" in parts:
        embedding_stage(ingestor, texts, best_raw)
    cold = cold_and_noop(ingestor, root, "d" in parts) if "c" in parts else None

    if "e" in parts:
        # (e) in a fresh embedding version, so only 4.3's texts are known before the update
        update_settings, update_vectors = fresh_store(settings, "bench-update")
        fresh = Ingestor(update_settings, graph, update_vectors, progress=False)
        base = fresh.run(root / "4.3", source="weka-live", version="live")
        old = {checksum(t) for t in section_texts(root / "4.3", counter, settings.section_token_budget)}
        new = {checksum(t) for t in section_texts(root / "4.4", counter, settings.section_token_budget)}
        update = fresh.run(root / "4.4", source="weka-live", version="live")
        print(f"(e) 4.3 -> 4.4 update: {update.embeddings_computed} embeddings computed, "
              f"{len(new - old)} section texts new in 4.4; {update.sections_written} sections written, "
              f"{update.sections_deleted} deleted, {update.seconds:.1f} s (base ingest of 4.3: {base.seconds:.1f} s)")

    if "f" in parts:
        all_versions(settings, graph, root, counter)

    if "g" in parts and cold is not None:
        cold_with_serve(settings, graph, vectors, root, cold)


def embedding_stage(ingestor, texts, best_raw):  # type: ignore[no-untyped-def]
    """(b) the embedding stage alone, same texts, unique by checksum as in a real run."""
    from wekadocs.ids import checksum

    unique = {checksum(t): t for t in texts}
    missing = sorted(unique.items(), key=lambda ct: -len(ct[1]))
    started = time.perf_counter()
    computed = encode_on_ray(ingestor, missing)
    stage = time.perf_counter() - started
    started = time.perf_counter()
    encode_on_ray(ingestor, missing)  # a second, new pool
    stage_again = time.perf_counter() - started
    rate = texts_per_second(len(computed), min(stage, stage_again))
    started = time.perf_counter()
    encode_on_ray(ingestor, [(f"tiny-{i}", f"tiny text {i}") for i in range(8)])
    startup = time.perf_counter() - started
    steady = texts_per_second(len(computed), min(stage, stage_again) - startup)
    print(f"(b) Ray Data embedding stage: {rate:7.1f} texts/s over {len(computed)} unique texts "
          f"(runs {stage:.1f} s, {stage_again:.1f} s) = {rate / best_raw:.2f} x best raw; "
          f"pool start-up (an 8-text stage) {startup:.1f} s, without it {steady:.1f} texts/s "
          f"= {steady / best_raw:.2f} x")


def encode_on_ray(ingestor, missing):  # type: ignore[no-untyped-def]
    """The ingest's Ray Data embedding stage alone: checksum -> vector."""
    spec = ModelSpec(ingestor.settings.embedding_model, ingestor.settings.embedding_dims)
    batches = ingestor.section_vectors._encode_on_ray(spec, missing, IngestMetrics(), {"source": "bench"})  # noqa: SLF001
    return {c: v for checksums, vectors in batches for c, v in zip(checksums, vectors)}


def fresh_store(settings, label):  # type: ignore[no-untyped-def]
    """Settings and an empty vector store of their own: nothing embedded before is reused."""
    copy = settings.model_copy(update={"embedding_version": label, "data_dir": settings.data_dir / "bench" / label})
    return copy, vector_store_for(copy)


def cold_and_noop(ingestor, root, noop_too):  # type: ignore[no-untyped-def]
    """(c) cold ingest of 4.4, (d) no-op re-ingest."""
    cold = ingestor.run(root / "4.4", source="weka-4.4", version="4.4")
    print(f"(c) cold ingest of 4.4: {cold.seconds:.1f} s ({cold.documents_changed} documents, "
          f"{cold.sections_written} sections, {cold.entities_written} entities, "
          f"{cold.embeddings_computed} embedded, {cold.embeddings_reused} reused)")
    if noop_too:
        noops = [ingestor.run(root / "4.4", source="weka-4.4", version="4.4").seconds for _ in range(3)]
        noop = statistics.median(noops)
        print(f"(d) no-op re-ingest of 4.4: median {noop:.2f} s of 3 = {100 * noop / cold.seconds:.1f}% of (c)")
    return cold


def cold_with_serve(settings, graph, vectors, root, cold):  # type: ignore[no-untyped-def]
    """(g) the cold ingest of (c) again while the Serve apps hold part of the head's CPUs."""
    from ray import serve

    from cluster.processes import free_port
    from cluster.serve_runner import deploy

    served = deploy(settings, host="127.0.0.1", port=free_port())
    try:
        fresh, fresh_vectors = fresh_store(settings, "bench-serve-up")
        busy = Ingestor(fresh, graph, fresh_vectors, progress=False).run(root / "4.4", source="weka-4.4-serve",
                                                                   version="4.4")
    finally:
        serve.shutdown()
    print(f"(g) cold ingest of 4.4 with {', '.join(served.apps)} deployed: {busy.seconds:.1f} s "
          f"({busy.embeddings_computed} embedded) = {busy.seconds / cold.seconds:.2f} x (c)")


def all_versions(settings, graph, root, counter):  # type: ignore[no-untyped-def]
    """(f) every version, into a fresh embedding version: nothing from (b)-(e) is reused."""
    from wekadocs.ids import checksum

    fresh, fresh_vectors = fresh_store(settings, "bench-all-versions")
    all_ingestor = Ingestor(fresh, graph, fresh_vectors, progress=False)
    versions = sorted(p.name for p in root.iterdir() if p.is_dir())
    all_texts: set[str] = set()
    embedded = 0
    started = time.perf_counter()
    with PeakRss() as rss:
        for version in versions:
            report = all_ingestor.run(root / version, source="weka-all", version=version)
            embedded += report.embeddings_computed
    wall = time.perf_counter() - started
    for version in versions:
        all_texts |= {checksum(t) for t in section_texts(root / version, counter, settings.section_token_budget)}
    print(f"(f) all {len(versions)} versions: {embedded} embeddings computed for {len(all_texts)} unique "
          f"section texts ({embedded / max(len(all_texts), 1):.2f} x), {wall:.0f} s, peak RSS "
          f"driver {rss.driver / 2**20:.0f} MiB, Ray workers {rss.workers / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
