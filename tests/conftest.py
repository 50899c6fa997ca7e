"""Session fixtures: a real Neo4j, Redis and Ray head, started by our own code.

The stack runs under a short temporary data dir on free ports, so a developer's
own `wekadocs services up` stack (default ports) is never touched. The Neo4j
jars come from the shared cache (WEKADOCS_CACHE_DIR, default ~/.cache/wekadocs).
"""

from __future__ import annotations

import os

# Ray reads its auth mode when imported: token auth stays on in tests too.
os.environ.setdefault("RAY_AUTH_MODE", "token")

import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

from ray import serve  # noqa: E402

from cluster import services  # noqa: E402
from cluster.freshness import stop_freshness  # noqa: E402
from cluster.processes import free_port, free_ports  # noqa: E402
from cluster.serve_runner import ServedApp, deploy  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.query.tools import Toolbox  # noqa: E402
from wekadocs.settings import Settings, load_settings  # noqa: E402


# Property tests (Hypothesis): `ci`, the default, is the same 200 examples per
# property on every run (derandomized, no example database), so a red CI is
# reproducible and CI's time is fixed. `long` explores afresh each run and
# keeps failures in .hypothesis/ to replay them first:
#   HYPOTHESIS_PROFILE=long ./dev test tests/pipelines/test_parser_properties.py …
hypothesis_settings.register_profile(
    "ci", max_examples=200, derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "long", max_examples=20_000, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for an isolated stack: its own folder and free ports."""
    ports = dict(zip(("neo4j_port", "redis_port", "ray_port", "ray_dashboard_port", "ray_client_port",
                      "ray_metrics_port", "prometheus_port"), free_ports(7)))
    values: dict[str, object] = {
        "data_dir": data_dir,
        **ports,
        "ray_num_cpus": 2,
        "ray_object_store_mb": 512,
        "neo4j_heap": "1g",
        "neo4j_pagecache": "256m",
        "prometheus_scrape_s": 5,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
def short_tmp() -> Iterator[Path]:
    """A short path: Ray's unix sockets under it must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="wd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(short_tmp: Path) -> Settings:
    return make_settings(short_tmp / "main")


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[list[services.ServiceReport]]:
    try:  # with Prometheus: tests/cluster/test_monitoring.py queries it
        yield services.up(settings, monitoring=True)
    finally:  # also when `up` failed half-way: what did start is recorded, and stops here
        services.down(settings)


@pytest.fixture(scope="session")
def graph(settings: Settings, stack: object) -> Iterator[GraphStore]:
    with GraphStore.connect(settings) as store:
        yield store


@pytest.fixture(scope="session")
def ray_connection(settings: Settings, stack: object) -> Iterator[object]:
    from cluster.ray_runtime import connect, disconnect

    connection = connect(settings, allow_in_process=False)
    yield connection
    disconnect()


# --- a real slice of the WEKA 4.4 docs, ingested once for the query and MCP tests ---
# Ingested as version 9.9 of its own source: the newest version in the shared
# test graph (the default a query searches), so no other test's pages mix in.

SLICE_VERSION = "9.9"
SLICE_SOURCE = "weka-query-slice"
SLICE_FOLDERS = (
    "additional-protocols/nfs-support",
    "licensing",
    "weka-system-overview",
    "operation-guide/alerts",
    "operation-guide/background-tasks",
)


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """The shared WEKA corpus; tests that need it say so clearly when it is missing."""
    default = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "weka-docs"
    root = Path(os.environ.get("WEKADOCS_CORPUS", default))
    if not (root / "4.4").is_dir():
        pytest.fail(f"the WEKA corpus is missing at {root} (set WEKADOCS_CORPUS)")
    return root


@pytest.fixture(scope="session")
def slice_root(short_tmp: Path, corpus_root: Path) -> Path:
    corpus = corpus_root / "4.4"
    root = short_tmp / "query-slice"
    for folder in SLICE_FOLDERS:
        shutil.copytree(corpus / folder, root / folder)
    return root


@pytest.fixture(scope="session")
def ingested(settings: Settings, graph: GraphStore, ray_connection: object, slice_root: Path) -> dict[str, int]:
    from cluster.vector_owner import vector_store_for
    from pipelines.ingest import Ingestor
    from wekadocs.graph_schema import apply_schema

    apply_schema(graph)
    report = Ingestor(settings, graph, vector_store_for(settings), progress=False).run(
        slice_root, source=SLICE_SOURCE, version=SLICE_VERSION)
    assert not report.errors, report.errors
    return report.as_dict()


@pytest.fixture(scope="session")
def toolbox(settings: Settings, graph: GraphStore, ingested: dict[str, int]) -> Iterator[Toolbox]:
    from cluster.vector_owner import vector_store_for
    from wekadocs.query.assembly import open_toolbox

    yield open_toolbox(settings, vector_store_for(settings), graph=graph)


def graph_fingerprint(graph: GraphStore) -> tuple[object, ...]:
    """Counts and a label/type histogram: any write would change them."""
    nodes = graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    rels = graph.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    labels = graph.read("MATCH (n) UNWIND labels(n) AS l RETURN l, count(*) AS c ORDER BY l")
    props = graph.read("MATCH (n:Section) RETURN sum(size(keys(n))) AS k")[0]["k"]
    return nodes, rels, tuple((r["l"], r["c"]) for r in labels), props


@pytest.fixture(scope="module")
def served(settings: Settings, ingested: dict[str, int], ray_connection: object) -> Iterator[ServedApp]:
    """The MCP and webhook apps on the session stack, for one test module."""
    app = deploy(settings, host="127.0.0.1", port=free_port())
    yield app
    serve.shutdown()
    stop_freshness(settings)  # deploy started the consumer: it would read other tests' queue entries
