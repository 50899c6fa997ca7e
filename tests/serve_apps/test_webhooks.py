"""The webhook app over HTTP (in-process ASGI), writing to the real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from cluster.processes import free_port
from serve_apps.webhook_app import build_webhook_app
from wekadocs.change_queue import ChangeQueue
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry, repo_key
from wekadocs.source_state import SourceState

SECRET = "s3cret"
REPO = {"clone_url": "https://github.com/acme/docs.git", "html_url": "https://github.com/acme/docs"}


@pytest.fixture
def parts(settings: Settings, stack: object) -> Iterator[tuple[SourceRegistry, ChangeQueue, redis.Redis]]:
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    prefix = f"test:hooks:{uuid.uuid4().hex[:8]}"
    registry = SourceRegistry(client, key=f"{prefix}:sources")
    registry.add(SourceConfig(name="acme-docs", kind="github", url="git@github.com:acme/docs.git",
                              docs_path="docs", webhook_secret_env="ACME_SECRET"))
    yield registry, ChangeQueue(client, name=f"{prefix}:changes", capacity=5), client
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def post(registry: SourceRegistry, queue: ChangeQueue, path: str, body: bytes,
         headers: dict[str, str], triggers: SourceState | None = None) -> httpx.Response:
    app = build_webhook_app(registry, queue, triggers=triggers,
                            secret_for=lambda s: SECRET if s.name == "acme-docs" else None, max_body=10_000)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(go())


def github(payload: dict[str, Any], *, event: str = "push", delivery: str = "d-1",
           secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
                  "Content-Type": "application/json"}


PUSH = {"ref": "refs/heads/main", "after": "f00d", "repository": REPO, "commits": [
    {"added": ["docs/new.md", "src/app.py"], "modified": ["docs/guide.md"], "removed": []},
    {"added": [], "modified": [], "removed": ["docs/new.md", "docs/img.png"]},
]}


def test_repository_urls_match_in_any_spelling() -> None:
    assert repo_key("git@github.com:Acme/docs.git") == repo_key("https://github.com/acme/docs") == "github.com/acme/docs"


def test_a_signed_push_enqueues_one_event_per_page(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    response = post(registry, queue, "/github", *github(PUSH))
    assert response.status_code == 202 and response.json() == {"accepted": 2, "duplicates": 0}
    got = {(d.event.change, d.event.path) for d in queue.read("c", count=10)}
    assert got == {("removed", "new.md"), ("modified", "guide.md")}  # the last change of a page wins


def test_an_accepted_push_triggers_a_poll_of_its_source_and_a_replay_does_not(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, client = parts
    triggers = SourceState(client, prefix=f"{queue.name}:state")
    post(registry, queue, "/github", *github(PUSH), triggers=triggers)
    assert triggers.next_trigger(timeout_s=0.1) == "acme-docs"
    post(registry, queue, "/github", *github(PUSH), triggers=triggers)  # nothing new accepted
    refused = post(registry, queue, "/github", *github(PUSH, secret="wrong", delivery="d-9"), triggers=triggers)
    assert refused.status_code == 401
    assert triggers.next_trigger(timeout_s=0.1) is None


def test_a_replayed_delivery_adds_nothing(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    post(registry, queue, "/github", *github(PUSH))
    again = post(registry, queue, "/github", *github(PUSH))
    assert again.json() == {"accepted": 0, "duplicates": 2}
    assert queue.stats().depth == 2


def test_ping_answers_pong(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    response = post(registry, queue, "/github", *github({"repository": REPO}, event="ping"))
    assert response.json() == {"pong": True, "sources": ["acme-docs"]}


@pytest.mark.parametrize("case, status", [
    ("bad-signature", 401), ("no-signature", 401), ("unknown-repo", 404), ("bad-json", 400),
    ("no-delivery", 400), ("oversize", 413),
])
def test_refusals_enqueue_nothing(parts, case: str, status: int) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    body, headers = github(PUSH)
    if case == "bad-signature":
        body, headers = github(PUSH, secret="wrong")
    elif case == "no-signature":
        headers.pop("X-Hub-Signature-256")
    elif case == "unknown-repo":
        body, headers = github({**PUSH, "repository": {"clone_url": "https://github.com/other/repo.git"}})
    elif case == "bad-json":
        body = b"{not json"
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    elif case == "no-delivery":
        headers.pop("X-GitHub-Delivery")
    elif case == "oversize":
        body, headers = github({**PUSH, "padding": "x" * 20_000})
    response = post(registry, queue, "/github", body, headers)
    assert response.status_code == status, response.text
    assert queue.stats().depth == 0


def test_a_full_queue_answers_503_with_retry_after(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    many = {**PUSH, "commits": [{"added": [f"docs/p{i}.md" for i in range(4)], "modified": [], "removed": []}]}
    first = post(registry, queue, "/github", *github(many, delivery="d-a"))
    assert first.status_code == 202
    refused = post(registry, queue, "/github", *github(PUSH, delivery="d-b"))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert queue.stats().depth == 4  # what was accepted stays; nothing of the refused delivery was added


def test_redis_down_answers_503_with_retry_after_and_no_internal_detail(parts) -> None:  # type: ignore[no-untyped-def]
    """The registry read through a real client on a port where no Redis
    listens fails before anything is checked: the sender is told to retry later."""
    _, queue, _ = parts
    client = redis.Redis(port=free_port(), socket_connect_timeout=1, decode_responses=True)
    refused = post(SourceRegistry(client), queue, "/github", *github(PUSH))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert refused.json() == {"error": "the change queue is unavailable; retry later"}
    assert queue.stats().depth == 0
    client.close()


def test_a_delivery_that_does_not_fit_is_refused_whole(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    three = {**PUSH, "commits": [{"added": [f"docs/a{i}.md" for i in range(3)], "modified": [], "removed": []}]}
    assert post(registry, queue, "/github", *github(three, delivery="d-a")).status_code == 202  # 3 of 5
    other = {**PUSH, "commits": [{"added": [f"docs/b{i}.md" for i in range(3)], "modified": [], "removed": []}]}
    refused = post(registry, queue, "/github", *github(other, delivery="d-b"))
    assert refused.status_code == 503 and "none of this delivery's 3 events" in refused.json()["error"]
    assert queue.stats().depth == 3
    queue.ack(queue.read("c", count=10))
    retried = post(registry, queue, "/github", *github(other, delivery="d-b"))
    assert retried.json() == {"accepted": 3, "duplicates": 0}  # the retry is not taken for a replay


def test_gitlab_token(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    payload = {"object_kind": "push", "ref": "refs/heads/main", "checkout_sha": "beef",
               "project": {"git_http_url": "https://github.com/acme/docs.git"},
               "commits": [{"added": ["docs/a.md"], "modified": [], "removed": []}]}
    body = json.dumps(payload).encode()
    wrong = post(registry, queue, "/gitlab", body, {"X-Gitlab-Token": "nope"})
    assert wrong.status_code == 401 and queue.stats().depth == 0
    right = post(registry, queue, "/gitlab", body, {"X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "u1"})
    assert right.status_code == 202 and right.json()["accepted"] == 1


def test_a_github_source_given_as_owner_slash_repo_matches_its_pushes(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    registry.add(SourceConfig(name="site", kind="github", url="acme/site", webhook_secret_env="SITE_SECRET"))
    payload = {**PUSH, "repository": {"clone_url": "https://github.com/acme/site.git",
                                      "html_url": "https://github.com/acme/site", "ssh_url": "git@github.com:acme/site.git"}}
    app = build_webhook_app(registry, queue, secret_for=lambda s: SECRET if s.name == "site" else None)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hooks") as client:
            return await client.post("/github", content=body, headers=headers)

    body, headers = github(payload)
    response = asyncio.run(go())
    assert response.status_code == 202, response.text
    assert {d.event.source for d in queue.read("c", count=10)} == {"site"}
    assert SourceConfig(name="e", kind="github", url="acme/site", api_url="https://api.ghe.example.com/api/v3",
                        ).repository_key == "ghe.example.com/acme/site"
    assert SourceConfig(name="g", kind="git", url="acme/site").repository_key == "acme/site"  # a local path stays one


def signed_raw(body: bytes, *, event: str = "push", delivery: str = "d-raw") -> tuple[bytes, dict[str, str]]:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
                  "Content-Type": "application/json"}


def with_paths(*paths: str) -> dict[str, Any]:
    return {**PUSH, "commits": [{"added": list(paths), "modified": [], "removed": []}]}


MALFORMED: dict[str, bytes] = {
    "repository-not-an-object": json.dumps({**PUSH, "repository": ["x"]}).encode(),
    "repository-missing": json.dumps({k: v for k, v in PUSH.items() if k != "repository"}).encode(),
    "nested-too-deep": b"[" * 4_000 + b"]" * 4_000,
    "integer-of-5000-digits": b'{"after": ' + b"7" * 5000 + b"}",
    "nan": b'{"after": NaN, "repository": {}}',
    "infinity": b'{"after": -Infinity}',
    "not-an-object": b'["push"]',
    "commits-not-a-list": json.dumps({**PUSH, "commits": {"added": ["docs/a.md"]}}).encode(),
    "commit-not-an-object": json.dumps({**PUSH, "commits": ["docs/a.md"]}).encode(),
    "paths-not-strings": json.dumps({**PUSH, "commits": [{"added": [1, 2, {"x": 1}]}]}).encode(),
    "after-not-a-string": json.dumps({**PUSH, "after": 12}).encode(),
    "after-over-long": json.dumps({**PUSH, "after": "f" * 1_000}).encode(),
    "after-as-an-option": json.dumps({**PUSH, "after": "--upload-pack=touch pwned"}).encode(),
    "path-over-long": json.dumps(with_paths("docs/" + "a" * 5_000 + ".md")).encode(),
    "lone-surrogate": json.dumps(with_paths("docs/\ud800.md")).encode(),
    "no-ref": json.dumps({k: v for k, v in PUSH.items() if k != "ref"}).encode(),
    "traversal": json.dumps(with_paths("../../etc/passwd.md")).encode(),
    "traversal-inside": json.dumps(with_paths("docs/../../x.md")).encode(),
    "dot-segment": json.dumps(with_paths("./x.md")).encode(),
    "absolute": json.dumps(with_paths("/etc/passwd.md")).encode(),
    "root": json.dumps(with_paths("/")).encode(),
    "dot-dot": json.dumps(with_paths("..")).encode(),
    "control-character": json.dumps(with_paths("docs/a\x00b.md")).encode(),
    "backslash": json.dumps(with_paths("docs\\..\\x.md")).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_signed_malformed_body_is_a_400_with_a_reason_and_queues_nothing(parts, case: str) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    response = post(registry, queue, "/github", *signed_raw(MALFORMED[case]))
    assert response.status_code == 400, response.text
    reason = response.json()["error"]
    assert reason and len(reason) < 1000  # a reason, not megabytes of validation errors
    assert queue.stats().depth == 0


@pytest.mark.parametrize("case", ["repository-not-an-object", "nested-too-deep", "nan", "traversal"])
def test_an_unsigned_body_is_refused_before_it_is_parsed(parts, case: str) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    body, headers = signed_raw(MALFORMED[case])
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    response = post(registry, queue, "/github", body, headers)
    assert response.status_code == 401 and queue.stats().depth == 0


def test_an_unknown_repository_gets_the_same_401_as_a_bad_signature(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    other = {**PUSH, "repository": {"clone_url": "https://github.com/other/repo.git"}}
    unknown = post(registry, queue, "/github", *github(other, secret="guess"))
    configured = post(registry, queue, "/github", *github(PUSH, secret="guess"))
    assert unknown.status_code == configured.status_code == 401
    assert unknown.json() == configured.json()  # nothing tells an outsider which repositories we follow


def test_a_push_to_another_branch_is_acknowledged_and_ignored(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    response = post(registry, queue, "/github", *github({**PUSH, "ref": "refs/heads/feature"}))
    assert response.status_code == 202
    assert response.json() == {"ignored": "push to refs/heads/feature", "branches": ["main"]}
    tag = post(registry, queue, "/github", *github({**PUSH, "ref": "refs/tags/main"}, delivery="d-tag"))
    assert tag.status_code == 202 and "ignored" in tag.json()
    assert queue.stats().depth == 0


def test_a_gitlab_body_is_checked_after_the_token(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    hostile = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "project": "not-an-object"}).encode()
    assert post(registry, queue, "/gitlab", hostile, {"X-Gitlab-Token": "nope"}).status_code == 401
    refused = post(registry, queue, "/gitlab", hostile, {"X-Gitlab-Token": SECRET})
    assert refused.status_code == 400 and "project must be an object" in refused.json()["error"]
    traversal = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "checkout_sha": "beef",
                            "project": {"git_http_url": "https://github.com/acme/docs.git"},
                            "commits": [{"added": ["docs/../../../etc/passwd.md"]}]}).encode()
    assert post(registry, queue, "/gitlab", traversal, {"X-Gitlab-Token": SECRET}).status_code == 400
    assert queue.stats().depth == 0


def test_a_trickled_body_is_cut_off_with_408_and_queues_nothing(parts) -> None:  # type: ignore[no-untyped-def]
    registry, queue, _ = parts
    body, headers = github(PUSH)
    app = build_webhook_app(registry, queue, secret_for=lambda s: SECRET, body_timeout_s=0.5)

    async def trickle() -> Any:
        yield body[:10]
        await asyncio.sleep(30)  # a slow-loris sender: the rest never comes in time
        yield body[10:]

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hooks") as client:
            return await client.post("/github", content=trickle(), headers=headers)

    response = asyncio.run(asyncio.wait_for(go(), timeout=20))
    assert response.status_code == 408 and "did not arrive within 0.5 s" in response.json()["error"]
    assert queue.stats().depth == 0
