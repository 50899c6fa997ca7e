"""Query-service latency, measured in one run against the running service.

For each concurrency level (default 1, 8, 32) a pool of official MCP clients
sends ``search_documentation`` calls for the dev questions and the figures
are p50/p95/p99 latency and throughput. In the same run:

* the same questions through the in-process engine (no Serve, no MCP, no
  HTTP): the service's overhead is the difference of the medians, and the
  ratio;
* ``tools/list`` through the same clients: the floor of an MCP round trip
  through Serve on this machine;
* the alias lookup every search makes (which collection, hence which model):
  one call to the vector store's owner actor;
* the CPU a search costs, summed over every process on the machine (``psutil``
  times before and after each level, divided by the searches), and by role:
  the MCP replicas, the Serve proxy, the vector store's owner, Neo4j, the
  rest of Ray, this benchmark's own client. Run it on an otherwise idle
  machine: any other process's CPU is counted under "other". The stack's
  CPU with no search running is measured first (10 s), and each level also
  says its cost net of that background, which otherwise weighs most on the
  slowest level.

Start the service first (``wekadocs services up``, ingest, ``wekadocs serve
--detach``). Nothing is asserted.

    .venv/bin/python perf/bench_query.py [--url http://127.0.0.1:8000/mcp] [--levels 1 8 32]
        [--qrels perf/eval/questions-4.4.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")

import psutil  # noqa: E402
from mcp import Client  # noqa: E402
from ray import serve  # noqa: E402

from cluster.ray_runtime import connect  # noqa: E402
from cluster.serve_runner import load_serve_config  # noqa: E402
from cluster.vector_owner import vector_store_for  # noqa: E402
from wekadocs.query.assembly import open_toolbox  # noqa: E402
from wekadocs.query.evaluation import load_qrels  # noqa: E402
from wekadocs.settings import load_settings  # noqa: E402
from wekadocs.vectors.registry import Registry  # noqa: E402

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev-4.4.jsonl"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return f"p50 {statistics.median(ordered):7.1f}  p95 {at(0.95):7.1f}  p99 {at(0.99):7.1f} ms"


async def drive(url: str, queries: list[str], concurrency: int, total: int, version: str | None,
                method: str) -> tuple[list[float], float, int]:
    """``total`` calls spread over ``concurrency`` clients; latencies in ms."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        async with Client(url) as client:
            for n in counter:
                started = time.perf_counter()
                if method == "tools/list":
                    await client.list_tools(cache_mode="bypass")
                else:
                    arguments = {"query": queries[n % len(queries)], "top_k": 10}
                    if version:
                        arguments["version"] = version
                    result = await client.call_tool("search_documentation", arguments)
                    errors += int(result.is_error)
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


# (role, what its command line holds), first match wins
ROLES = (
    ("MCP replica", "ServeReplica:wekadocs-mcp"),
    ("Serve proxy", "ProxyActor"),
    ("vector owner", "VectorOwner"),
    ("Neo4j", "org.neo4j."),
    ("Ray (raylet, GCS, other workers)", "ray"),
)


def role_of(process: psutil.Process) -> str:
    if process.pid == os.getpid():
        return "benchmark client"
    try:
        command = " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        return "other"
    return next((role for role, mark in ROLES if mark in command), "other")


def cpu_seconds() -> dict[tuple[int, float], tuple[str, float]]:
    """User + system seconds of every process now, by (pid, start time)."""
    held = {}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
            held[(process.pid, process.create_time())] = (role_of(process), times.user + times.system)
        except psutil.Error:
            continue
    return held


def spent_by_role(before: dict[tuple[int, float], tuple[str, float]],
                  after: dict[tuple[int, float], tuple[str, float]]) -> Counter[str]:
    """CPU seconds by role between two snapshots (processes that started in
    between count from zero; those that ended are not seen)."""
    spent: Counter[str] = Counter()
    for key, (role, seconds) in after.items():
        spent[role] += seconds - before.get(key, (role, 0.0))[1]
    return spent


def idle_background(seconds: float = 10.0) -> Counter[str]:
    """CPU seconds per second, by role, with no search running: Neo4j's and
    Ray's own housekeeping, which a slow level would otherwise count as
    search cost."""
    before = cpu_seconds()
    time.sleep(seconds)
    return Counter({role: spent / seconds for role, spent in spent_by_role(before, cpu_seconds()).items()})


