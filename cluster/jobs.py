"""Job entry points shared by the CLI and `ray job submit`: connect, run, clean up.

``log_to_driver=False`` keeps Ray's forwarded worker logs out of this
process's output (a ``--json`` command's; the CLI also moves stdout aside,
since Ray prints the raylets' error messages there regardless). They stay in
the Ray session's logs and the dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cluster.job_metrics import record_drift, record_reembed
from cluster.ray_runtime import connect
from cluster.vector_owner import vector_store_for
from pipelines.ingest import IngestReport, Ingestor
from pipelines.reconcile import DriftReport, reconcile
from pipelines.reembed import ReembedReport, reembed
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings

__all__ = ["run_ingest", "run_reconcile", "run_reembed"]


def run_ingest(settings: Settings, root: Path, source: str, version: str, *, progress: bool,
               log_to_driver: bool = True) -> IngestReport:
    connect(settings, log_to_driver=log_to_driver)
    with GraphStore.connect(settings) as graph:
        apply_schema(graph)  # idempotent; a fresh database gets its constraints first
        ingestor = Ingestor(settings, graph, vector_store_for(settings), progress=progress)
        return ingestor.run(root, source=source, version=version)


def run_reconcile(settings: Settings, *, repair: bool, log_to_driver: bool = True) -> DriftReport:
    connect(settings, log_to_driver=log_to_driver)
    with GraphStore.connect(settings) as graph:
        report = reconcile(settings, graph, vector_store_for(settings), repair=repair)
    # What an operator is alerted on: drift left after this run (none once repaired).
    record_drift(report.collection, 0.0 if report.repaired else report.drift_pct)
    return report


def run_reembed(settings: Settings, *, embedding_version: str, model: str, dims: int | None, switch: bool,
                rollback: bool = False, say: Callable[[str], None] = print,
                log_to_driver: bool = True) -> ReembedReport:
    """The re-embed job (``rollback``: only to a collection already recorded, with its own model).
    Its outcome is exported (``wekadocs_reembed_failed``) whatever the failure."""
    connect(settings, log_to_driver=log_to_driver)
    try:
        with GraphStore.connect(settings) as graph:
            apply_schema(graph)  # the graph's embedding marks may predate re-embedding
            report = reembed(settings, graph, vector_store_for(settings), embedding_version=embedding_version,
                             model=model, dims=dims, switch=switch, say=say, require_record=rollback)
    except Exception:
        record_reembed(embedding_version, failed=True)
        raise
    record_reembed(embedding_version, failed=False)
    return report
