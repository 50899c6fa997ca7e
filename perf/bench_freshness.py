"""Freshness, measured against the running service: push → searchable, and a
burst of webhook deliveries.

Needs the stack and the service (``wekadocs services up``; ``wekadocs serve
--detach``). The benchmark makes a local git repository, adds it as a source
(its webhook secret in a variable it sets, then redeploys so the webhook
replicas get it), waits for the first ingest, and then:

1. **push → searchable**, ``--runs`` times: commit a new sentence with a
   unique marker word to one page, send the signed GitHub push webhook to
   ``/webhooks/github``, and call ``search_documentation`` (official MCP
   client) until the marker comes back. Prints p50/p95 seconds.
2. **burst**: ``--burst`` signed deliveries as fast as ``--concurrency``
   senders go, each naming ``--pages-per-delivery`` pages of a pool that one
   commit changed; ``--duplicates`` of them repeat an earlier delivery id.
   Refused deliveries (503) are sent again once the queue has room, as a
   sender honouring ``Retry-After`` would. Prints accepted, refused,
   duplicates, events ingested, documents in the graph twice (must be 0),
   pages whose new text never arrived (lost, must be 0) and time to drain.

The source is removed at the end (``--keep`` leaves it). Nothing is asserted.

    .venv/bin/python perf/bench_freshness.py [--runs 20] [--burst 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import statistics
import string
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")

import httpx  # noqa: E402
import redis  # noqa: E402
from mcp import Client  # noqa: E402

from cluster.freshness import freshness_status  # noqa: E402
from cluster.ray_runtime import connect  # noqa: E402
from cluster.serve_runner import deploy  # noqa: E402
from cluster.source_admin import SourceAdmin  # noqa: E402
from wekadocs.change_queue import ChangeQueue  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.graph_writer import GraphWriter  # noqa: E402
from wekadocs.ids import checksum  # noqa: E402
from wekadocs.settings import Settings, load_settings  # noqa: E402
from wekadocs.source_registry import SourceConfig  # noqa: E402

SECRET_ENV = "WEKADOCS_BENCH_WEBHOOK_SECRET"
Delivery = tuple[str, bytes, dict[str, str]]  # id, body, headers
VERSION = "bench-freshness"
FRESH_PAGE = "docs/fresh.md"


class Repo:
    """The benchmark's local repository (real git)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        command = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args]
        return subprocess.run(command, cwd=self.root, check=True, capture_output=True, text=True).stdout

    def write(self, path: str, text: str) -> None:
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_text(text)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def pages(self) -> dict[str, bytes]:
        docs = self.root / "docs"
        return {p.relative_to(docs).as_posix(): p.read_bytes() for p in sorted(docs.rglob("*.md"))}


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def marker() -> str:
    return "mk" + "".join(random.choices(string.ascii_lowercase, k=8))


def pool_page(n: int, revision: str) -> str:
    return (f"# Pool page {n}\n\nThis page belongs to the burst pool, number {n}.\n\n"
            f"## Details\n\nRevision {revision} of page {n}: it exists to be re-ingested under load.\n")


