"""The re-embed job, measured in one run on this machine.

(a) raw ``SentenceTransformer.encode`` of every distinct section text of all
    corpus versions (length-sorted chunks of 256, the job's own order), before
    the job runs;
(b) the re-embed job (``pipelines/reembed.py``) over the same graph into a new
    collection with the same model: texts/s and sections/s, and the ratio to
    (a); peak RSS of this process and of the Ray workers;
(c) the switch's gap: a query loop (one at a time, in this process) while the
    alias moves to the new collection and back (``vectors switch``): p99 of the
    queries that started within 0.5 s of each alias move vs p99 of all others
    (and of those that ran while the command checked parity and its sample).

It first ingests every version (MiniLM) into a private stack (Neo4j, Redis,
Ray head on free ports in a temporary folder, stopped at the end). Nothing is
asserted.

    .venv/bin/python perf/bench_reembed.py                  # ~35 min on 2 cores
    .venv/bin/python perf/bench_reembed.py --versions 4.4   # one version, ~6 min
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import PeakRss, corpus  # noqa: E402

from cluster import services  # noqa: E402
from cluster.processes import free_ports  # noqa: E402
from cluster.ray_runtime import connect, disconnect  # noqa: E402
from cluster.vector_owner import vector_store_for  # noqa: E402
from pipelines.ingest import Ingestor  # noqa: E402
from pipelines.reembed import reembed  # noqa: E402
from wekadocs.embedder import Embedder  # noqa: E402
from wekadocs.graph_schema import apply_schema  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.graph_writer import GraphWriter  # noqa: E402
from wekadocs.model import embed_text  # noqa: E402
from wekadocs.query.assembly import open_toolbox  # noqa: E402
from wekadocs.settings import load_settings  # noqa: E402

QUESTIONS = ["how do I create a snapshot", "fixed port for the NFS mountd service", "deactivate a license",
             "what does the NodeNotResponding alert mean", "add a drive to the cluster", "tiering to S3"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--versions", nargs="*", default=None, help="corpus versions to ingest (default: all)")
    args = parser.parse_args()
    root = corpus()
    versions = args.versions or sorted(p.name for p in root.iterdir() if p.is_dir())
    data_dir = Path(tempfile.mkdtemp(prefix="wdr-"))
    settings = load_settings(data_dir=data_dir, **dict(zip(
        ("neo4j_port", "redis_port", "ray_port", "ray_dashboard_port", "ray_client_port", "ray_metrics_port"),
        free_ports(6))))
    print("starting a private stack in", data_dir)
    services.up(settings)
    try:
        connect(settings, log_to_driver=False)
        with GraphStore.connect(settings) as graph:
            apply_schema(graph)
            run(settings, graph, root, versions)
    finally:
        disconnect()
        services.down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(settings, graph, root, versions):  # type: ignore[no-untyped-def]
    vectors = vector_store_for(settings)
    started = time.perf_counter()
    ingestor = Ingestor(settings, graph, vectors, progress=False)
    for version in versions:
        ingestor.run(root / version, source="weka", version=version)
    print(f"ingested {len(versions)} versions in {time.perf_counter() - started:.0f} s")

    rows = GraphWriter(graph).sections_needing_vectors("none")  # every section, with its text
    texts = sorted({r["checksum"]: embed_text(r["trail"] or [], r["text"] or "") for r in rows}.values(),
                   key=len, reverse=True)
    raw = raw_encode(settings, texts)
    print(f"(a) raw encode: {len(texts)} distinct texts of {len(rows)} sections, {raw:.1f} texts/s")

    with PeakRss() as rss:
        report = reembed(settings, graph, vectors, embedding_version="bench.2", model=settings.embedding_model,
                         switch=False, say=lambda line: None)
    rate = report.embeddings_computed / report.seconds
    print(f"(b) re-embed job: {report.embeddings_computed} texts computed, {report.embeddings_reused} reused, "
          f"{report.sections} sections in {report.seconds:.1f} s = {rate:.1f} texts/s "
          f"({report.sections / report.seconds:.1f} sections/s) = {rate / raw:.2f} x raw encode; "
          f"verified {report.verified} (sample min cosine {report.sample_min_cosine}); peak RSS driver "
          f"{rss.driver / 2**20:.0f} MiB, Ray workers {rss.workers / 2**20:.0f} MiB")

    switch_gap(settings, graph, vectors)


def raw_encode(settings, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    embedder = Embedder(settings.embedding_model, batch_size=settings.embedding_batch_size)
    embedder.encode(texts[-64:])  # warm up
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        embedder.encode(texts[start:start + 256])
    return len(texts) / (time.perf_counter() - started)


def switch_gap(settings, graph, vectors) -> None:  # type: ignore[no-untyped-def]
    engine = open_toolbox(settings, vectors, graph=graph).engine
    latencies: list[tuple[float, float, str]] = []  # started, ms, collection
    stop = threading.Event()

    def loop() -> None:
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            result = engine.search(QUESTIONS[i % len(QUESTIONS)])
            latencies.append((started, 1000 * (time.perf_counter() - started), result.diagnostics["collection"]))
            i += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    switches = []
    try:
        for version in ("bench.2", settings.embedding_version):
            time.sleep(8)
            before = time.perf_counter()
            reembed(settings, graph, vectors, embedding_version=version, model=settings.embedding_model,
                    require_record=True, say=lambda line: None)
            switches.append((before, time.perf_counter()))
        time.sleep(8)
    finally:
        stop.set()
        thread.join()
    # the alias moves as the command ends; before that it checks parity and re-encodes a sample here
    near = [ms for t, ms, _ in latencies if any(b - 0.5 <= t <= b + 0.5 for _, b in switches)]
    during = [ms for t, ms, _ in latencies if any(a <= t < b - 0.5 for a, b in switches)]
    rest = [ms for t, ms, _ in latencies if not any(a - 0.5 <= t <= b + 0.5 for a, b in switches)]
    served = [c for _, _, c in latencies]
    print(f"(c) switch gap: {len(latencies)} queries, collections seen in order "
          f"{list(dict.fromkeys(served))}; switch commands took "
          f"{', '.join(f'{b - a:.1f} s' for a, b in switches)}; p99 near a switch {p99(near):.0f} ms "
          f"({len(near)} queries) vs the rest {p99(rest):.0f} ms ({len(rest)}), medians "
          f"{median(near):.0f} / {median(rest):.0f} ms; while the commands checked: p99 {p99(during):.0f} ms "
          f"({len(during)})")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


if __name__ == "__main__":
    main()
