"""The ingest entry point as a Ray job, and its metrics on the head's endpoint."""

from __future__ import annotations

import sys
from pathlib import Path

from ray.job_submission import JobSubmissionClient

from tests.prometheus_text import wait_for_series
from tests.ray_jobs import run_job
from wekadocs.settings import Settings


def test_ingest_runs_as_a_ray_job_and_exports_metrics(
    settings: Settings, ray_connection: object, tmp_path: Path
) -> None:
    tree = tmp_path / "docs"
    tree.mkdir()
    (tree / "page.md").write_text("# Job page\n\nRun `weka job demo` here.\n")
    client = JobSubmissionClient(settings.dashboard_url)
    cli = Path(sys.executable).with_name("wekadocs")
    env = {
        "WEKADOCS_DATA_DIR": str(settings.data_dir),
        "WEKADOCS_NEO4J_PORT": str(settings.neo4j_port),
        "WEKADOCS_REDIS_PORT": str(settings.redis_port),
    }
    job = run_job(client, f"{cli} ingest {tree} --source job-test --version 1.0 --json", env)
    report = job.report
    assert report["documents_changed"] == 1 and report["embeddings_computed"] == 1
    assert job.submission_id in {info.submission_id for info in client.list_jobs()}  # what the dashboard lists

    # Ray exports our counters (prefixed ray_) on the head's metrics port
    wait_for_series(f"http://127.0.0.1:{settings.ray_metrics_port}/metrics", {
        "documents ingested by the job": ("ray_wekadocs_ingest_documents_total", 'source="job-test"'),
        "the job's batch timings": ("ray_wekadocs_ingest_batch_seconds_bucket", 'source="job-test"'),
    }, timeout_s=60)