class Bench:
    def __init__(self, settings: Settings, base: str, secret: str, repo: Repo, name: str) -> None:
        self.settings = settings
        self.base = base
        self.secret = secret
        self.repo = repo
        self.name = name
        self.graph = GraphStore.connect(settings)
        self.writer = GraphWriter(self.graph)
        self.redis = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
        self.queue = ChangeQueue(self.redis, capacity=settings.queue_capacity)

    def signed(self, payload: dict[str, object], delivery: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
                      "Content-Type": "application/json"}

    def push_payload(self, after: str, modified: list[str]) -> dict[str, object]:
        return {"after": after, "repository": {"clone_url": str(self.repo.root)},
                "commits": [{"id": after, "added": [], "removed": [], "modified": modified}]}

    def stored(self) -> dict[str, str]:
        return {p: c for p, (_, c) in self.writer.documents(self.name, VERSION).items()}

    def expected(self) -> dict[str, str]:
        return {p: checksum(b) for p, b in self.repo.pages().items()}

    def wait_ingested(self, timeout_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.stored() == self.expected():
                return time.monotonic() - started
            time.sleep(0.5)
        raise SystemExit(f"the source was not ingested within {timeout_s:.0f}s; see `wekadocs sources status`")

    # --- 1. push -> searchable ----------------------------------------------------

    async def push_to_searchable(self, runs: int, timeout_s: float) -> list[float]:
        seconds: list[float] = []
        async with Client(f"{self.base}/mcp") as mcp, httpx.AsyncClient(timeout=30) as http:
            for run in range(runs):
                word = marker()
                self.repo.write(FRESH_PAGE, f"# Fresh page\n\nThe freshness marker {word} shows the newest "
                                            f"change, run {run}.\n")
                sha = self.repo.commit(f"run {run}")
                body, headers = self.signed(self.push_payload(sha, [FRESH_PAGE]), f"run-{uuid.uuid4()}")
                started = time.perf_counter()
                response = await http.post(f"{self.base}/webhooks/github", content=body, headers=headers)
                if response.status_code != 202:
                    raise SystemExit(f"the webhook answered {response.status_code}: {response.text}")
                while True:
                    result = await mcp.call_tool("search_documentation",
                                                 {"query": f"freshness marker {word}", "version": VERSION,
                                                  "top_k": 3})
                    # the marker in a returned section, not the answer's echo of the query
                    evidence = (result.structured_content or {}).get("evidence", [])
                    if any(word in e["snippet"] and e["path"] == "fresh.md" for e in evidence):
                        break
                    if time.perf_counter() - started > timeout_s:
                        raise SystemExit(f"run {run}: {word} not searchable after {timeout_s:.0f}s")
                    await asyncio.sleep(0.05)
                seconds.append(time.perf_counter() - started)
                print(f"  run {run + 1:>2}: {seconds[-1]:.2f} s")
        return seconds

    # --- 2. burst -------------------------------------------------------------------

    async def send(self, deliveries: list[Delivery], concurrency: int) -> tuple[dict[str, list[str]], list[Delivery]]:
        """Statuses by delivery id, and the deliveries refused with 503 (a
        repeated id may be refused once and accepted once)."""
        outcome: dict[str, list[str]] = {"accepted": [], "duplicate": [], "other": []}
        refused: list[Delivery] = []
        todo = iter(deliveries)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            async def sender() -> None:
                for item in todo:
                    delivery, body, headers = item
                    response = await http.post(f"{self.base}/webhooks/github", content=body, headers=headers)
                    if response.status_code == 503:
                        refused.append(item)
                    elif response.status_code == 202 and response.json().get("accepted"):
                        outcome["accepted"].append(delivery)
                    elif response.status_code == 202:
                        outcome["duplicate"].append(delivery)
                    else:
                        outcome["other"].append(f"{delivery}: {response.status_code} {response.text[:200]}")

            await asyncio.gather(*(sender() for _ in range(concurrency)))
        return outcome, refused

    def burst(self, total: int, pool: int, per_delivery: int, duplicates: int, concurrency: int,
              drain_timeout_s: float) -> None:
        for n in range(pool):
            self.repo.write(f"docs/pool/p{n:04d}.md", pool_page(n, "two"))
        sha = self.repo.commit("the whole pool changes")
        unique = total - duplicates
        deliveries: list[Delivery] = []
        for i in range(unique):
            pages = [f"docs/pool/p{(i * per_delivery + k) % pool:04d}.md" for k in range(per_delivery)]
            delivery = f"burst-{uuid.uuid4()}"
            deliveries.append((delivery, *self.signed(self.push_payload(sha, pages), delivery)))
        repeats = random.Random(7).sample(deliveries, duplicates)
        mixed = deliveries + repeats
        random.Random(11).shuffle(mixed)
        consumed_before = freshness_status(self.settings)["consumer"].get("acknowledged", 0)

        started = time.perf_counter()
        outcome, pending = asyncio.run(self.send(mixed, concurrency))
        sent_s = time.perf_counter() - started
        refused_first = len(pending)
        retried: dict[str, list[str]] = {"accepted": [], "duplicate": [], "other": []}
        while pending:  # as a sender honouring Retry-After would, without the 30 s wait
            while self.queue.backpressure():
                time.sleep(0.5)
            again, pending = asyncio.run(self.send(pending, concurrency))
            for key in retried:
                retried[key] += again[key]

        drain_started = time.monotonic()
        while True:
            stats = self.queue.stats()
            if stats.depth == 0 and stats.pending == 0:
                break
            if time.monotonic() - drain_started > drain_timeout_s:
                print(f"  not drained after {drain_timeout_s:.0f}s: {stats}")
                break
            time.sleep(0.25)
        drained_s = time.perf_counter() - started
        consumed = freshness_status(self.settings)["consumer"].get("acknowledged", 0) - consumed_before
        doubles = self.graph.read(
            "MATCH (d:Document {source: $s, version: $v}) WITH d.path AS p, count(*) AS n WHERE n > 1 "
            "RETURN count(*) AS n", s=self.name, v=VERSION)[0]["n"]
        stored, expected = self.stored(), self.expected()
        lost = sum(1 for path, digest in expected.items() if path.startswith("pool/") and stored.get(path) != digest)

        print(f"burst: {len(mixed)} deliveries ({unique} unique, {duplicates} repeated ids), {per_delivery} pages "
              f"each, {concurrency} senders, queue capacity {self.settings.queue_capacity}")
        print(f"  sent in {sent_s:.1f} s ({len(mixed) / sent_s:.0f} deliveries/s)")
        print(f"  accepted {len(outcome['accepted'])}, refused with 503 {refused_first}, duplicates "
              f"{len(outcome['duplicate'])}, other {len(outcome['other'])}")
        if refused_first:
            print(f"  refused ones sent again: accepted {len(retried['accepted'])}, duplicates "
                  f"{len(retried['duplicate'])}, other {len(retried['other'])}")
        for line in (outcome["other"] + retried["other"])[:5]:
            print(f"  other: {line}")
        print(f"  events ingested (acknowledged by the consumer) {consumed}")
        print(f"  documents in the graph twice: {doubles}; pool pages whose new text is missing (lost): {lost} "
              f"of {pool}")
        print(f"  time to drain, from the first delivery: {drained_s:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=2000, help="deliveries in the burst (0 skips it)")
    parser.add_argument("--duplicates", type=int, default=200, help="deliveries of the burst that repeat an id")
    parser.add_argument("--pool", type=int, default=400, help="pages the burst's deliveries name")
    parser.add_argument("--pages-per-delivery", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one run may take")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true", help="leave the bench source and its pages")
    args = parser.parse_args()

    settings = load_settings()
    connect(settings, allow_in_process=False)
    secret = uuid.uuid4().hex
    os.environ[SECRET_ENV] = secret
    repo = Repo(Path(tempfile.mkdtemp(prefix="wd-fresh-")) / "repo")
    repo.write(FRESH_PAGE, "# Fresh page\n\nNothing new yet.\n")
    for n in range(args.pool):
        repo.write(f"docs/pool/p{n:04d}.md", pool_page(n, "one"))
    repo.commit("first")
    name = f"bench-fresh-{uuid.uuid4().hex[:6]}"
    admin = SourceAdmin(settings)
    added = time.monotonic()
    admin.add(SourceConfig(name=name, kind="git", url=str(repo.root), docs_path="docs", version=VERSION,
                           webhook_secret_env=SECRET_ENV, interval_s=3600))
    served = deploy(settings, host=settings.serve_host, port=settings.serve_port)  # replicas get the secret
    base = served.url.removesuffix("/mcp")
    bench = Bench(settings, base, secret, repo, name)
    try:
        bench.wait_ingested(900)
        print(f"source {name}: {args.pool + 1} pages ingested by the first poll, {time.monotonic() - added:.1f} s "
              "after `sources add` (the redeploy included)")
        if args.runs:
            seconds = asyncio.run(bench.push_to_searchable(args.runs, args.timeout))
            print(f"push -> searchable over {len(seconds)} runs: p50 {statistics.median(seconds):.2f} s  "
                  f"p95 {pct(seconds, 0.95):.2f} s  max {max(seconds):.2f} s")
        if args.burst:
            bench.burst(args.burst, args.pool, args.pages_per_delivery, args.duplicates, args.concurrency,
                        args.drain_timeout)
    finally:
        if not args.keep:
            removed = admin.remove(name)
            print(f"removed the bench source: {removed.documents_deleted} documents")


if __name__ == "__main__":
    main()
