"""Running one of our commands as a Ray job, the way an operator submits it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ray.job_submission import JobStatus, JobSubmissionClient

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


@dataclass
class FinishedJob:
    submission_id: str
    logs: str
    report: dict[str, Any]  # the last JSON line the command printed (its --json report)


def run_job(client: JobSubmissionClient, entrypoint: str, env: dict[str, str],
            timeout_s: float = 300) -> FinishedJob:
    """Submit, wait for the end, and insist that it succeeded."""
    job = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": env})
    deadline = time.monotonic() + timeout_s
    while client.get_job_status(job) not in FINISHED:
        assert time.monotonic() < deadline, f"the job did not finish in {timeout_s:.0f} s"
        time.sleep(1)
    logs = client.get_job_logs(job)
    assert client.get_job_status(job) == JobStatus.SUCCEEDED, logs[-3000:]
    return FinishedJob(job, logs, json.loads([line for line in logs.splitlines() if line.startswith("{")][-1]))
