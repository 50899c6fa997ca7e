"""The same job on one Ray node and on a head with two worker nodes, on this machine.

The point is correctness and overhead, not speed-up: every node of this
machine shares its cores. Same total cores either way:

(a) **1 node**: the head (2 CPUs) runs one embedding actor with the node's
    threads;
(b) **1 + 2 nodes**: ``services up --workers 2 --worker-cpus 1``; the two
    embedding actors run on the workers (which offer ``embed``), one thread
    each.

Each phase runs the re-embed job (``wekadocs reembed --no-switch``) into a
new collection over the same graph, so every distinct text is encoded once
per run: texts/s, the rows each node encoded, and the wall time. Before (b)
it measures what each idle worker node costs: RSS and PSS summed over the
processes of its session (``ray start``, raylet, agents, idle workers).

It first ingests a slice of the 4.4 corpus into a private stack (Neo4j,
Redis, Ray head on free ports in a temporary folder, stopped at the end),
driving this checkout's CLI (``python -m cluster.cli``). Nothing is asserted.

    .venv/bin/python perf/bench_multinode.py                  # ~8 min on 2 cores
    .venv/bin/python perf/bench_multinode.py --runs 2 --folders additional-protocols
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import corpus  # noqa: E402

from cluster import processes, services  # noqa: E402
from cluster.processes import free_ports  # noqa: E402
from wekadocs.settings import Settings, load_settings  # noqa: E402

PORTS = ("neo4j_port", "redis_port", "ray_port", "ray_dashboard_port", "ray_client_port", "ray_metrics_port")

WEKADOCS = [sys.executable, "-m", "cluster.cli"]
FOLDERS = ("additional-protocols", "operation-guide/security")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--folders", nargs="*", default=list(FOLDERS), help="folders of 4.4 to ingest")
    parser.add_argument("--runs", type=int, default=1, help="re-embed runs per layout (medians quoted)")
    parser.add_argument("--batch-size", type=int, default=32, help="WEKADOCS_EMBEDDING_BATCH_SIZE")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(REPO)  # the raylets' workers import this checkout
    short = Path(tempfile.mkdtemp(prefix="wdm-"))
    settings = load_settings(data_dir=short / "s", ray_num_cpus=2, ray_object_store_mb=512,
                             **dict(zip(PORTS, free_ports(len(PORTS)))))
    env = {"WEKADOCS_DATA_DIR": str(settings.data_dir), "WEKADOCS_RAY_NUM_CPUS": "2",
           "WEKADOCS_RAY_OBJECT_STORE_MB": "512", "PYTHONPATH": str(REPO),
           "WEKADOCS_EMBEDDING_BATCH_SIZE": str(args.batch_size),
           **{Settings.env_name(name): str(getattr(settings, name)) for name in PORTS}}
    print("starting a private stack in", short, flush=True)
    services.up(settings)
    try:
        run(settings, env, short, args)
    finally:
        services.down(settings)
        shutil.rmtree(short, ignore_errors=True)


def run(settings: Settings, env: dict[str, str], short: Path, args: argparse.Namespace) -> None:
    root = short / "docs"
    for folder in args.folders:
        shutil.copytree(corpus() / "4.4" / folder, root / folder)
    started = time.perf_counter()
    ingested = cli(env, "ingest", str(root), "--source", "bench", "--version", "4.4", "--json")
    print(f"ingested {ingested['documents_changed']} pages, {ingested['sections_written']} sections, "
          f"{ingested['embeddings_computed']} texts embedded in {time.perf_counter() - started:.1f} s (1 node)")

    layouts: dict[str, list[dict[str, Any]]] = {"1 node": [], "1 + 2 nodes": []}
    head_rss = session_memory(services.read_state(settings, "ray")["pid"])  # type: ignore[index]
    worker_memory: list[tuple[float, float]] = []
    for run_index in range(args.runs):
        cli(env, "services", "up", "--workers", "0", "--json")
        layouts["1 node"].append(reembed(env, f"one.{run_index}", actors=1))
        cli(env, "services", "up", "--workers", "2", "--worker-cpus", "1", "--json")
        time.sleep(15)  # idle: what a node costs before it runs anything
        worker_memory += [session_memory(w["pid"]) for w in map(lambda w: services.read_state(settings, w.name),
                                                                  services.workers_for(settings)) if w]
        layouts["1 + 2 nodes"].append(reembed(env, f"three.{run_index}", actors=2))

    names = {n["node_id"]: n["name"] for n in cli(env, "services", "status", "--json")["nodes"]}
    print()
    print(f"{'layout':<12} {'texts':>6} {'seconds':>8} {'texts/s':>8}  rows per node")
    for layout, reports in layouts.items():
        for report in reports:
            per_node = ", ".join(f"{names.get(node, node[:8])} {rows}"
                                 for node, rows in sorted(report["embedded_per_node"].items()))
            print(f"{layout:<12} {report['texts']:>6} {report['seconds']:>8.1f} "
                  f"{report['texts'] / report['seconds']:>8.2f}  {per_node}")
    one = statistics.median(r["texts"] / r["seconds"] for r in layouts["1 node"])
    three = statistics.median(r["texts"] / r["seconds"] for r in layouts["1 + 2 nodes"])
    print(f"median texts/s: 1 node {one:.2f}, 1 + 2 nodes {three:.2f} ({three / one:.2f}x)")
    rss = statistics.median(r for r, _ in worker_memory)
    pss = statistics.median(p for _, p in worker_memory)
    print(f"idle worker node: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB (median of {len(worker_memory)}); "
          f"the head for comparison: RSS {head_rss[0]:.0f} MiB, PSS {head_rss[1]:.0f} MiB")


def reembed(env: dict[str, str], version: str, *, actors: int) -> dict[str, Any]:
    report: dict[str, Any] = cli({**env, "WEKADOCS_EMBEDDING_ACTORS": str(actors)}, "reembed",
                                 "--embedding-version", version, "--no-switch", "--json")
    print(f"  reembed {version}: {report['texts']} texts in {report['seconds']:.1f} s "
          f"on {len(report['embedded_per_node'])} node(s); load average after {os.getloadavg()[0]:.1f} "
          "(other programs on this machine skew every figure)", flush=True)
    return report


def session_memory(leader: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB summed over the live processes of ``leader``'s session."""
    rss = pss = 0
    for pid in processes.session_members(leader):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += _kib(status, "VmRSS:")
        pss += _kib(rollup, "Pss:")
    return rss / 1024, pss / 1024


def _kib(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def cli(env: dict[str, str], *args: str) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "NEO4J_", "REDIS_", "QDRANT_"))}
    result = subprocess.run([*WEKADOCS, *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True,
                            timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"wekadocs {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


if __name__ == "__main__":
    main()
