"""Job entry points shared by the CLI and `ray job submit`: connect, run, clean up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cluster.ray_runtime import connect
from cluster.vector_owner import vector_store_for
from pipelines.ingest import IngestReport, Ingestor
from pipelines.reconcile import DriftReport, reconcile
from pipelines.reembed import ReembedReport, reembed
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings

__all__ = ["run_ingest", "run_reconcile", "run_reembed"]


def run_ingest(settings: Settings, root: Path, source: str, version: str, *, progress: bool) -> IngestReport:
    connect(settings)
    with GraphStore.connect(settings) as graph:
        apply_schema(graph)  # idempotent; a fresh database gets its constraints first
        ingestor = Ingestor(settings, graph, vector_store_for(settings), progress=progress)
        return ingestor.run(root, source=source, version=version)


def run_reconcile(settings: Settings, *, repair: bool) -> DriftReport:
    connect(settings)
    with GraphStore.connect(settings) as graph:
        return reconcile(settings, graph, vector_store_for(settings), repair=repair)


def run_reembed(settings: Settings, *, embedding_version: str, model: str, dims: int | None, switch: bool,
                rollback: bool = False, say: Callable[[str], None] = print) -> ReembedReport:
    """The re-embed job (``rollback``: only to a collection already recorded, with its own model)."""
    connect(settings)
    with GraphStore.connect(settings) as graph:
        apply_schema(graph)  # the graph's embedding marks may predate re-embedding
        return reembed(settings, graph, vector_store_for(settings), embedding_version=embedding_version,
                       model=model, dims=dims, switch=switch, say=say, require_record=rollback)
