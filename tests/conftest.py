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

from cluster import services  # noqa: E402
from cluster.processes import free_port  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.settings import Settings, load_settings  # noqa: E402


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for an isolated stack: its own folder and free ports."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "neo4j_port": free_port(),
        "redis_port": free_port(),
        "ray_port": free_port(),
        "ray_dashboard_port": free_port(),
        "ray_client_port": free_port(),
        "ray_metrics_port": free_port(),
        "ray_num_cpus": 2,
        "ray_object_store_mb": 512,
        "neo4j_heap": "1g",
        "neo4j_pagecache": "256m",
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
    reports = services.up(settings)
    yield reports
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