def cpu_per_search(spent: Counter[str], searches: int, wall: float, idle: Counter[str]) -> str:
    """Milliseconds of CPU per search, in total, net of the idle background,
    and by role."""
    per = {role: 1000 * seconds / searches for role, seconds in spent.items()}
    total = sum(per.values())
    service = total - per.get("benchmark client", 0.0)
    net = service - 1000 * wall * sum(rate for role, rate in idle.items() if role != "benchmark client") / searches
    parts = ", ".join(f"{role} {ms:.1f}" for role, ms in sorted(per.items(), key=lambda kv: -kv[1]) if ms >= 0.05)
    return (f"{total:.1f} ms over all processes, {service:.1f} ms without the client, "
            f"{net:.1f} ms of it net of the idle background ({parts})")


def running_replicas() -> int:
    """MCP replicas up now: the autoscaler adds a second one under load."""
    app = serve.status().applications.get("wekadocs-mcp")
    states = app.deployments["MCPServer"].replica_states if app else {}
    return int(states.get("RUNNING", 0))


def max_replicas() -> int:
    app = next(a for a in load_serve_config().applications if a.name == "wekadocs-mcp")
    return int(app.deployments[0].autoscaling_config["max_replicas"])  # type: ignore[index]


def in_process(queries: list[str], version: str | None, rounds: int) -> tuple[list[float], float]:
    """Latencies in ms, and this process's CPU per search in ms."""
    settings = load_settings()
    toolbox = open_toolbox(settings, vector_store_for(settings))
    toolbox.search_documentation(queries[0], version=version)  # load the model, warm the caches
    latencies = []
    cpu_started = time.process_time()
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            toolbox.search_documentation(query, version=version, top_k=10)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies, 1000 * (time.process_time() - cpu_started) / len(latencies)


def alias_lookups(rounds: int = 500) -> list[float]:
    settings = load_settings()
    registry = Registry(vector_store_for(settings), settings.vector_alias)
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        registry.serving_name()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000/mcp")
    parser.add_argument("--qrels", type=Path, default=DEV)
    parser.add_argument("--version", default=None, help="version to search (default: the current version of each source)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions per level")
    args = parser.parse_args()
    queries = [q.query for q in load_qrels(args.qrels)]
    total = len(queries) * args.rounds
    connect(load_settings(), allow_in_process=False, log_to_driver=False)

    # Warm up under load until the autoscaler has brought every replica it
    # will (max_replicas, after upscale_delay_s), so each level measures the
    # steady state rather than a scale-up in the middle of it.
    wanted = max_replicas()
    deadline = time.monotonic() + 60
    while True:
        asyncio.run(drive(args.url, queries, 8, 2 * len(queries), args.version, "search"))
        if running_replicas() >= wanted or time.monotonic() > deadline:
            break
    print(f"MCP replicas running: {running_replicas()} (max_replicas {wanted})")
    floor, _, _ = asyncio.run(drive(args.url, queries, 1, total, args.version, "tools/list"))
    print(f"MCP tools/list through Serve, concurrency 1: {percentiles(floor)}")

    idle = idle_background()
    print(f"idle background: {1000 * sum(idle.values()):.1f} ms of CPU per second ("
          + ", ".join(f"{role} {1000 * rate:.1f}" for role, rate in idle.most_common() if rate >= 0.00005) + ")")
    served: dict[int, list[float]] = {}
    cpu: dict[int, str] = {}
    for level in args.levels:
        before = cpu_seconds()
        latencies, wall, errors = asyncio.run(drive(args.url, queries, level, max(total, 4 * level),
                                                    args.version, "search"))
        cpu[level] = cpu_per_search(spent_by_role(before, cpu_seconds()), len(latencies), wall, idle)
        served[level] = latencies
        print(f"search_documentation via MCP, concurrency {level:>2}: {percentiles(latencies)}  "
              f"{len(latencies) / wall:6.1f} req/s  errors {errors}  replicas {running_replicas()}")
    for level, line in cpu.items():
        print(f"CPU per search, concurrency {level:>2}: {line}")

    local, engine_cpu = in_process(queries, args.version, args.rounds)
    print(f"search_documentation in-process, sequential:   {percentiles(local)}  "
          f"(this process's CPU {engine_cpu:.1f} ms per search; Neo4j and the owner not counted)")
    base, mcp = statistics.median(local), statistics.median(served[min(served)])
    lookup = alias_lookups()
    print(f"alias lookup per search (owner actor call): {percentiles(lookup)}  "
          f"= {100 * statistics.median(lookup) / base:.1f}% of the in-process median")
    print(f"Serve + MCP overhead at concurrency {min(served)}: {mcp - base:+.1f} ms on the median "
          f"({mcp / base:.2f}x the in-process median)")


if __name__ == "__main__":
    main()
