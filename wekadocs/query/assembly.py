"""Building a ready :class:`Toolbox` from settings: graph, validator, vectors, model."""

from __future__ import annotations

from wekadocs.cypher_guard import CypherGuard
from wekadocs.embedder import Embedder
from wekadocs.graph_store import GraphStore
from wekadocs.query.engine import QueryEngine
from wekadocs.query.tools import Toolbox
from wekadocs.settings import Settings
from wekadocs.vectors import VectorStore

__all__ = ["open_toolbox"]


def open_toolbox(settings: Settings, vectors: VectorStore | None, *, graph: GraphStore | None = None) -> Toolbox:
    """``vectors`` is None when the vector store cannot be reached: the engine
    then answers from keyword + graph and marks its answers degraded.

    The query model runs on CPU with one thread: one short text per query
    gains nothing from a GPU or from intra-op threads, and the replicas stay
    schedulable on CPU-only nodes.
    """
    graph = graph or GraphStore.connect(settings)
    encoder = None
    if vectors is not None:
        encoder = Embedder(settings.embedding_model, device="cpu", batch_size=8, threads=1,
                           precision=settings.query_precision).encode
    engine = QueryEngine(CypherGuard(graph), vectors, encoder, settings.vector_alias)
    return Toolbox(engine)
