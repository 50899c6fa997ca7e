"""Embedded vector engines, side by side: Qdrant Edge vs qdrant-client local mode.

Prints load time and top-10 search latency (p50/p95, milliseconds) at each
size, without and with a version filter (22 versions, as in the corpus), and
the local/edge ratio. Both engines run through our ``VectorStore`` adapters,
exactly as the application uses them. Figures only; nothing is asserted.

    .venv/bin/python perf/bench_vectors.py                 # 20k and 100k
    .venv/bin/python perf/bench_vectors.py --sizes 20000 --queries 100
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from wekadocs.vectors.client import QdrantClientStore
from wekadocs.vectors.edge import QdrantEdgeStore
from wekadocs.vectors import VectorPoint, VectorStore

DIMS = 384
VERSIONS = [f"v{i}" for i in range(22)]
BATCH = 1000


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, DIMS)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def _load(store: VectorStore, vectors: np.ndarray) -> float:
    store.create_collection("bench", DIMS)
    started = time.perf_counter()
    for start in range(0, len(vectors), BATCH):
        chunk = vectors[start : start + BATCH]
        store.upsert(
            "bench",
            [
                VectorPoint(
                    id=hashlib.sha256(str(start + i).encode()).hexdigest(),
                    vector=row.tolist(),
                    payload={"version": VERSIONS[(start + i) % len(VERSIONS)], "path": "p.md"},
                )
                for i, row in enumerate(chunk)
            ],
        )
    return time.perf_counter() - started


def _latencies(store: VectorStore, queries: np.ndarray, where: dict | None) -> list[float]:
    store.search("bench", queries[0].tolist(), 10, where)  # warm caches
    timings = []
    for query in queries:
        started = time.perf_counter()
        hits = store.search("bench", query.tolist(), 10, where)
        timings.append((time.perf_counter() - started) * 1000)
        assert len(hits) == 10
    return timings


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--local-queries", type=int, default=50,
                        help="queries for local mode (brute force in Python: slow)")
    args = parser.parse_args()

    print(f"{'engine':<14}{'points':>8}{'load s':>9}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'filt p50':>10}{'filt p95':>10}")
    for size in args.sizes:
        vectors = _vectors(size, seed=1)
        results: dict[str, tuple[float, float]] = {}
        for engine in ("qdrant-edge", "qdrant-local"):
            with tempfile.TemporaryDirectory(prefix="bench-vec-") as folder:
                if engine == "qdrant-edge":
                    store: VectorStore = QdrantEdgeStore(Path(folder))
                    n_queries = args.queries
                else:
                    store = QdrantClientStore.local(Path(folder))
                    n_queries = args.local_queries
                queries = _vectors(n_queries, seed=2)
                load_s = _load(store, vectors)
                plain = _latencies(store, queries, None)
                filtered = _latencies(store, queries, {"version": "v7"})
                store.close()
            p50, p50f = statistics.median(plain), statistics.median(filtered)
            results[engine] = (p50, p50f)
            print(f"{engine:<14}{size:>8}{load_s:>9.1f}{p50:>9.2f}{_pct(plain, 95):>9.2f}"
                  f"{p50f:>10.2f}{_pct(filtered, 95):>10.2f}")
        edge, local = results["qdrant-edge"], results["qdrant-local"]
        print(f"{'local/edge':<14}{size:>8}{'':>9}{local[0] / edge[0]:>8.1f}x{'':>9}"
              f"{local[1] / edge[1]:>9.1f}x")


if __name__ == "__main__":
    main()
