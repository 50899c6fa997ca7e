"""Building a ready :class:`Toolbox` from settings: graph, validator, vectors, models."""

from __future__ import annotations

from wekadocs.cypher_guard import CypherGuard
from wekadocs.embedder import Embedder, ModelCache, ModelSpec
from wekadocs.errors import VectorStoreError
from wekadocs.graph_store import GraphStore
from wekadocs.query.engine import QueryEngine
from wekadocs.query.tools import Toolbox
from wekadocs.settings import Settings
from wekadocs.vectors import VectorStore
from wekadocs.vectors.serving import ServingModel

__all__ = ["open_toolbox"]


def open_toolbox(settings: Settings, vectors: VectorStore | None, *, graph: GraphStore | None = None) -> Toolbox:
    """``vectors`` is None when the vector store cannot be reached: the engine
    then answers from keyword + graph and marks its answers degraded.

    The query model runs on CPU with one thread, in ONNX Runtime by default
    (``settings.query_runtime``): one short text per query gains nothing from
    a GPU or from intra-op threads, and the replicas stay schedulable on
    CPU-only nodes.
    """
    graph = graph or GraphStore.connect(settings)
    serving = None
    if vectors is not None:
        runtime = "torch" if settings.query_precision == "bfloat16" else settings.query_runtime
        models = ModelCache(lambda spec: Embedder(spec.name, dims=spec.dims, device="cpu", batch_size=8, threads=1,
                                                  precision=settings.query_precision, runtime=runtime,
                                                  onnx_cache=settings.cache_dir / "onnx"))
        serving = ServingModel(settings.vector_alias, models,
                               fallback=ModelSpec(settings.embedding_model, settings.embedding_dims))
        try:
            serving.current(vectors)  # load the serving model now, not on the first question
        except VectorStoreError:
            models.get(serving.fallback)  # nothing ingested yet: the model the first ingest will use
    return Toolbox(QueryEngine(CypherGuard(graph), vectors, serving))
