"""A source added while the webhook replicas run: its pushes are checked with
its own secret at once (no redeploy), on a real Serve replica that never saw
the secret's variable."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from ray import serve

from cluster.freshness import save_source_secrets, start_freshness, stop_freshness
from cluster.processes import free_port
from cluster.ray_head import ray_auth_token
from cluster.serve_runner import WEBHOOKS_IMPORT, _BUILDERS, _await_health, load_serve_config
from wekadocs.change_queue import ChangeQueue
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry
from tests.cluster.test_cli import run, stack_env


@pytest.fixture(scope="module")
def hooks(settings: Settings, ray_connection: object) -> Iterator[str]:
    """The webhook app as `wekadocs serve` deploys it (options from serve_config.yaml)."""
    [app] = [a for a in load_serve_config().applications if a.import_path == WEBHOOKS_IMPORT]
    options = {d.name: d.model_dump(exclude_unset=True, exclude={"name"}) for d in app.deployments}
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(_BUILDERS[WEBHOOKS_IMPORT](settings, options), name="hooks-test", route_prefix="/hooks",
              blocking=False)
    url = f"http://127.0.0.1:{port}/hooks"
    _await_health(f"{url}/health")
    yield url
    serve.shutdown()


def signed(payload: dict[str, object], secret: str, delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
                  "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def test_a_source_added_after_deploy_accepts_signed_pushes_and_refuses_bad_ones(settings: Settings,
                                                                                 hooks: str) -> None:
    name, variable = f"late-{uuid.uuid4().hex[:6]}", f"LATE_SECRET_{uuid.uuid4().hex[:6].upper()}"
    secret = uuid.uuid4().hex
    owner_repo = f"acme/{name}"
    assert variable not in os.environ  # the replicas cannot have it from anywhere but the secrets folder
    added = run("sources", "add", "github", name, "--url", owner_repo, "--webhook-secret-env", variable,
                env={**stack_env(settings), variable: secret})  # the README's way, secret in the shell only
    assert added.returncode == 0, added.stderr
    assert f"saved secret {variable}" in added.stdout
    stored = settings.effective_secrets_dir / variable
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    try:
        assert secret not in json.dumps({k: client.hgetall(k) if client.type(k) == "hash" else ""
                                         for k in client.scan_iter("wekadocs:*")})  # nothing in Redis in clear
        payload = {"ref": "refs/heads/main", "after": "f00d", "repository": {"clone_url": f"https://github.com/{owner_repo}.git",
                                                   "html_url": f"https://github.com/{owner_repo}"},
                   "commits": [{"added": ["new.md"], "modified": [], "removed": []}]}

        def push(key: str, delivery: str) -> httpx.Response:
            body, headers = signed(payload, key, delivery)
            return httpx.post(f"{hooks}/github", content=body, headers=headers, timeout=60)

        bad = push("wrong", "d-bad")
        assert bad.status_code == 401, bad.text
        good = push(secret, "d-good")
        assert good.status_code == 202 and good.json() == {"accepted": 1, "duplicates": 0}, good.text

        rotated = uuid.uuid4().hex  # rotated while running: the new secret counts, the old one no longer
        stored.write_text(rotated)
        assert push(secret, "d-old").status_code == 401
        assert push(rotated, "d-new").status_code == 202
    finally:
        queue = ChangeQueue(client, capacity=settings.queue_capacity)
        mine = [d for d in queue.read("test-secrets", count=100) if d.event.source == name]
        queue.ack(mine)
        client.hdel("wekadocs:sources", name)
        client.close()


def dashboard_state(settings: Settings) -> str:
    """All the dashboard shows of actors, tasks, runtime envs, jobs and Serve
    apps, as one text: what anyone holding the cluster token can read."""
    token = ray_auth_token()
    pages = ["/api/v0/actors", "/api/v0/runtime_envs", "/api/v0/tasks", "/api/jobs/",
             "/api/serve/applications/"]
    texts = []
    for page in pages:
        response = httpx.get(f"{settings.dashboard_url}{page}", params={"detail": "true", "limit": 10_000},
                             headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert response.status_code == 200, (page, response.text[:300])
        texts.append(response.text)
    return "\n".join(texts)


def test_source_secrets_never_travel_in_runtime_env(settings: Settings, hooks: str) -> None:
    """The webhook replicas and the freshness actors use a source's token and
    webhook secret, yet neither value is in any actor's, task's, job's or
    Serve app's runtime_env (nor anywhere else the dashboard shows)."""
    name = f"rt-{uuid.uuid4().hex[:6]}"
    token_var, secret_var = f"RT_TOKEN_{uuid.uuid4().hex[:6].upper()}", f"RT_SECRET_{uuid.uuid4().hex[:6].upper()}"
    token, secret = f"tok-{uuid.uuid4().hex}", f"hook-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    SourceRegistry(client).add(SourceConfig(name=name, kind="github", url=f"acme/{name}", token_env=token_var,
                                            webhook_secret_env=secret_var, api_url="http://127.0.0.1:1",
                                            interval_s=86_400))
    try:
        assert save_source_secrets(settings, {token_var: token, secret_var: secret}) == sorted([token_var, secret_var])
        start_freshness(settings, replace=True)  # as `wekadocs serve` does: the poller for the source starts
        payload = {"ref": "refs/heads/main", "after": "f00d",
                   "repository": {"clone_url": f"http://127.0.0.1/acme/{name}.git",  # api_url's host
                                  "html_url": f"http://127.0.0.1/acme/{name}"},
                   "commits": [{"added": ["a.md"], "modified": [], "removed": []}]}
        body, headers = signed(payload, secret, f"d-{name}")
        accepted = httpx.post(f"{hooks}/github", content=body, headers=headers, timeout=60)
        assert accepted.status_code == 202, accepted.text  # the replica did read the secret
        shown = dashboard_state(settings)
        assert "SourceSupervisor" in shown and "WebhookServer" in shown  # the pages list what uses them
        assert "serialized_runtime_env" in shown and "runtime_env_info" in shown  # and their runtime_env
        assert token not in shown and secret not in shown
    finally:
        stop_freshness(settings)
        queue = ChangeQueue(client, capacity=settings.queue_capacity)
        queue.ack([d for d in queue.read("test-secrets", count=100) if d.event.source == name])
        client.hdel("wekadocs:sources", name)
        client.close()
