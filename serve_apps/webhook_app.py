"""Push webhooks (GitHub, GitLab) into the change queue, as a Starlette app.

Every refusal leaves the queue untouched: unknown repository 404, missing or
bad signature/token 401, body over the limit 413, bad JSON or headers 400. A
full or back-pressured queue answers 503 with ``Retry-After``, so the sender
retries and nothing is lost. A repeated delivery (same ``X-GitHub-Delivery``)
adds nothing: each event's delivery id is ``<delivery>:<path>`` and the queue
drops ids it has seen.

The app is built by a function and holds no global state; ``WebhookDeployment``
builds it inside each Serve replica (mounted at ``/webhooks``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import redis
from ray import serve
from ray.serve import Application
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.git_changes import docs_page
from wekadocs.change_event import ChangeEvent, ChangeType, delivery_id
from wekadocs.change_queue import ChangeQueue, QueueFull
from wekadocs.secrets import SecretStore
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry
from wekadocs.source_state import SourceState

__all__ = ["build_webhook_app", "stored_secret", "WebhookDeployment", "webhook_application", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 1_000_000
RETRY_AFTER_S = 30
SecretLookup = Callable[[SourceConfig], str | None]


def env_secret(source: SourceConfig) -> str | None:
    """The default: the secret lives in the environment variable the source names."""
    return os.environ.get(source.webhook_secret_env) if source.webhook_secret_env else None


def stored_secret(secrets: SecretStore) -> SecretLookup:
    """In a replica: the secret is looked up when a push comes (its file in the
    secrets folder, else the variable), so a source added after the replica
    started is checked with its own secret, and a rotated one takes effect at once."""
    return lambda source: secrets.get(source.webhook_secret_env)


def build_webhook_app(registry: SourceRegistry, queue: ChangeQueue, *, triggers: SourceState | None = None,
                      secret_for: SecretLookup = env_secret, max_body: int = MAX_BODY_BYTES) -> Starlette:
    """``triggers``: where an accepted push asks for an immediate poll of its
    sources (the supervisor fetches, so a page the payload did not list —
    a push of more commits than GitHub lists — is still found)."""

    async def github(request: Request) -> JSONResponse:
        body, problem = await _body(request, max_body)
        if problem:
            return problem
        delivery = request.headers.get("x-github-delivery", "")
        kind = request.headers.get("x-github-event", "")
        if not delivery or not kind:
            return _error(400, "X-GitHub-Event and X-GitHub-Delivery are required")
        payload, problem = _json(body)
        if problem:
            return problem
        repo = payload.get("repository") or {}
        urls = [repo.get(k) for k in ("clone_url", "html_url", "ssh_url", "url") if isinstance(repo.get(k), str)]
        sources = await _sources(registry, urls)
        if not sources:
            return _error(404, "no source is configured for this repository")
        signature = request.headers.get("x-hub-signature-256", "")
        signed = [s for s in sources if _github_signature_ok(secret_for(s), body, signature)]
        if not signed:
            return _error(401, "missing or wrong X-Hub-Signature-256")
        if kind == "ping":
            return JSONResponse({"pong": True, "sources": [s.name for s in signed]})
        if kind != "push":
            return JSONResponse({"ignored": kind}, status_code=202)
        return await _enqueue(queue, signed, payload, delivery, triggers)

    async def gitlab(request: Request) -> JSONResponse:
        body, problem = await _body(request, max_body)
        if problem:
            return problem
        payload, problem = _json(body)
        if problem:
            return problem
        project = payload.get("project") or {}
        urls = [project.get(k) for k in ("git_http_url", "git_ssh_url", "web_url") if isinstance(project.get(k), str)]
        sources = await _sources(registry, urls)
        if not sources:
            return _error(404, "no source is configured for this repository")
        token = request.headers.get("x-gitlab-token", "")
        signed = [s for s in sources if (secret := secret_for(s)) and hmac.compare_digest(secret, token)]
        if not signed:
            return _error(401, "missing or wrong X-Gitlab-Token")
        if payload.get("object_kind") != "push":
            return JSONResponse({"ignored": payload.get("object_kind")}, status_code=202)
        delivery = request.headers.get("x-gitlab-event-uuid") or str(payload.get("checkout_sha") or "")
        return await _enqueue(queue, signed, payload, delivery, triggers)

    async def health(request: Request) -> JSONResponse:
        stats = await anyio.to_thread.run_sync(queue.stats)
        return JSONResponse({"status": "ok", "queue_depth": stats.depth, "pending": stats.pending,
                             "fill": round(stats.fill, 3)})

    # Relative routes: Serve mounts the app at /webhooks (serve_config.yaml).
    return Starlette(routes=[
        Route("/github", github, methods=["POST"]),
        Route("/gitlab", gitlab, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ])


async def _body(request: Request, limit: int) -> tuple[bytes, JSONResponse | None]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return b"", _error(413, f"body over {limit} bytes")
    body = b""
    async for chunk in request.stream():  # a missing or lying Content-Length is caught here
        body += chunk
        if len(body) > limit:
            return b"", _error(413, f"body over {limit} bytes")
    return body, None


def _json(body: bytes) -> tuple[dict[str, Any], JSONResponse | None]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, _error(400, f"body is not JSON: {exc}")
    if not isinstance(payload, dict):
        return {}, _error(400, "body must be a JSON object")
    return payload, None


async def _sources(registry: SourceRegistry, urls: list[str]) -> list[SourceConfig]:
    return await anyio.to_thread.run_sync(lambda: registry.find_by_repo(*urls)) if urls else []


def _github_signature_ok(secret: str | None, body: bytes, header: str) -> bool:
    if not secret or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)  # constant time


def push_events(source: SourceConfig, payload: dict[str, Any], delivery: str) -> list[ChangeEvent]:
    """One event per page the push touched, the last change of each page winning."""
    revision = str(payload.get("after") or payload.get("checkout_sha") or "")
    latest: dict[str, ChangeType] = {}
    for commit in payload.get("commits") or []:
        for kind, key in (("added", "added"), ("modified", "modified"), ("removed", "removed")):
            for path in commit.get(key) or []:
                page = docs_page(str(path), source.docs_path)
                if page is not None:
                    latest[page] = kind  # type: ignore[assignment]
    return [ChangeEvent(source=source.name, path=page, change=change, revision=revision, priority="high",
                        delivery_id=delivery_id(delivery, page)) for page, change in sorted(latest.items())]


async def _enqueue(queue: ChangeQueue, sources: list[SourceConfig], payload: dict[str, Any],
                   delivery: str, triggers: SourceState | None) -> JSONResponse:
    if not delivery:
        return _error(400, "no delivery id")
    if await anyio.to_thread.run_sync(queue.backpressure):
        return _error(503, "the change queue is nearly full; retry later", retry=True)
    events = [e for source in sources for e in push_events(source, payload, delivery)]
    try:  # all of the delivery or none of it
        results = await anyio.to_thread.run_sync(queue.enqueue_all, events)
    except QueueFull as exc:
        return _error(503, f"{exc}; none of this delivery's {len(events)} events were queued", retry=True)
    accepted = sum(r.status == "accepted" for r in results)
    duplicates = len(results) - accepted
    if triggers is not None and accepted:
        for source in sources:
            await anyio.to_thread.run_sync(triggers.trigger, source.name)
    return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status_code=202)


def _error(status: int, message: str, *, retry: bool = False) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if retry else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@serve.deployment(name="WebhookServer")
@serve.ingress()
class WebhookDeployment:
    """Connects to Redis in the replica; the app itself is built after."""

    def __init__(self, settings: Settings) -> None:
        self.secrets = SecretStore(settings.effective_secrets_dir)
        client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True,
                                      socket_timeout=5, socket_connect_timeout=5)
        self.registry = SourceRegistry(client)
        self.queue = ChangeQueue(client, capacity=settings.queue_capacity)
        self.triggers = SourceState(client)

    def __serve_build_asgi_app__(self) -> Starlette:
        return build_webhook_app(self.registry, self.queue, triggers=self.triggers,
                                 secret_for=stored_secret(self.secrets))


def webhook_application(settings: Settings, options: dict[str, Any] | None = None) -> Application:
    deployment = WebhookDeployment.options(**options) if options else WebhookDeployment
    return deployment.bind(settings)
