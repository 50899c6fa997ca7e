"""Job entry points shared by the CLI and `ray job submit`: connect, run, clean up."""

from __future__ import annotations

from pathlib import Path

from cluster.ray_runtime import connect
from cluster.vector_owner import vector_store_for
from pipelines.ingest import IngestReport, Ingestor
from pipelines.reconcile import DriftReport, reconcile
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings

__all__ = ["run_ingest", "run_reconcile"]


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
