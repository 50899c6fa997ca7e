"""Freshness, measured against the running service: push → searchable, and a
burst of webhook deliveries.

Needs the stack and the service (``wekadocs services up``; ``wekadocs serve
--detach``). The benchmark makes two local git repositories and adds them as
sources, one named by its plain path and one by a ``file://`` URL (their
webhook secret in a variable it sets, then redeploys so the webhook replicas
get it), waits for the first ingest, and then:

1. **push → searchable**, for each URL form and each kind of change,
   ``--runs`` times: commit one change, send the signed GitHub push webhook
   to ``/webhooks/github``, and call ``search_documentation`` (official MCP
   client, the version passed) until the search shows it. *added*: a new
   page with a unique marker word, until the marker comes back at its path;
   *modified*: a new marker in an existing page; *renamed*: one of the added
   pages moved to a new path (GitHub lists it as removed + added), until its
   marker comes back at the new path and not the old; *removed*: that page
   deleted, until its marker is gone. Prints p50/p95 seconds per URL form
   and kind.
2. **burst**: ``--burst`` signed deliveries as fast as ``--concurrency``
   senders go, each naming ``--pages-per-delivery`` pages of a pool that one
   commit changed; ``--duplicates`` of them repeat an earlier delivery id.
   Refused deliveries (503) are sent again once the queue has room, as a
   sender honouring ``Retry-After`` would. Prints accepted, refused,
   duplicates, events ingested, documents in the graph twice (must be 0),
   pages whose new text never arrived (lost, must be 0) and time to drain.

The source is removed at the end (``--keep`` leaves it). Nothing is asserted.

    .venv/bin/python perf/bench_freshness.py [--runs 20] [--burst 2000] [--forms path file]
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
FORMS = {"path": lambda root: str(root), "file": lambda root: root.as_uri()}  # how a source names its repo


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

    def remove(self, path: str) -> None:
        self.git("rm", "--quiet", path)

    def move(self, old: str, new: str) -> None:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

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


KINDS = ("added", "modified", "renamed", "removed")


def page_text(title: str, word: str, note: str) -> str:
    return f"# {title}\n\nThe freshness marker {word} shows the newest change, {note}.\n"


class Bench:
    """One source: its repository, named as ``url`` (a plain path or a
    ``file://`` URL), as the source and the push payloads name it."""

    def __init__(self, settings: Settings, base: str, secret: str, repo: Repo, name: str, url: str) -> None:
        self.settings = settings
        self.base = base
        self.secret = secret
        self.repo = repo
        self.name = name
        self.url = url
        self.graph = GraphStore.connect(settings)
        self.writer = GraphWriter(self.graph)
        self.redis = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
        self.queue = ChangeQueue(self.redis, capacity=settings.queue_capacity)

    def signed(self, payload: dict[str, object], delivery: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature,
                      "Content-Type": "application/json"}

    def push_payload(self, after: str, modified: list[str], *, added: list[str] | None = None,
                     removed: list[str] | None = None) -> dict[str, object]:
        return {"ref": "refs/heads/main", "after": after, "repository": {"clone_url": self.url},
                "commits": [{"id": after, "added": added or [], "removed": removed or [], "modified": modified}]}

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

    def change(self, kind: str, run: int, words: list[tuple[str, str]]) -> tuple[dict[str, object], str, str | None]:
        """Commit one change of ``kind``; the payload, the marker to look for
        and the page path it must come back at (None: it must be gone).
        ``words`` holds (marker, path) of the pages ``added`` made, which
        ``renamed`` moves and ``removed`` deletes."""
        if kind == "added":
            word, path = marker(), f"new/page-{run}.md"
            self.repo.write(f"docs/{path}", page_text("New page", word, f"added by run {run}"))
            words.append((word, path))
            sha = self.repo.commit(f"add {path}")
            return self.push_payload(sha, [], added=[f"docs/{path}"]), word, path
        if kind == "modified":
            word = marker()
            self.repo.write(FRESH_PAGE, page_text("Fresh page", word, f"run {run}"))
            sha = self.repo.commit(f"modify, run {run}")
            return self.push_payload(sha, [FRESH_PAGE]), word, FRESH_PAGE.removeprefix("docs/")
        word, path = words[run % len(words)]
        if kind == "renamed":
            moved = path.replace("new/", "moved/", 1)
            self.repo.move(f"docs/{path}", f"docs/{moved}")
            words[run % len(words)] = (word, moved)
            sha = self.repo.commit(f"rename {path}")
            return self.push_payload(sha, [], removed=[f"docs/{path}"], added=[f"docs/{moved}"]), word, moved
        self.repo.remove(f"docs/{path}")
        sha = self.repo.commit(f"remove {path}")
        return self.push_payload(sha, [], removed=[f"docs/{path}"]), word, None

    async def push_to_searchable(self, runs: int, timeout_s: float) -> dict[str, list[float]]:
        """Seconds from the webhook to the search showing it, per kind."""
        seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
        words: list[tuple[str, str]] = []
        async with Client(f"{self.base}/mcp") as mcp, httpx.AsyncClient(timeout=30) as http:
            for kind in KINDS:
                for run in range(runs):
                    payload, word, path = self.change(kind, run, words)
                    body, headers = self.signed(payload, f"run-{uuid.uuid4()}")
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
                        at = {e["path"] for e in evidence if word in e["snippet"]}
                        if at == ({path} if path else set()):
                            break
                        if time.perf_counter() - started > timeout_s:
                            raise SystemExit(f"{kind} run {run}: {word} at {sorted(at)}, not {path}, "
                                             f"after {timeout_s:.0f}s")
                        await asyncio.sleep(0.05)
                    seconds[kind].append(time.perf_counter() - started)
                    print(f"  {kind:<8} run {run + 1:>2}: {seconds[kind][-1]:.2f} s")
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
    parser.add_argument("--runs", type=int, default=20, help="pushes per URL form and kind of change")
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS),
                        help="how the sources name their repository: a plain path, a file:// URL")
    parser.add_argument("--burst", type=int, default=2000, help="deliveries in the burst (0 skips it)")
    parser.add_argument("--duplicates", type=int, default=200, help="deliveries of the burst that repeat an id")
    parser.add_argument("--pool", type=int, default=400, help="pages the burst's deliveries name")
    parser.add_argument("--pages-per-delivery", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one run may take")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true", help="leave the bench sources and their pages")
    args = parser.parse_args()

    settings = load_settings()
    connect(settings, allow_in_process=False)
    secret = uuid.uuid4().hex
    os.environ[SECRET_ENV] = secret
    admin = SourceAdmin(settings)
    added = time.monotonic()
    sources: list[tuple[str, Repo, str]] = []  # name, repository, url
    for n, form in enumerate(args.forms):
        repo = Repo(Path(tempfile.mkdtemp(prefix="wd-fresh-")) / "repo")
        repo.write(FRESH_PAGE, "# Fresh page\n\nNothing new yet.\n")
        for p in range(args.pool if n == 0 and args.burst else 0):  # the burst runs on the first source
            repo.write(f"docs/pool/p{p:04d}.md", pool_page(p, "one"))
        repo.commit("first")
        name, url = f"bench-fresh-{form}-{uuid.uuid4().hex[:6]}", FORMS[form](repo.root)
        admin.add(SourceConfig(name=name, kind="git", url=url, docs_path="docs", version=VERSION,
                               webhook_secret_env=SECRET_ENV, interval_s=3600))
        sources.append((name, repo, url))
    served = deploy(settings, host=settings.serve_host, port=settings.serve_port)  # replicas get the secret
    base = served.url.removesuffix("/mcp")
    benches = [Bench(settings, base, secret, repo, name, url) for name, repo, url in sources]
    try:
        for bench in benches:
            bench.wait_ingested(900)
            print(f"source {bench.name} ({bench.url}): {len(bench.expected())} pages ingested by the first poll, "
                  f"{time.monotonic() - added:.1f} s after `sources add` (the redeploy included)")
        figures: list[str] = []
        for form, bench in zip(args.forms, benches):
            if not args.runs:
                break
            print(f"push -> searchable, source named by {form}:")
            seconds = asyncio.run(bench.push_to_searchable(args.runs, args.timeout))
            figures += [f"  {form:<4} {kind:<8} p50 {statistics.median(s):.2f} s  p95 {pct(s, 0.95):.2f} s  "
                        f"max {max(s):.2f} s" for kind, s in seconds.items()]
        if figures:
            print(f"push -> searchable, {args.runs} runs each:")
            print("\n".join(figures))
        if args.burst:
            benches[0].burst(args.burst, args.pool, args.pages_per_delivery, args.duplicates, args.concurrency,
                             args.drain_timeout)
    finally:
        if not args.keep:
            for bench in benches:
                removed = admin.remove(bench.name)
                print(f"removed the bench source {bench.name}: {removed.documents_deleted} documents")


if __name__ == "__main__":
    main()
