"""Freshness end to end: the supervisor and consumer actors on the real Ray
head, a local git repository moving from corpus 4.3 to 4.4 commit by commit,
push webhooks that trigger a fetch, and the `wekadocs sources` commands."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from cluster.freshness import start_freshness, stop_freshness
from cluster.vector_owner import vector_store_for
from serve_apps.webhook_app import build_webhook_app
from wekadocs.change_queue import ChangeQueue
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.ids import checksum
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceRegistry
from wekadocs.source_state import SourceState
from tests.cluster.test_cli import run, stack_env
from tests.git_repo import Repo
from tests.prometheus_text import wait_for_series

FOLDERS = ("licensing", "wekapod", "best-practice-guides")
SECRET = "e2e-secret"


@pytest.fixture(scope="module")
def actors(settings: Settings, graph: GraphStore, ray_connection: object) -> Iterator[None]:
    apply_schema(graph)
    start_freshness(settings, reclaim_idle_ms=2_000)
    yield
    stop_freshness(settings)


def copy_version(corpus: Path, version: str, repo: Repo, folders: tuple[str, ...]) -> None:
    for folder in folders:
        target = repo.root / "docs" / folder
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(corpus / version / folder, target)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f}s")


def push(settings: Settings, repo: Repo, before: str, after: str, delivery: str) -> httpx.Response:
    """The signed GitHub push a forge would send for the commits between
    ``before`` and ``after``, through the webhook app."""
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    changed = repo.git("diff", "--name-status", "--no-renames", before, after).splitlines()
    files: dict[str, list[str]] = {"added": [], "modified": [], "removed": []}
    for line in changed:
        status, path = line.split("\t", 1)
        files[{"A": "added", "M": "modified", "D": "removed"}[status[0]]].append(path)
    body = json.dumps({"ref": "refs/heads/main", "after": after, "repository": {"clone_url": str(repo.root)},
                       "commits": [{"id": after, **files}]}).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    app = build_webhook_app(SourceRegistry(client), ChangeQueue(client), triggers=SourceState(client),
                            secret_for=lambda s: SECRET)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hooks") as http:
            return await http.post("/github", content=body, headers=headers)

    try:
        return asyncio.run(go())
    finally:
        client.close()


def test_a_repository_moving_from_4_3_to_4_4_is_followed_commit_by_commit(
    settings: Settings, graph: GraphStore, actors: None, corpus_root: Path, tmp_path: Path,
) -> None:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    env = stack_env(settings)
    repo = Repo(tmp_path / "docs-repo")
    copy_version(corpus_root, "4.3", repo, FOLDERS)
    revisions = [repo.commit("docs as of 4.3")]
    writer = GraphWriter(graph)

    def follows() -> bool:
        stored = {path: digest for path, (_, digest) in writer.documents(name, "main").items()}
        return stored == {path: checksum(data) for path, data in repo.pages("docs").items()}

    added = run("sources", "add", "git", name, "--url", str(repo.root), "--path", "docs", "--interval", "3600",
                "--webhook-secret-env", "E2E_SECRET", "--json", env=env)
    assert added.returncode == 0, added.stderr
    wait_for(follows, 300, "the first ingest of 4.3")

    # Commit 2: wekapod moves to 4.4 (pages added and modified); a push webhook announces it.
    copy_version(corpus_root, "4.4", repo, ("wekapod",))
    revisions.append(repo.commit("wekapod as of 4.4"))
    response = push(settings, repo, revisions[-2], revisions[-1], "delivery-2")
    assert response.status_code == 202 and response.json()["accepted"] > 0, response.text
    wait_for(follows, 180, "following the wekapod commit")

    # Commit 3: the other folders move to 4.4 (a page removed, pages modified) and a page is renamed.
    copy_version(corpus_root, "4.4", repo, ("best-practice-guides", "licensing"))
    moved = sorted(repo.pages("docs/licensing"))[0]
    repo.move(f"docs/licensing/{moved}", f"docs/licensing/renamed-{moved}")
    revisions.append(repo.commit("the rest as of 4.4, one page renamed"))
    diff = repo.git("diff", "--name-status", "-M", revisions[-2], revisions[-1])
    assert {line[0] for line in diff.splitlines()} >= {"M", "D", "R"}
    assert push(settings, repo, revisions[-2], revisions[-1], "delivery-3").status_code == 202
    wait_for(follows, 180, "following the commit with a removal and a rename")

    # The same push again adds nothing: its delivery id was seen.
    replay = push(settings, repo, revisions[-2], revisions[-1], "delivery-3")
    assert replay.json() == {"accepted": 0, "duplicates": replay.json()["duplicates"]}

    # Every section has its vector; no document is there twice.
    vectors = vector_store_for(settings)
    section_ids = {r["id"] for r in graph.read(
        "MATCH (d:Document {source: $s})-[:HAS_SECTION]->(x:Section) RETURN x.id AS id", s=name)}
    wait_for(lambda: {pid for pid, _ in vectors.scroll_points(settings.vector_collection, {"source": name})}
             == section_ids, 60, "vectors matching the sections")
    doubles = graph.read("MATCH (d:Document {source: $s}) WITH d.path AS p, count(*) AS n WHERE n > 1 "
                         "RETURN count(*) AS n", s=name)
    assert doubles[0]["n"] == 0

    status = run("sources", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout.strip().splitlines()[-1])
    mine = shown["sources"][name]
    assert mine["cursor"] == {"revision": revisions[-1]}
    assert mine["status"]["breaker"] == "closed"
    assert shown["actors"]["pollers"][name]["state"] == "closed"
    assert shown["actors"]["consumer"]["acknowledged"] > 0
    assert shown["queue"]["depth"] == 0

    # Breaker state, queue depth and applied changes reach Ray's metrics agent (what Prometheus scrapes).
    wait_for_series(f"http://127.0.0.1:{settings.ray_metrics_port}/metrics", {
        "this source's breaker state": ("ray_wekadocs_source_breaker_state", f'source="{name}"'),
        "the queue depth": ("ray_wekadocs_queue_depth", ""),
        "changes applied": ("ray_wekadocs_changes_applied_total", ""),
        **{f"the {loop} loop's heartbeat": ("ray_wekadocs_loop_heartbeat_timestamp_seconds", f'loop="{loop}"')
           for loop in ("consume", f"poll-{name}", "sources-watch")},
    })

    listed = json.loads(run("sources", "list", "--json", env=env).stdout.strip().splitlines()[-1])
    assert name in [s["name"] for s in listed["sources"]]

    removed = run("sources", "remove", name, "--json", env=env)
    assert removed.returncode == 0, removed.stderr
    report = json.loads(removed.stdout.strip().splitlines()[-1])
    assert report["documents_deleted"] == len(repo.pages("docs"))
    assert report["vectors_deleted"] == len(section_ids)
    assert writer.source_documents(name) == []
    assert vectors.count(settings.vector_collection, {"source": name}) == 0
    again = run("sources", "remove", name, env=env)
    assert again.returncode == 1 and f"no source named '{name}'" in again.stderr


def test_sources_add_refuses_bad_input_clearly(settings: Settings, stack: object) -> None:
    env = stack_env(settings)
    bad = run("sources", "add", "git", "Bad Name", "--url", "/tmp/x", env=env)
    assert bad.returncode == 1 and "invalid source: name" in bad.stderr and "Traceback" not in bad.stderr
    bad_env = run("sources", "add", "git", "ok-name", "--url", "/tmp/x", "--webhook-secret-env", "lower", env=env)
    assert bad_env.returncode == 1 and "webhook_secret_env" in bad_env.stderr
    assert run("sources", "poll", "no-such-source", env=env).returncode == 1


def test_a_misconfigured_source_is_reported_and_does_not_stop_the_others(
    settings: Settings, actors: None, tmp_path: Path,
) -> None:
    env = stack_env(settings)
    broken, working = f"nokey-{uuid.uuid4().hex[:6]}", f"ok-{uuid.uuid4().hex[:6]}"
    repo = Repo(tmp_path / "small")
    repo.write("docs/only.md", "# Only page\n\nA page of its own words.\n")
    repo.commit("one page")
    assert run("sources", "add", "notion", broken, "--token-env", "WEKADOCS_UNSET_TOKEN", env=env).returncode == 0
    assert run("sources", "add", "git", working, "--url", str(repo.root), "--path", "docs", env=env).returncode == 0
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    state = SourceState(client)
    try:
        wait_for(lambda: state.status(broken).get("last_status") == "misconfigured", 30, "the broken source reported")
        assert "WEKADOCS_UNSET_TOKEN" in state.status(broken)["last_error"]
        wait_for(lambda: state.status(working).get("last_status") == "polled", 30, "the working source polled")
        shown = run("sources", "status", env=env)
        assert "misconfigured" in shown.stdout and "WEKADOCS_UNSET_TOKEN" in shown.stdout
    finally:
        for name in (broken, working):
            run("sources", "remove", name, env=env)
        client.close()


def test_a_poller_loop_that_crashes_is_restarted_and_shown_in_status(
    settings: Settings, actors: None, tmp_path: Path,
) -> None:
    env = stack_env(settings)
    name = f"crash-{uuid.uuid4().hex[:6]}"
    repo = Repo(tmp_path / "crashing")
    repo.write("docs/only.md", "# Only page\n\nA page of its own words.\n")
    repo.commit("one page")
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    state = SourceState(client)
    # A corrupt cursor: git refuses the revision with a ValueError, not an error of ours.
    state.save_cursor(name, {"revision": "bad\x00revision"})
    try:
        assert run("sources", "add", "git", name, "--url", str(repo.root), "--path", "docs", env=env).returncode == 0

        def shown() -> dict[str, object]:
            done = run("sources", "status", "--json", env=env)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout.strip().splitlines()[-1])["actors"]["pollers"].get(name, {})

        wait_for(lambda: int(shown().get("restarts", 0)) >= 1, 60, "the crashed poller loop restarted")
        live = shown()
        assert live["loop"] in ("running", "restarting") and "null byte" in str(live["last_crash"])
        text = run("sources", "status", env=env).stdout
        assert "restarts" in text and "null byte" in text

        state.save_cursor(name, {})  # the cause is gone: the restarted loop polls again
        wait_for(lambda: state.status(name).get("last_status") == "polled", 90, "the restarted loop polling")
    finally:
        run("sources", "remove", name, env=env)
        client.close()
