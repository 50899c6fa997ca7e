"""Push webhooks (GitHub, GitLab) into the change queue, as a Starlette app.

Every request is authenticated before its body is even parsed: the GitHub
signature (or GitLab token) is checked against the secret of every
repository source, so a sender that holds none learns nothing, not even
which repositories are configured (an unknown repository is the same 401 as
a bad signature). Only then is the body read as a push
(``connectors/push_payload.py``): every malformed body is a 400 with a
reason, paths that could not come from git never reach the queue, and a push
to a branch a source does not follow is acknowledged and ignored.

Every refusal leaves the queue untouched: missing or bad signature/token
401, a repository no signing source follows 404, body over the limit 413,
bad JSON, headers or shape 400. A full or back-pressured queue answers 503
with ``Retry-After``, so the sender retries and nothing is lost. A repeated
delivery (same ``X-GitHub-Delivery``) adds nothing: each event's delivery id
is ``<delivery>:<path>`` and the queue drops ids it has seen.

The app is built by a function and holds no global state; ``WebhookDeployment``
builds it inside each Serve replica (mounted at ``/webhooks``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import redis
from ray import serve
from ray.serve import Application
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.git_changes import docs_page
from connectors.push_payload import GitPush, PayloadError, parse_json
from serve_apps.request_body import BODY_TIMEOUT_S, BoundedBody
from wekadocs.change_event import ChangeEvent, ChangeType, delivery_id
from wekadocs.change_queue import ChangeQueue, QueueFull
from wekadocs.errors import StoreError
from wekadocs.secrets import SecretStore
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry, repo_key
from wekadocs.source_state import SourceState

__all__ = ["build_webhook_app", "stored_secret", "WebhookDeployment", "webhook_application", "MAX_BODY_BYTES",
           "push_events"]

MAX_BODY_BYTES = 1_000_000
MAX_HEADER = 200  # delivery ids, event names: GitHub's are a UUID and a word
RETRY_AFTER_S = 30
SecretLookup = Callable[[SourceConfig], str | None]
log = logging.getLogger(__name__)


class Refusal(Exception):
    """A request we answer with an error status; mapped to JSON once, by the app."""

    def __init__(self, status: int, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


def env_secret(source: SourceConfig) -> str | None:
    """The default: the secret lives in the environment variable the source names."""
    return os.environ.get(source.webhook_secret_env) if source.webhook_secret_env else None


def stored_secret(secrets: SecretStore) -> SecretLookup:
    """In a replica: the secret is looked up when a push comes (its file in the
    secrets folder, else the variable), so a source added after the replica
    started is checked with its own secret, and a rotated one takes effect at once."""
    return lambda source: secrets.get(source.webhook_secret_env)


def build_webhook_app(registry: SourceRegistry, queue: ChangeQueue, *, triggers: SourceState | None = None,
                      secret_for: SecretLookup = env_secret, max_body: int = MAX_BODY_BYTES,
                      body_timeout_s: float = BODY_TIMEOUT_S) -> Starlette:
    """``triggers``: where an accepted push asks for an immediate poll of its
    sources (the supervisor fetches, so a page the payload did not list —
    a push of more commits than GitHub lists — is still found)."""

    async def signed_by(accept: Callable[[str], bool], header: str) -> list[SourceConfig]:
        sources = await anyio.to_thread.run_sync(registry.list)
        signed = [s for s in sources if s.kind in ("git", "github") and (secret := secret_for(s)) and accept(secret)]
        if not signed:
            raise Refusal(401, f"missing or wrong {header}")
        return signed

    async def github(request: Request) -> JSONResponse:
        body = await request.body()  # complete already: BoundedBody read it
        delivery = _header(request, "x-github-delivery")
        kind = _header(request, "x-github-event")
        signature = request.headers.get("x-hub-signature-256", "")
        signed = await signed_by(lambda secret: _github_signature_ok(secret, body, signature), "X-Hub-Signature-256")
        payload = parse_json(body)
        sources = _following(signed, _object(payload, "repository"), ("clone_url", "html_url", "ssh_url", "url"))
        if kind == "ping":
            return JSONResponse({"pong": True, "sources": [s.name for s in sources]})
        if kind != "push":
            return JSONResponse({"ignored": kind}, status_code=202)
        return await _enqueue(queue, sources, GitPush.parse(payload), delivery, triggers)

    async def gitlab(request: Request) -> JSONResponse:
        body = await request.body()  # complete already: BoundedBody read it
        token = request.headers.get("x-gitlab-token", "")
        signed = await signed_by(lambda secret: hmac.compare_digest(secret.encode(), token.encode()),
                                 "X-Gitlab-Token")
        payload = parse_json(body)
        sources = _following(signed, _object(payload, "project"), ("git_http_url", "git_ssh_url", "web_url"))
        kind = payload.get("object_kind")
        if kind != "push":
            return JSONResponse({"ignored": str(kind)[:MAX_HEADER]}, status_code=202)
        push = GitPush.parse(payload)
        delivery = _header(request, "x-gitlab-event-uuid", required=False) or push.revision
        return await _enqueue(queue, sources, push, delivery, triggers)

    async def health(request: Request) -> JSONResponse:
        stats = await anyio.to_thread.run_sync(queue.stats)
        return JSONResponse({"status": "ok", "queue_depth": stats.depth, "pending": stats.pending,
                             "fill": round(stats.fill, 3)})

    # Relative routes: Serve mounts the app at /webhooks (serve_config.yaml).
    return Starlette(
        routes=[
            Route("/github", github, methods=["POST"]),
            Route("/gitlab", gitlab, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={Refusal: _refused, PayloadError: _malformed,  # type: ignore[dict-item]
                            StoreError: _unavailable},
        middleware=[Middleware(BoundedBody, max_bytes=max_body, timeout_s=body_timeout_s)],
    )


def _header(request: Request, name: str, *, required: bool = True) -> str:
    value = request.headers.get(name, "")
    if required and not value:
        raise Refusal(400, f"the {name} header is required")
    if len(value) > MAX_HEADER:
        raise Refusal(400, f"the {name} header is over {MAX_HEADER} characters")
    return value


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise PayloadError(f"{key} must be an object")
    return value


def _following(signed: list[SourceConfig], repository: dict[str, Any], keys: tuple[str, ...]) -> list[SourceConfig]:
    """The signing sources that follow the repository the body names."""
    wanted = {repo_key(url) for key in keys if isinstance(url := repository.get(key), str)}
    sources = [s for s in signed if s.repository_key in wanted]
    if not sources:
        raise Refusal(404, "no source signed by this secret follows this repository")
    return sources


def _github_signature_ok(secret: str, body: bytes, header: str) -> bool:
    if not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "replace"))  # constant time


def push_events(source: SourceConfig, push: GitPush, delivery: str) -> list[ChangeEvent]:
    """One event per page the push touched, the last change of each page winning."""
    latest: dict[str, ChangeType] = {}
    for commit in push.commits:
        for kind, paths in (("added", commit.added), ("modified", commit.modified), ("removed", commit.removed)):
            for path in paths:
                page = docs_page(path, source.docs_path)
                if page is not None:
                    latest[page] = kind  # type: ignore[assignment]
    return [ChangeEvent(source=source.name, path=page, change=change, revision=push.revision, priority="high",
                        delivery_id=delivery_id(delivery, page)) for page, change in sorted(latest.items())]


async def _enqueue(queue: ChangeQueue, sources: list[SourceConfig], push: GitPush,
                   delivery: str, triggers: SourceState | None) -> JSONResponse:
    if not delivery:
        raise Refusal(400, "no delivery id")
    followed = [s for s in sources if push.is_branch(s.branch)]
    if not followed:
        return JSONResponse({"ignored": f"push to {push.ref}",
                             "branches": sorted({s.branch for s in sources})}, status_code=202)
    if await anyio.to_thread.run_sync(queue.backpressure):
        raise Refusal(503, "the change queue is nearly full; retry later", retry=True)
    events = [e for source in followed for e in push_events(source, push, delivery)]
    try:  # all of the delivery or none of it
        results = await anyio.to_thread.run_sync(queue.enqueue_all, events)
    except QueueFull as exc:
        raise Refusal(503, f"{exc}; none of this delivery's {len(events)} events were queued", retry=True) from None
    accepted = sum(r.status == "accepted" for r in results)
    duplicates = len(results) - accepted
    if triggers is not None and accepted:
        for source in followed:
            await anyio.to_thread.run_sync(triggers.trigger, source.name)
    return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status_code=202)


async def _refused(request: Request, exc: Refusal) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.retry else None
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)


async def _malformed(request: Request, exc: PayloadError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _unavailable(request: Request, exc: StoreError) -> JSONResponse:
    """Redis down or restarting: a sender retries later, and nothing of the
    delivery was queued. The detail (an internal address) stays in our log."""
    log.warning("webhook refused with 503: %s", exc)
    return JSONResponse({"error": "the change queue is unavailable; retry later"}, status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


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
