"""A model version bump end to end, as an operator runs it: MiniLM -> mpnet.

Its own stack (Neo4j, Redis, Ray head) and a small docs tree, so the job
embeds a known set of sections and the alias moves under nobody else's tests;
everything is driven through the ``wekadocs`` CLI and the official MCP client.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from mcp import Client
from ray.job_submission import JobSubmissionClient

from cluster import services
from cluster.processes import free_port
from cluster.ray_head import ray_auth_token
from tests.cluster.test_cli import WEKADOCS, stack_env
from tests.conftest import make_settings
from tests.ray_jobs import run_job
from wekadocs.settings import Settings, collection_name

FOLDERS = ("operation-guide/security/manage-the-login-banner",
           "operation-guide/security/account-lockout-threshold-policy-management",
           "operation-guide/security/ca-certificate-management", "licensing")
MPNET = "all-mpnet-base-v2"
NEW = "mpnet.1"
EDITED = "licensing/overview.md"
PHRASE = "The zephyr quota ledger recalibrates every fortnight"


@pytest.fixture(scope="module")
def iso(short_tmp: Path) -> Iterator[Settings]:
    settings = make_settings(short_tmp / "reembed")
    try:
        services.up(settings)
        yield settings
    finally:
        services.down(settings)


@pytest.fixture(scope="module")
def env(iso: Settings) -> dict[str, str]:
    # one text per forward pass and eight per block: the job stores its work in
    # many small steps, so there is a "half-way" to kill it at
    return {**stack_env(iso), "WEKADOCS_EMBEDDING_BATCH_SIZE": "1"}


@pytest.fixture(scope="module")
def docs(iso: Settings, env: dict[str, str], corpus_root: Path, short_tmp: Path) -> Path:
    root = short_tmp / "reembed-docs"
    for folder in FOLDERS:
        shutil.copytree(corpus_root / "4.4" / folder, root / folder)
    ingested = cli(env, "ingest", str(root), "--version", "1.0", "--source", "docs", "--json")
    assert ingested["sections_written"] > 20 and not ingested["errors"]
    return root


@pytest.fixture(scope="module")
def mcp_url(env: dict[str, str], docs: Path) -> str:
    return cli(env, "serve", "--detach", "--host", "127.0.0.1", "--port", str(free_port()), "--json")["url"]


def cli(env: dict[str, str], *args: str, ok: bool = True) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "NEO4J_", "REDIS_", "QDRANT_"))}
    result = subprocess.run([WEKADOCS, *args], capture_output=True, text=True, env={**clean, **env}, timeout=600)
    if not ok:
        return result
    assert result.returncode == 0, f"wekadocs {' '.join(args)}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.splitlines()[-1]) if "--json" in args else result.stdout


def status(env: dict[str, str]) -> dict[str, Any]:
    return cli(env, "vectors", "status", "--json")


def by_version(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["embedding_version"]: c for c in payload["collections"]}


class Job:
    """A CLI job whose stderr lines are read as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "NEO4J_", "REDIS_"))}
        self.process = subprocess.Popen([WEKADOCS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**clean, **env}, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def wait_for(self, predicate: Any, what: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in list(self.lines):
                if predicate(line):
                    return line
            if self.process.poll() is not None and not any(predicate(line) for _, line in self.lines):
                self._reader.join(5)
                if not any(predicate(line) for _, line in self.lines):
                    tail = "\n".join(line for _, line in self.lines[-30:])
                    raise AssertionError(f"the job ended before {what}:\n{tail}")
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout:.0f}s")

    def finish(self, timeout: float = 600) -> tuple[int, dict[str, Any] | None]:
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()  # stderr is the reader thread's
        self.process.wait(timeout)
        self._reader.join(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        lines = stdout.strip().splitlines()
        return self.process.returncode, (json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None)

    def when(self, fragment: str) -> float:
        return next(t for t, line in self.lines if fragment in line)


def embedding_actor_pids(settings: Settings) -> list[int]:
    """The live embedding actors of this stack, found among the processes:
    workers whose raylet runs in this stack's folder. (The dashboard's state
    API, asked the same on a loaded machine, answered after the job had moved
    on.)"""
    raylets = {p.pid for p in psutil.process_iter(["name", "cmdline"])
               if p.info["name"] == "raylet" and str(settings.data_dir) in " ".join(p.info["cmdline"] or [])}
    pids = []
    for process in psutil.process_iter(["cmdline"]):
        if "EmbedBatch" not in " ".join(process.info["cmdline"] or []):
            continue
        try:
            raylet = int(process.environ().get("RAY_RAYLET_PID", "0"))
        except (psutil.Error, ValueError):
            continue
        if raylet in raylets:
            pids.append(process.pid)
    return pids


def test_the_first_collection_is_recorded_with_its_model(env: dict[str, str], docs: Path, iso: Settings) -> None:
    payload = status(env)
    assert payload["alias"] == iso.vector_alias and payload["serving"] == iso.vector_collection
    first = by_version(payload)[iso.embedding_version]
    assert (first["model"], first["dims"], first["state"], first["serving"]) == (
        "all-MiniLM-L6-v2", 384, "ready", True)
    assert first["points"] == payload["sections"] > 20 and first["coverage"] == 1.0


def test_a_job_whose_embedding_actor_is_killed_resumes_with_only_what_is_missing(
        env: dict[str, str], docs: Path, iso: Settings) -> None:
    job = Job(env, "reembed", "--embedding-version", NEW, "--model", MPNET, "--no-switch", "--json")
    progress = job.wait_for(lambda line: line.startswith("embedded ") and not line.startswith("embedded 0/"),
                            "a first stored batch")
    done, total = (int(n) for n in progress.split()[1].split("/"))
    assert done < total, f"the job stored everything at once ({progress}): no middle to kill it in"
    pids = embedding_actor_pids(iso)  # the job's: nothing else embeds on this stack yet
    assert pids, "no embedding actor to kill"
    # a page edited while the job runs: the ingest writes it to both collections
    (docs / EDITED).write_text((docs / EDITED).read_text() + f"\n\n## Ledger\n\n{PHRASE}.\n")
    edit = subprocess.Popen([WEKADOCS, "ingest", str(docs), "--version", "1.0", "--source", "docs", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("WEKADOCS_")}, **env})
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    job.finish()  # the job fails, or Ray Data restarts the actor and it completes: either way it ends
    edit_out, edit_err = edit.communicate(timeout=600)
    assert edit.returncode == 0, edit_err[-3000:]
    assert json.loads(edit_out.splitlines()[-1])["documents_changed"] == 1

    code, report = Job(env, "reembed", "--embedding-version", NEW, "--model", MPNET, "--no-switch",
                       "--json").finish()
    assert code == 0 and report is not None
    assert report["verified"] is True and report["switched"] is False
    assert (report["model"], report["dims"], report["collection"]) == (MPNET, 768, collection_name(NEW))
    # what the killed run stored is reused, not computed again
    assert report["embeddings_computed"] <= report["texts"] - done
    assert report["embeddings_computed"] + report["embeddings_reused"] <= report["texts"]
    assert report["sample_min_cosine"] >= 0.999

    after = status(env)
    new = by_version(after)[NEW]
    assert (new["state"], new["serving"], new["coverage"]) == ("ready", False, 1.0)
    assert new["points"] == after["sections"] and after["serving"] == iso.vector_collection


@dataclass
class Answer:
    started: float
    ended: float
    collection: str | None = None
    model: str | None = None
    error: str = ""


def search(url: str, query: str) -> dict[str, Any]:
    async def go() -> Any:
        async with Client(url) as client:
            return await client.call_tool("search_documentation", {"query": query, "top_k": 3})

    result = asyncio.run(go())
    if result.is_error:
        raise AssertionError(str(result.content))
    return result.structured_content


def test_a_bump_under_a_loop_of_searches_switches_every_reader_with_no_failed_call(
        env: dict[str, str], mcp_url: str, iso: Settings) -> None:
    answers: list[Answer] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            answer = Answer(time.monotonic(), 0.0)
            try:
                diagnostics = search(mcp_url, "lock out an account after failed logins")["diagnostics"]
                answer.collection, answer.model = diagnostics["collection"], diagnostics["model"]
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                answer.error = repr(exc)[:300]
            answer.ended = time.monotonic()
            answers.append(answer)

    looper = threading.Thread(target=loop, daemon=True)
    looper.start()
    try:
        time.sleep(3)
        job = Job(env, "reembed", "--embedding-version", NEW, "--model", MPNET, "--json")
        code, report = job.finish()
        time.sleep(3)
    finally:
        stop.set()
        looper.join(60)
    assert code == 0 and report is not None and report["switched"] is True, job.lines[-20:]
    switched_at = job.when("now serves")
    assert report["previous"] == iso.vector_collection
    failed = [a.error for a in answers if a.error]
    assert not failed, failed[:3]
    old, new = (iso.vector_collection, "all-MiniLM-L6-v2"), (collection_name(NEW), MPNET)
    before = [(a.collection, a.model) for a in answers if a.ended < job.when("filling")]
    after = [(a.collection, a.model) for a in answers if a.started > switched_at]
    assert before and set(before) == {old}
    assert after and set(after) == {new}
    assert {(a.collection, a.model) for a in answers} <= {old, new}  # never one model's query in the other's vectors

    # the page edited while the first job ran is found by its new text, in the new collection
    found = search(mcp_url, PHRASE)
    assert found["evidence"][0]["path"] == EDITED
    assert (found["diagnostics"]["collection"], found["diagnostics"]["model"]) == new


def test_rollback_returns_readers_and_the_serving_collection_cannot_be_dropped(
        env: dict[str, str], mcp_url: str, iso: Settings) -> None:
    refused = cli(env, "vectors", "drop", NEW, "--json", ok=False)
    assert refused.returncode == 1 and "serves" in refused.stderr

    back = cli(env, "vectors", "switch", iso.embedding_version, "--json")
    assert back["switched"] is True and back["verified"] is True
    assert back["collection"] == iso.vector_collection and back["model"] == "all-MiniLM-L6-v2"
    found = search(mcp_url, PHRASE)
    assert (found["diagnostics"]["collection"], found["diagnostics"]["model"]) == (
        iso.vector_collection, "all-MiniLM-L6-v2")
    assert found["evidence"][0]["path"] == EDITED  # kept current while it was not served

    dropped = cli(env, "vectors", "drop", NEW, "--json")
    assert dropped == {"embedding_version": NEW, "collection": collection_name(NEW), "dropped": True}
    assert NEW not in by_version(status(env))
    unknown = cli(env, "vectors", "switch", "never.1", "--json", ok=False)
    assert unknown.returncode == 1 and "no collection for embedding version 'never.1'" in unknown.stderr


def test_the_job_runs_through_the_jobs_api_and_shows_its_progress_in_the_dashboard(
        env: dict[str, str], docs: Path, iso: Settings) -> None:
    client = JobSubmissionClient(iso.dashboard_url)
    job = run_job(client, f"{WEKADOCS} reembed --embedding-version job.1 --no-switch --json", env)
    report, logs = job.report, job.logs
    assert report["verified"] is True and report["switched"] is False
    assert report["embeddings_computed"] == report["texts"] > 0  # a new collection: every text once
    assert f"embedded {report['texts']}/{report['texts']} texts" in logs

    # the dashboard's Ray Data page: the job's embedding dataset, finished, every row counted
    driver = client.get_job_info(job.submission_id).job_id
    response = httpx.get(f"{iso.dashboard_url}/api/data/datasets/{driver}", timeout=30,
                         headers={"Authorization": f"Bearer {ray_auth_token()}"})
    response.raise_for_status()
    embedding = [d for d in response.json()["datasets"]
                 if any("EmbedBatch" in op["operator"] for op in d["operators"])]
    assert embedding and embedding[0]["state"] == "FINISHED"
    assert embedding[0]["progress"] == embedding[0]["total"] > 0
    assert by_version(status(env))["job.1"]["serving"] is False
