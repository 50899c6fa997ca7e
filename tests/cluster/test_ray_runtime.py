from __future__ import annotations

import os

import httpx
import numpy as np
import pytest
import ray

from cluster.ray_head import ray_auth_token
from cluster.vector_owner import vector_store_for
from wekadocs.errors import VectorStoreUnavailable
from wekadocs.settings import Settings
from wekadocs.vectors import VectorPoint


def test_a_ray_task_runs_on_our_head(ray_connection: object, settings: Settings) -> None:
    @ray.remote
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
    assert ray_connection.kind == "head"  # type: ignore[attr-defined]


def test_workers_run_at_the_databases_priority(ray_connection: object) -> None:
    """Ray's default nice 15 would let the co-located Neo4j starve the replicas."""
    @ray.remote
    def niceness() -> int:
        return os.nice(0)

    assert ray.get(niceness.remote()) == 0


def test_dashboard_requires_the_token(ray_connection: object, settings: Settings) -> None:
    url = f"{settings.dashboard_url}/api/version"
    assert httpx.get(url, timeout=5).status_code == 401
    authorised = httpx.get(url, headers={"Authorization": f"Bearer {ray_auth_token()}"}, timeout=5)
    assert authorised.status_code == 200
    assert authorised.json()["ray_version"] == "2.60.0"


def test_embedded_vectors_have_one_owner_for_all_workers(ray_connection: object, settings: Settings) -> None:
    store = vector_store_for(settings)
    store.create_collection("owner-test", 4)
    store.upsert("owner-test", [VectorPoint("aa" * 32, [1.0, 0.0, 0.0, 0.0], {"version": "1"})])

    @ray.remote
    def search_from_a_worker(settings: Settings) -> list[str]:
        worker_store = vector_store_for(settings)
        worker_store.upsert("owner-test", [VectorPoint("bb" * 32, [0.0, 1.0, 0.0, 0.0], {"version": "2"})])
        return [hit.id for hit in worker_store.search("owner-test", [1.0, 0.1, 0.0, 0.0], 2)]

    assert ray.get(search_from_a_worker.remote(settings)) == ["aa" * 32, "bb" * 32]
    assert store.count("owner-test", {"version": "2"}) == 1
    assert store.engine.startswith("qdrant-edge")
    assert np.isclose(store.search("owner-test", [0.0, 1.0, 0.0, 0.0], 1)[0].score, 1.0)
    store.drop_collection("owner-test")


def test_an_owner_without_a_method_reads_as_unavailable(ray_connection: object, settings: Settings) -> None:
    """A detached owner started by older code lacks newer methods: callers get
    the outage error the query engine degrades on, with the way out."""
    store = vector_store_for(settings)
    with pytest.raises(VectorStoreUnavailable, match="runs older code .*services down"):
        store._call("a_method_from_the_future", "c")  # type: ignore[attr-defined]
