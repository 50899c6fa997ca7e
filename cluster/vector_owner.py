"""The single owner of the embedded vector store, as a named Ray actor.

Qdrant Edge (like qdrant-client's local mode) lets one process open a folder.
So in a Ray application one detached actor opens it, and every pipeline
worker, Serve replica and CLI command reaches it through ``ActorVectorStore``,
which implements the same ``VectorStore`` interface by forwarding each call.
With ``QDRANT_URL`` set there is no owner: everyone talks to the server.

**Placement.** The folder is on the machine where the data dir is, which is
the head's: ``services up`` starts the head there, and a KubeRay head keeps
the data dir on its volume. So the owner asks for a sliver of the head's
built-in resource ``node:__internal_head__`` (as Serve's controller does) and
is never started on a worker node, beside an empty folder of its own: a
restart after a crash waits for the head rather than opening a new, empty
store elsewhere. Callers on any node (Serve replicas, Ray Data actors) reach
it through its handle. A cluster whose readers and writers span machines in
production points ``QDRANT_URL`` at a Qdrant server instead; then there is
nothing to pin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import ray
from ray.actor import ActorHandle

from wekadocs.errors import VectorStoreUnavailable
from wekadocs.settings import Settings
from wekadocs.vectors import PAGE_KEYS, VectorHit, VectorPoint, VectorStore, Where, open_vector_store

__all__ = ["VectorOwner", "ActorVectorStore", "vector_store_for", "owner_name", "OWNER_PLACEMENT"]

# Ray's own name for the head's resource (ray._common.constants.HEAD_NODE_RESOURCE_NAME).
OWNER_PLACEMENT = {"node:__internal_head__": 0.001}


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=8)
class VectorOwner:
    """Holds the embedded store; the store's own lock orders concurrent calls."""

    def __init__(self, settings: Settings) -> None:
        self._store = open_vector_store(settings)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self._store, method)(*args, **kwargs)
        return list(result) if method == "scroll_points" else result

    def engine(self) -> str:
        return self._store.engine

    def shutdown(self) -> None:
        self._store.close()


def owner_name(settings: Settings) -> str:
    """One owner per vector folder, so two data dirs on one cluster don't clash."""
    digest = hashlib.sha256(str(settings.vectors_dir).encode()).hexdigest()[:12]
    return f"wekadocs-vectors-{digest}"


class ActorVectorStore(VectorStore):
    """The ``VectorStore`` interface, served by the owner actor."""

    def __init__(self, handle: ActorHandle, engine: str) -> None:
        self._handle = handle
        self.engine = f"{engine} (via actor)"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return ray.get(self._handle.call.remote(method, *args, **kwargs))
        except ray.exceptions.RayActorError as exc:
            raise VectorStoreUnavailable(f"the vector store owner is gone: {exc}") from exc
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, AttributeError):
                # A detached owner outlives upgrades: one started by older code
                # lacks newer methods. Callers treat this like an outage.
                raise VectorStoreUnavailable(
                    f"the vector store owner runs older code (no {method!r}); restart the stack "
                    "(`wekadocs services down && wekadocs services up`)") from None
            raise exc.as_instanceof_cause() from None

    def create_collection(self, name: str, dims: int) -> bool:
        return bool(self._call("create_collection", name, dims))

    def drop_collection(self, name: str) -> bool:
        return bool(self._call("drop_collection", name))

    def collections(self) -> list[str]:
        return list(self._call("collections"))

    def set_alias(self, alias: str, collection: str) -> None:
        self._call("set_alias", alias, collection)

    def aliases(self) -> dict[str, str]:
        return dict(self._call("aliases"))

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        self._call("upsert", collection, list(points))

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        self._call("delete", collection, list(ids))

    def delete_where(self, collection: str, where: Where) -> None:
        self._call("delete_where", collection, where)

    def search(
        self, collection: str, vector: Sequence[float], top_k: int, where: Where | None = None
    ) -> list[VectorHit]:
        return list(self._call("search", collection, list(vector), top_k, where))

    def similarities(self, collection: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        return self._call("similarities", collection, vector, ids)

    def count(self, collection: str, where: Where | None = None) -> int:
        return int(self._call("count", collection, where))

    def vectors_for_checksums(self, collection: str, checksums: Sequence[str]) -> dict[str, list[float]]:
        # one round trip instead of one per page
        return dict(self._call("vectors_for_checksums", collection, list(checksums)))

    def scroll_points(self, collection: str, where: Where | None = None) -> Iterator[tuple[str, str]]:
        return iter(self._call("scroll_points", collection, where))

    def scroll_page(
        self, collection: str, where: Where | None, offset: object, *, with_vectors: bool,
        keys: Sequence[str] | None = PAGE_KEYS,
    ) -> tuple[list[tuple[dict[str, Any], list[float] | None]], object]:
        return self._call("scroll_page", collection, where, offset, with_vectors=with_vectors, keys=keys)

    def close(self) -> None:
        """Nothing to release here: the owner keeps the store open for others."""


def vector_store_for(settings: Settings) -> VectorStore:
    """The store as a Ray process should use it (Ray must be initialised)."""
    if settings.qdrant_url:
        return open_vector_store(settings)
    handle = VectorOwner.options(
        name=owner_name(settings),
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
        resources=OWNER_PLACEMENT,  # where the folder is: see the module's docstring
    ).remote(settings)
    return ActorVectorStore(handle, ray.get(handle.engine.remote()))
