"""Clients that load the service during a fault and count what they saw.

``SearchLoad``: concurrent ``search_documentation`` calls through the
official MCP client, from a thread of its own, each call tried again (a new
session, as a client whose connection broke would) up to ``attempts``
times. ``PushSender``: signed GitHub push deliveries, sent again on a 503 or
a broken connection, as GitHub's redelivery or a careful proxy would; a
repeated delivery id is deduplicated by the webhook app.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from mcp import Client

__all__ = ["Answer", "PushResult", "PushSender", "SearchLoad"]


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic()
    ended: float
    ok: bool
    degraded: bool
    tries: int
    error: str = ""


class SearchLoad:
    """Use as a context manager: the load runs while the block does."""

    def __init__(self, url: str, queries: list[str], *, version: str | None = None, concurrency: int = 2,
                 attempts: int = 3, backoff_s: float = 0.5, call_timeout_s: float = 60.0) -> None:
        self.url = url
        self.queries = queries
        self.version = version
        self.concurrency = concurrency
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.call_timeout_s = call_timeout_s
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="chaos-search-load",
                                        daemon=True)

    def __enter__(self) -> SearchLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.call_timeout_s * self.attempts + 30)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def wait(self, condition: Callable[[list[Answer]], bool], timeout_s: float) -> bool:
        """Whether ``condition`` held on the answers so far within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self.snapshot()):
                return True
            if not self._thread.is_alive():
                raise RuntimeError("the search load stopped by itself")
            time.sleep(0.2)
        return condition(self.snapshot())

    def wait_answers(self, count: int, *, after: float = 0.0, timeout_s: float = 120.0) -> bool:
        return self.wait(lambda answers: sum(a.started >= after for a in answers) >= count, timeout_s)

    async def _run(self) -> None:
        await asyncio.gather(*(self._worker(n) for n in range(self.concurrency)))

    async def _worker(self, n: int) -> None:
        turn = n
        while not self._stop.is_set():
            query = self.queries[turn % len(self.queries)]
            turn += self.concurrency
            answer = await self._call(query)
            with self._lock:
                self.answers.append(answer)

    async def _call(self, query: str) -> Answer:
        started = time.monotonic()
        arguments: dict[str, Any] = {"query": query, **({"version": self.version} if self.version else {})}
        error = ""
        for tries in range(1, self.attempts + 1):
            try:
                async with asyncio.timeout(self.call_timeout_s):
                    async with Client(self.url) as client:
                        result = await client.call_tool("search_documentation", arguments)
                if not result.is_error:
                    degraded = bool(result.structured_content["diagnostics"].get("degraded"))
                    return Answer(started, time.monotonic(), True, degraded, tries)
                error = str(result.content[0].text)[:200] if result.content else "tool error"
            except Exception as exc:  # noqa: BLE001 — the transport's, the SDK's, a timeout: a failed try
                error = f"{type(exc).__name__}: {exc}"[:200]
            await asyncio.sleep(self.backoff_s * tries)
        return Answer(started, time.monotonic(), False, False, self.attempts, error)


@dataclass
class PushResult:
    delivery: str
    accepted: int = 0
    duplicates: int = 0
    tries: int = 0
    status: int = 0  # the last answer's status (0: no answer)
    error: str = ""


@dataclass
class PushSender:
    """Signed pushes of one repository to ``<webhooks_url>/github``."""

    webhooks_url: str
    secret: str
    clone_url: str
    attempts: int = 60
    max_wait_s: float = 2.0
    results: list[PushResult] = field(default_factory=list)

    def burst(self, pushes: list[tuple[str, list[str], str]], *, concurrency: int = 4,
              between_s: float = 0.0) -> list[PushResult]:
        """``pushes``: (commit, added page paths, delivery id) each, sent by
        ``concurrency`` senders (``between_s`` apart per sender)."""
        def send(push: tuple[str, list[str], str]) -> PushResult:
            result = self.push(*push)
            time.sleep(between_s)
            return result

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="chaos-push") as pool:
            results = list(pool.map(send, pushes))
        self.results += results
        return results

    def push(self, after: str, added: list[str], delivery: str) -> PushResult:
        body = json.dumps({"ref": "refs/heads/main", "after": after, "repository": {"clone_url": self.clone_url},
                           "commits": [{"id": after, "added": added, "modified": [], "removed": []}]}).encode()
        signature = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
                   "Content-Type": "application/json"}
        result = PushResult(delivery)
        with httpx.Client(timeout=30) as client:
            for tries in range(1, self.attempts + 1):
                result.tries = tries
                try:
                    response = client.post(f"{self.webhooks_url}/github", content=body, headers=headers)
                except httpx.HTTPError as exc:
                    result.status, result.error = 0, f"{type(exc).__name__}: {exc}"[:200]
                    time.sleep(min(self.max_wait_s, 0.25 * tries))
                    continue
                result.status = response.status_code
                if response.status_code == 202:
                    answer = response.json()
                    result.accepted, result.duplicates, result.error = answer.get("accepted", 0), \
                        answer.get("duplicates", 0), ""
                    return result
                result.error = response.text[:200]
                if response.status_code < 500:
                    return result  # refused for good: retrying the same body cannot help
                wait = float(response.headers.get("Retry-After", 1))
                time.sleep(min(self.max_wait_s, wait))
        return result
