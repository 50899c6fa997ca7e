"""Chaos drill: each fault of ``cluster/chaos`` injected into a live private
stack under load; prints requests sent/failed, events lost/duplicated and
recovery seconds per scenario.

1. Starts a private stack (Neo4j, Redis with its append-only file, a Ray
   head, on free ports in a temporary folder), ingests a slice of the WEKA
   4.4 docs (``--folders``, from ``WEKADOCS_CORPUS``, default
   ``../shared/corpus/weka-docs``) and deploys the service as
   ``wekadocs serve`` does (MCP, webhooks, freshness actors).
2. Adds a local git repository as a source with a webhook secret.
3. Runs the scenarios (``--scenarios``, default all), in this order:
   ``vector-owner`` (SIGKILL the vector store's owner under a search load),
   ``replica`` (SIGKILL one of two MCP replicas under load), ``redis``
   (stop and start Redis during a webhook burst), ``actors`` (SIGKILL the
   consumer while it holds read entries, and the supervisor), ``neo4j``
   (SIGSTOP Neo4j during a burst, then SIGKILL, then start it),
   ``neo4j-ingest`` (the same during ``wekadocs ingest`` of a larger tree, then
   the ingest run again and ``reconcile``), ``worker``
   (two worker nodes join; SIGKILL one's raylet while a ``wekadocs reembed``
   job's embedding actor runs on it).
4. Prints the table, or with ``--json`` one JSON object per line.

Recovery seconds are measured, never asserted; the exit status is 1 when a
scenario failed a call after retries, lost or duplicated an event, or did
not recover. (The worker-node kill during an ingest is also a test:
``tests/cluster/test_multinode.py``.)

    .venv/bin/python perf/chaos.py [--scenarios vector-owner redis] [--pages 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ray import serve  # noqa: E402

from cluster import services  # noqa: E402
from cluster.chaos import (  # noqa: E402
    Outcome,
    PushTarget,
    format_table,
    freshness_actors_killed,
    neo4j_stopped,
    neo4j_stopped_during_ingest,
    redis_restarted,
    serve_replica_killed,
    vector_owner_killed,
    worker_killed_during_reembed,
)
from cluster.chaos.clients import PushSender  # noqa: E402
from cluster.freshness import stop_freshness  # noqa: E402
from cluster.processes import free_port  # noqa: E402
from cluster.ray_runtime import connect, disconnect  # noqa: E402
from cluster.serve_runner import ServedApp, deploy  # noqa: E402
from cluster.source_admin import SourceAdmin  # noqa: E402
from cluster.vector_owner import vector_store_for  # noqa: E402
from perf.private_stack import corpus_version, private_settings, stack_env  # noqa: E402
from pipelines.ingest import Ingestor  # noqa: E402
from tests.git_repo import Repo  # noqa: E402
from wekadocs.graph_schema import apply_schema  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.settings import Settings  # noqa: E402
from wekadocs.source_registry import SourceConfig  # noqa: E402

VERSION = "4.4"
SECRET_ENV = "WEKADOCS_CHAOS_HOOK_SECRET"
SCENARIOS = ("vector-owner", "replica", "redis", "actors", "neo4j", "neo4j-ingest", "worker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--folders", nargs="*", default=["licensing", "operation-guide/alerts"],
                        help="folders of the 4.4 corpus to ingest")
    parser.add_argument("--scenarios", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--pages", type=int, default=30, help="pages (one delivery each) per webhook burst")
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario")
    args = parser.parse_args()
    corpus = corpus_version(VERSION)
    work = Path(tempfile.mkdtemp(prefix="wdc-"))
    settings = private_settings(work)
    print(f"private stack in {work}", file=sys.stderr)
    try:
        outcomes = drill(settings, corpus, args, work)
    finally:
        try:
            stop_freshness(settings)
            serve.shutdown()
        except Exception as exc:  # noqa: BLE001 — tearing down whatever is left
            print(f"teardown: {exc}", file=sys.stderr)
        disconnect()
        services.down(settings)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        for outcome in outcomes:
            print(json.dumps(outcome.as_dict(), default=str))
    else:
        print(format_table(outcomes))
    bad = [o for o in outcomes if o.failed or o.lost or o.duplicated or o.recovery_s is None]
    return 1 if bad else 0


def drill(settings: Settings, corpus: Path, args: argparse.Namespace, work: Path) -> list[Outcome]:
    started = time.perf_counter()
    # worker nodes' processes import this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    services.up(settings, workers=2 if "worker" in args.scenarios else 0)
    connect(settings, log_to_driver=False)
    slice_root = work / "corpus"
    for folder in args.folders:
        shutil.copytree(corpus / folder, slice_root / folder)
    with GraphStore.connect(settings) as graph:
        apply_schema(graph)
        Ingestor(settings, graph, vector_store_for(settings), progress=False).run(
            slice_root, source="weka-docs", version=VERSION)
    served = deploy(settings, host="127.0.0.1", port=free_port())
    target = push_target(settings, served, work)
    print(f"stack up, slice ingested, service deployed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    base = served.url.removesuffix("/mcp")
    runs: dict[str, Callable[[], Outcome]] = {
        "vector-owner": lambda: vector_owner_killed(settings, served.url, version=VERSION),
        "replica": lambda: serve_replica_killed(settings, base, version=VERSION),
        "redis": lambda: redis_restarted(target, pages=args.pages),
        "actors": lambda: freshness_actors_killed(target, pages=args.pages),
        "neo4j": lambda: neo4j_stopped(target, pages=args.pages),
        "neo4j-ingest": lambda: neo4j_stopped_during_ingest(settings, stack_env(settings), ingest_tree(corpus, work)),
        "worker": lambda: worker_killed_during_reembed(settings, job_env(settings)),
    }
    outcomes = []
    for name in SCENARIOS:
        if name in args.scenarios:
            print(f"scenario {name} ...", file=sys.stderr)
            outcomes.append(runs[name]())
            print(format_table(outcomes[-1:]), file=sys.stderr)
    return outcomes


def ingest_tree(corpus: Path, work: Path) -> Path:
    """Folders of the corpus not in the slice: enough pages that the fault lands mid-ingest."""
    tree = work / "ingest-tree"
    if not tree.exists():
        for folder in ("weka-system-overview", "monitor-the-weka-cluster"):
            if (corpus / folder).is_dir():
                shutil.copytree(corpus / folder, tree / folder)
    return tree


def job_env(settings: Settings) -> dict[str, str]:
    """The stack's environment for the re-embed job; two embedding actors, one
    text per forward pass: many small blocks, so the kill lands half-way."""
    return {**stack_env(settings), "WEKADOCS_EMBEDDING_ACTORS": "2", "WEKADOCS_EMBEDDING_BATCH_SIZE": "1"}


def push_target(settings: Settings, served: ServedApp, work: Path) -> PushTarget:
    """A local git repository added as a source; its seed page applied by the first poll."""
    secret = os.urandom(16).hex()
    repo = Repo(work / "chaos-repo")
    repo.write("docs/seed.md", "# Chaos seed\n\nThe page the first poll brings in.\n")
    repo.commit("seed")
    SourceAdmin(settings).add(SourceConfig(name="chaos", kind="git", url=str(repo.root), docs_path="docs",
                                           interval_s=3600, webhook_secret_env=SECRET_ENV),
                              environ={SECRET_ENV: secret})
    target = PushTarget(settings, "chaos", "main", "docs", repo, PushSender(served.webhooks_url, secret,
                                                                             str(repo.root)))
    missing, _ = target.drain(["seed.md"], 0.0, 300)
    if missing:
        raise SystemExit("the chaos source's first poll did not apply its seed page")
    return target


if __name__ == "__main__":
    sys.exit(main())
