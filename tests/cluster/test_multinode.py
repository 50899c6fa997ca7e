"""A Ray cluster of one head and two worker nodes on this machine.

Its own stack (``services.up(workers=2)``: Neo4j, Redis, a Ray head and two
raylets joined to it, on free ports under a short temporary folder), driven
through the ``wekadocs`` CLI of this checkout (``python -m cluster.cli``) and
the official MCP client, as an operator would:

* an ingest's embedding actors run on the worker nodes (which offer ``embed``),
  the report counts rows per node, and graph and vectors agree;
* a worker node's raylet killed while an ingest embeds: Ray Data restarts the
  actors on the node left, every section ends with exactly one vector, and the
  report names the node lost;
* an MCP replica placed on a worker node (a Serve config whose MCPServer asks
  for ``query``) answers searches through the vector store's owner, which
  stays on the head;
* ``services up --workers 2`` / ``--workers 0`` / ``down``: the nodes come and
  go, ``status`` lists them, and no raylet of ours is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mcp import Client

from cluster import processes, services
from cluster.chaos.faults import alive_actors as live_actors
from cluster.chaos.faults import worker_raylet_pid
from cluster.processes import free_port
from cluster.ray_workers import list_nodes
from cluster.serve_runner import SERVE_CONFIG
from tests.cluster.test_cli import stack_env
from tests.conftest import make_settings
from wekadocs.errors import ServiceStartError
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# This checkout's CLI, whatever the console script of the environment points at.
WEKADOCS = [sys.executable, "-m", "cluster.cli"]
PARITY_FOLDERS = ("operation-guide/security",)
KILL_FOLDERS = ("additional-protocols/s3", "additional-protocols/smb-support")


@pytest.fixture(scope="module")
def multi(short_tmp: Path) -> Iterator[Settings]:
    settings = make_settings(short_tmp / "multi")
    # the raylets' workers import this checkout too (in CI, the same folder)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), previous) if p)
    try:
        services.up(settings, workers=2)
        yield settings
    finally:
        services.down(settings)
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


@pytest.fixture(scope="module")
def env(multi: Settings) -> dict[str, str]:
    # two embedding actors (one per worker), one text per forward pass and
    # eight per block: many small blocks, so both actors get work and a kill
    # lands half-way
    return {**stack_env(multi), "PYTHONPATH": str(REPO), "WEKADOCS_EMBEDDING_ACTORS": "2",
            "WEKADOCS_EMBEDDING_BATCH_SIZE": "1", "WEKADOCS_RAY_NUM_CPUS": str(multi.ray_num_cpus),
            "WEKADOCS_RAY_OBJECT_STORE_MB": str(multi.ray_object_store_mb)}


def cli(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run([*WEKADOCS, *args], cwd=REPO, env=_env(env), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"wekadocs {' '.join(args)}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.splitlines()[-1]) if "--json" in args else result.stdout


def _env(env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("WEKADOCS_", "NEO4J_", "REDIS_", "QDRANT_", "RAY_ADDRESS"))}
    return {**clean, **env}


def docs_tree(corpus_root: Path, root: Path, folders: tuple[str, ...]) -> Path:
    for folder in folders:
        shutil.copytree(corpus_root / "4.4" / folder, root / folder)
    return root


def nodes(settings: Settings) -> dict[str, dict[str, Any]]:
    """The alive nodes by name (head, ray-worker-1, ...), as `services status` lists them."""
    return {str(node["name"]): node for node in list_nodes(settings)}


def alive_actors(settings: Settings, class_fragment: str) -> list[dict[str, Any]]:
    return [a for a in live_actors(settings) if class_fragment in str(a.get("class_name"))]


def texts_and_sections(graph: GraphStore, source: str) -> tuple[int, int]:
    row = graph.read("MATCH (d:Document {source: $source})-[:HAS_SECTION]->(s:Section) "
                     "RETURN count(DISTINCT s.checksum) AS texts, count(s) AS sections", source=source)[0]
    return int(row["texts"]), int(row["sections"])


def embedded(graph: GraphStore, source: str, version: str) -> int:
    return int(graph.read("MATCH (d:Document {source: $source})-[:HAS_SECTION]->(s:Section) "
                          "WHERE $version IN coalesce(s.embedded_in, []) RETURN count(s) AS n",
                          source=source, version=version)[0]["n"])


def assert_parity(env: dict[str, str]) -> dict[str, Any]:
    drift = cli(env, "reconcile", "--json")
    assert (drift["missing"], drift["stale"], drift["extra"], drift["drift_pct"]) == (0, 0, 0, 0.0), drift
    assert drift["points"] == drift["sections"] > 0
    return drift


def test_an_ingest_spreads_its_embedding_actors_over_the_worker_nodes_with_parity(
        multi: Settings, env: dict[str, str], corpus_root: Path, short_tmp: Path) -> None:
    listed = nodes(multi)
    assert set(listed) == {"head", "ray-worker-1", "ray-worker-2"}
    workers = {listed[name]["node_id"] for name in ("ray-worker-1", "ray-worker-2")}
    assert all(listed[name]["resources"] == {"CPU": 1.0, "embed": 1.0, "query": 1.0} for name in
               ("ray-worker-1", "ray-worker-2"))
    assert "embed" not in listed["head"]["resources"]

    root = docs_tree(corpus_root, short_tmp / "multi-parity", PARITY_FOLDERS)
    report = cli(env, "ingest", str(root), "--source", "parity", "--version", "1.0", "--json")
    assert not report["errors"] and report["nodes_lost"] == []
    per_node = report["embedded_per_node"]
    assert set(per_node) == workers, per_node  # on both workers, never on the head
    assert sum(per_node.values()) == report["embeddings_computed"] > 0
    with GraphStore.connect(multi) as graph:
        texts, sections = texts_and_sections(graph, "parity")
    assert report["embeddings_computed"] + report["embeddings_reused"] == texts
    assert report["sections_written"] == sections
    assert_parity(env)
    # the embedded store's owner stays beside its folder, on the head
    owners = alive_actors(multi, "VectorOwner")
    assert [a["node_id"] for a in owners] == [listed["head"]["node_id"]]


def test_a_worker_node_killed_during_an_ingest_loses_no_section(
        multi: Settings, env: dict[str, str], corpus_root: Path, short_tmp: Path) -> None:
    listed = nodes(multi)
    victim = listed["ray-worker-1"]["node_id"]
    root = docs_tree(corpus_root, short_tmp / "multi-kill", KILL_FOLDERS)
    job = subprocess.Popen([*WEKADOCS, "ingest", str(root), "--source", "kill", "--version", "1.0", "--json"],
                           cwd=REPO, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with GraphStore.connect(multi) as graph:
            # the graph is written before anything is embedded: wait for the first
            # stored vectors while an embedding actor works on the victim
            deadline = time.monotonic() + 300
            while True:
                assert job.poll() is None, f"the ingest ended before the kill: {job.stderr.read()[-3000:]}"
                assert time.monotonic() < deadline, "no embedding actor on ray-worker-1 in 5 minutes"
                on_victim = [a for a in alive_actors(multi, "EmbedBatch") if a["node_id"] == victim]
                done = embedded(graph, "kill", multi.embedding_version)
                if on_victim and done:
                    break
                time.sleep(0.5)
            _, sections = texts_and_sections(graph, "kill")
            raylet = worker_raylet_pid(multi, "ray-worker-1")
            os.kill(raylet, signal.SIGKILL)
            assert done < sections, "the embedding finished before the kill: use a larger tree"
            out, err = job.communicate(timeout=600)
            assert job.returncode == 0, err[-3000:]
            report = json.loads(out.splitlines()[-1])
            texts, sections = texts_and_sections(graph, "kill")
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert report["nodes_lost"] == [victim], report
    assert any(victim in warning for warning in report["warnings"])
    assert not report["errors"] and report["sections_written"] == sections
    # each text encoded once and stored: the blocks of the dead node ran again elsewhere
    assert report["embeddings_computed"] + report["embeddings_reused"] == texts
    assert sum(report["embedded_per_node"].values()) == report["embeddings_computed"]
    assert listed["ray-worker-2"]["node_id"] in report["embedded_per_node"]
    assert_parity(env)  # one point per section, none missing, none extra
    status = {r["name"]: r["state"] for r in cli(env, "services", "status", "--json")["services"]}
    assert status["ray-worker-1"] == "stopped" and status["ray-worker-2"] == "running"


def search(url: str, query: str) -> dict[str, Any]:
    async def go() -> Any:
        async with Client(url) as client:
            return await client.call_tool("search_documentation", {"query": query, "top_k": 3})

    result = asyncio.run(go())
    assert not result.is_error, result.content
    return dict(result.structured_content)


def test_an_mcp_replica_on_a_worker_node_answers_through_the_owner_on_the_head(
        multi: Settings, env: dict[str, str], short_tmp: Path) -> None:
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    mcp = next(d for app in config["applications"] for d in app["deployments"] if d["name"] == "MCPServer")
    mcp["ray_actor_options"]["resources"] = {"query": 0.001}  # only worker nodes offer it
    mcp["autoscaling_config"].update(min_replicas=1, max_replicas=1)
    placed = short_tmp / "multi-serve.yaml"
    placed.write_text(yaml.safe_dump(config))

    served = cli(env, "serve", "--detach", "--host", "127.0.0.1", "--port", str(free_port()),
                 "--serve-config", str(placed), "--json")
    listed = nodes(multi)
    head = listed["head"]["node_id"]
    replicas = alive_actors(multi, "ServeReplica:wekadocs-mcp:MCPServer")
    assert len(replicas) == 1 and replicas[0]["node_id"] != head
    assert replicas[0]["node_id"] in {n["node_id"] for name, n in listed.items() if name.startswith("ray-worker-")}

    found = search(served["url"], "configure an S3 bucket policy")
    assert found["evidence"], found
    assert found["diagnostics"]["collection"] == multi.vector_collection  # the vectors answered
    health = httpx.get(served["health"], timeout=30).json()
    assert health["vectors"] == "ok" and health["collection"] == multi.vector_collection
    assert [a["node_id"] for a in alive_actors(multi, "VectorOwner")] == [head]


def test_workers_come_and_go_and_down_leaves_no_raylet_of_ours(multi: Settings, env: dict[str, str]) -> None:
    # the worker killed above is recorded: `up` starts it again, keeps the other
    up = {r["name"]: r for r in cli(env, "services", "up", "--workers", "2", "--json")["services"]}
    assert up["ray-worker-1"]["state"] == "started" and up["ray-worker-2"]["state"] == "running"
    assert [n["name"] for n in cli(env, "services", "status", "--json")["nodes"]] == [
        "head", "ray-worker-1", "ray-worker-2"]
    again = {r["name"]: r for r in cli(env, "services", "up", "--json")["services"]}  # the count stays
    assert {again[n]["pid"] for n in ("ray-worker-1", "ray-worker-2")} == {
        up[n]["pid"] for n in ("ray-worker-1", "ray-worker-2")}
    markers = [w.marker for w in services.workers_for(multi)]
    assert len(markers) == 2 and all(processes.processes_matching(m) for m in markers)

    gone = {r["name"]: r["state"] for r in cli(env, "services", "up", "--workers", "0", "--json")["services"]}
    assert gone["ray-worker-1"] == gone["ray-worker-2"] == "stopped"
    assert all(processes.processes_matching(m) == [] for m in markers)
    for name in ("ray-worker-1", "ray-worker-2"):
        assert processes.session_members(up[name]["pid"]) == [], name
    status = cli(env, "services", "status", "--json")
    assert [n["name"] for n in status["nodes"]] == ["head"]
    assert {r["name"] for r in status["services"]} == {"neo4j", "redis", "ray"}

    head_pid = {r["name"]: r["pid"] for r in status["services"]}["ray"]
    cli(env, "services", "down")
    assert processes.session_members(head_pid) == []
    assert _ours(multi) == [], "processes naming the stack's folder are still running"


def _ours(settings: Settings) -> list[str]:
    """Command lines of live processes that name this stack's data dir."""
    folder = str(settings.data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if folder in cmdline and processes.is_alive(int(entry.name)):
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found


def test_workers_are_refused_for_a_cluster_that_is_not_ours(short_tmp: Path) -> None:
    external = make_settings(short_tmp / "multi-external", ray_address="127.0.0.1:1")
    with pytest.raises(ServiceStartError, match="worker nodes join our own Ray head.*RAY_ADDRESS"):
        services.up(external, workers=1)
    assert not (external.data_dir / "run").exists(), "refused, yet something was started"
