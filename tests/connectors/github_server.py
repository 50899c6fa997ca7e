"""A local stand-in for GitHub's REST API: one in-memory repository, served
over real HTTP by a stdlib server in a thread.

It speaks the parts of the wire format the connector uses, as GitHub
documents them (REST API version 2022-11-28):

* ``GET /repos/{o}/{r}/branches/{branch}`` with a weak ``ETag``; a matching
  ``If-None-Match`` gets ``304 Not Modified``, which uses no rate-limit quota.
* ``GET /repos/{o}/{r}/compare/{base}...{head}``: a three-dot comparison (from
  the merge base), ``status`` ahead/behind/diverged/identical, ``files[]`` with
  ``status`` and ``previous_filename`` (exact-content renames), at most 300
  files and on the first page only; ``commits`` paged with a ``Link`` header.
* ``GET /repos/{o}/{r}/git/trees/{sha}[?recursive=1]``: a commit sha names its
  root tree; a recursive listing past ``tree_limit`` entries comes back cut
  short with ``truncated: true``.
* ``GET /repos/{o}/{r}/contents/{path}?ref=``: raw bytes for
  ``application/vnd.github.raw+json``, else JSON with base64 ``content``.
* Auth: a wrong token gets ``401 Bad credentials``; no token on the private
  repository gets ``404 Not Found``, as GitHub hides private repositories.
* ``x-ratelimit-*`` headers on every answer; ``reply_next`` queues canned
  answers (rate limits, 500s) for the next requests.

Commits are dicts of path → bytes; tests ``push`` new ones onto the branch,
and ``reset`` and ``forget`` rewrite its history.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FakeGitHub", "Seen", "API_VERSION", "COMPARE_FILES_CAP"]

API_VERSION = "2022-11-28"
COMPARE_FILES_CAP = 300
RATE_LIMIT = 5000


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it, and what it answered."""

    path: str  # decoded, without the query
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    status: int
    response_headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Commit:
    sha: str
    files: dict[str, bytes]
    parent: str | None
    tree: str  # root tree sha
    message: str
    date: str


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class FakeGitHub:
    def __init__(self, owner: str = "acme", repo: str = "handbook", *, branch: str = "main",
                 token: str | None = "s3cret", private: bool = True) -> None:
        self.owner, self.repo, self.branch = owner, repo, branch
        self.token = token
        self.private = private
        self.tree_limit = 100_000  # GitHub's limit on a recursive listing
        self.delay_s = 0.0  # before every answer, to make clients time out
        self.remaining = RATE_LIMIT
        self.requests: list[Seen] = []
        self.commits: dict[str, _Commit] = {}
        self.branches: dict[str, str] = {}
        self._trees: dict[str, list[dict[str, Any]]] = {}
        self._canned: list[_Answer] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = False  # so stop() waits for every answer in flight
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-github", daemon=True)

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()  # waits for handler threads
        self._thread.join()

    # -- the repository ----------------------------------------------------

    @property
    def head(self) -> str:
        return self.branches[self.branch]

    def push(self, changes: Mapping[str, bytes | str | None], message: str = "change") -> str:
        """A commit on the branch: ``changes`` maps a path to its new content,
        or to None to delete it. Returns the commit sha."""
        with self._lock:
            parent = self.branches.get(self.branch)
            files = dict(self.commits[parent].files) if parent else {}
            for path, content in changes.items():
                if content is None:
                    files.pop(path, None)
                else:
                    files[path] = content.encode() if isinstance(content, str) else content
            return self._commit(files, parent, message)

    def reset(self, sha: str) -> None:
        """Move the branch back to ``sha`` (the first half of a force push)."""
        with self._lock:
            self.branches[self.branch] = sha

    def forget(self, sha: str) -> None:
        """Drop a commit no branch reaches any more, as garbage collection does."""
        with self._lock:
            del self.commits[sha]

    def reply_next(self, status: int, body: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with this, whatever they ask."""
        payload = json.dumps(body).encode() if body is not None else b""
        with self._lock:
            self._canned.extend(_Answer(status, payload, dict(headers or {})) for _ in range(times))

    def seen(self, fragment: str) -> list[Seen]:
        """Requests whose path contains ``fragment``."""
        return [r for r in self.requests if fragment in r.path]

    def _commit(self, files: dict[str, bytes], parent: str | None, message: str) -> str:
        tree = self._store_tree(files)
        stamp = f"commit {tree} {parent} {message} {len(self.commits)} {time.time_ns()}"
        sha = hashlib.sha1(stamp.encode()).hexdigest()
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.commits[sha] = _Commit(sha, files, parent, tree, message, date)
        self.branches[self.branch] = sha
        return sha

    def _store_tree(self, files: Mapping[str, bytes]) -> str:
        """Store the tree objects for ``files``; the root tree's sha."""
        children: dict[str, dict[str, bytes]] = {}
        entries = []
        for path, content in files.items():
            name, _, rest = path.partition("/")
            if rest:
                children.setdefault(name, {})[rest] = content
            else:
                entries.append({"path": name, "mode": "100644", "type": "blob", "sha": _blob_sha(content),
                                "size": len(content)})
        for name, sub in children.items():
            entries.append({"path": name, "mode": "040000", "type": "tree", "sha": self._store_tree(sub)})
        entries.sort(key=lambda e: e["path"])
        sha = hashlib.sha1(json.dumps(entries, sort_keys=True).encode()).hexdigest()
        self._trees[sha] = entries
        return sha

    def _resolve(self, ref: str) -> _Commit | None:
        sha = self.branches.get(ref, ref)
        return self.commits.get(sha)

    def _ancestry(self, sha: str) -> list[str]:
        """``sha`` and its ancestors, newest first."""
        chain = []
        while sha in self.commits:
            chain.append(sha)
            sha = self.commits[sha].parent or ""
        return chain

    # -- the API -----------------------------------------------------------

    def handle(self, path: str, query: dict[str, str], headers: dict[str, str]) -> _Answer:
        """Answer one request, with the rate-limit headers, and record it."""
        with self._lock:
            answer = self._canned.pop(0) if self._canned else self._route(path, query, headers)
            sent = {**self._rate_headers(answer.status), **{k.lower(): v for k, v in answer.headers.items()}}
            self.requests.append(Seen(path, query, headers, answer.status, sent, answer.body))
            return _Answer(answer.status, answer.body, sent)

    def _route(self, path: str, query: dict[str, str], headers: dict[str, str]) -> _Answer:
        if headers.get("x-github-api-version", API_VERSION) != API_VERSION:
            return _error(400, f"Unsupported API version {headers['x-github-api-version']}")
        presented = headers.get("authorization", "").removeprefix("Bearer ").removeprefix("token ")
        if presented and presented != self.token:
            return _error(401, "Bad credentials")
        prefix = f"/repos/{self.owner}/{self.repo}/"
        if not path.startswith(prefix) or (self.private and not presented):
            return _error(404, "Not Found")
        route, _, rest = path[len(prefix):].partition("/")
        if route == "branches":
            return self._branch(rest, headers)
        if route == "compare" and "..." in rest:
            base, _, head = rest.partition("...")
            return self._compare(base, head, query)
        if route == "git" and rest.startswith("trees/"):
            return self._tree(rest.removeprefix("trees/"), recursive="recursive" in query)
        if route == "contents":
            return self._contents(rest, query.get("ref", self.branch), headers)
        return _error(404, "Not Found")

    def _branch(self, name: str, headers: dict[str, str]) -> _Answer:
        if name not in self.branches:
            return _error(404, "Branch not found")
        sha = self.branches[name]
        body = {"name": name, "protected": False,
                "commit": {"sha": sha, "url": f"{self.url}/repos/{self.owner}/{self.repo}/commits/{sha}",
                           "commit": {"message": self.commits[sha].message}},
                "_links": {"self": f"{self.url}/repos/{self.owner}/{self.repo}/branches/{name}"}}
        payload = json.dumps(body).encode()
        etag = f'W/"{hashlib.sha1(payload).hexdigest()}"'
        wanted = {tag.strip() for tag in headers.get("if-none-match", "").split(",")}
        if etag in wanted:
            return _Answer(304, b"", {"ETag": etag})
        return _Answer(200, payload, {"ETag": etag, "Content-Type": "application/json; charset=utf-8"})

    def _compare(self, base_ref: str, head_ref: str, query: dict[str, str]) -> _Answer:
        base, head = self._resolve(base_ref), self._resolve(head_ref)
        if base is None or head is None:
            return _error(404, "Not Found")
        head_line, base_line = self._ancestry(head.sha), self._ancestry(base.sha)
        merge_base = next((sha for sha in base_line if sha in head_line), None)
        if merge_base is None:
            return _error(404, f"No common ancestor between {base_ref} and {head_ref}.")
        ahead_by, behind_by = head_line.index(merge_base), base_line.index(merge_base)
        status = ("identical" if ahead_by == behind_by == 0 else "ahead" if behind_by == 0
                  else "behind" if ahead_by == 0 else "diverged")
        commits = [{"sha": sha, "commit": {"message": self.commits[sha].message,
                                           "author": {"date": self.commits[sha].date}}}
                   for sha in reversed(head_line[:ahead_by])]
        paged = "page" in query or "per_page" in query
        per_page = int(query.get("per_page", 30 if paged else 250))
        page = int(query.get("page", 1))
        last = max(1, -(-len(commits) // per_page))
        body: dict[str, Any] = {
            "url": f"{self.url}/repos/{self.owner}/{self.repo}/compare/{base_ref}...{head_ref}",
            "base_commit": {"sha": base.sha}, "merge_base_commit": {"sha": merge_base},
            "status": status, "ahead_by": ahead_by, "behind_by": behind_by, "total_commits": len(commits),
            "commits": commits[(page - 1) * per_page:page * per_page]}
        if page == 1:
            body["files"] = self._diff(self.commits[merge_base].files, head.files)[:COMPARE_FILES_CAP]
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if last > 1:
            link = f"{self.url}/repos/{self.owner}/{self.repo}/compare/{base_ref}...{head_ref}?per_page={per_page}"
            rels = ([("prev", page - 1), ("first", 1)] if page > 1 else []) + \
                ([("next", page + 1), ("last", last)] if page < last else [])
            headers["Link"] = ", ".join(f'<{link}&page={n}>; rel="{rel}"' for rel, n in rels)
        return _Answer(200, json.dumps(body).encode(), headers)

    def _diff(self, before: dict[str, bytes], after: dict[str, bytes]) -> list[dict[str, Any]]:
        removed = {p: c for p, c in before.items() if p not in after}
        files: list[dict[str, Any]] = []
        for path in sorted(after):
            content = after[path]
            entry = {"sha": _blob_sha(content), "filename": path, "additions": 1, "deletions": 0, "changes": 1,
                     "blob_url": f"{self.url}/{self.owner}/{self.repo}/blob/x/{path}",
                     "raw_url": f"{self.url}/{self.owner}/{self.repo}/raw/x/{path}",
                     "contents_url": f"{self.url}/repos/{self.owner}/{self.repo}/contents/{path}"}
            old = next((p for p, c in removed.items() if c == content), None)
            if path not in before and old is not None:
                del removed[old]
                files.append({**entry, "status": "renamed", "previous_filename": old, "additions": 0, "changes": 0})
            elif path not in before:
                files.append({**entry, "status": "added"})
            elif before[path] != content:
                files.append({**entry, "status": "modified", "deletions": 1, "changes": 2, "patch": "@@ -1 +1 @@"})
        files.extend({"sha": _blob_sha(c), "filename": p, "status": "removed", "additions": 0, "deletions": 1,
                      "changes": 1} for p, c in removed.items())
        return sorted(files, key=lambda f: f["filename"])

    def _tree(self, sha: str, *, recursive: bool) -> _Answer:
        commit = self.commits.get(sha)
        root = commit.tree if commit else sha
        if root not in self._trees:
            return _error(404, "Not Found")
        entries = list(self._flatten(root, "")) if recursive else list(self._trees[root])
        truncated = recursive and len(entries) > self.tree_limit  # the limit is on recursive listings
        body = {"sha": root, "url": f"{self.url}/repos/{self.owner}/{self.repo}/git/trees/{root}",
                "tree": entries[:self.tree_limit] if truncated else entries, "truncated": truncated}
        return _Answer(200, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})

    def _flatten(self, tree: str, prefix: str) -> Iterator[dict[str, Any]]:
        for entry in self._trees[tree]:
            yield {**entry, "path": prefix + entry["path"]}
            if entry["type"] == "tree":
                yield from self._flatten(entry["sha"], prefix + entry["path"] + "/")

    def _contents(self, path: str, ref: str, headers: dict[str, str]) -> _Answer:
        commit = self._resolve(ref)
        if commit is None:
            return _error(404, f"No commit found for the ref {ref}")
        if path not in commit.files:
            return _error(404, "Not Found")
        content = commit.files[path]
        if "application/vnd.github.raw" in headers.get("accept", ""):
            return _Answer(200, content, {"Content-Type": "application/vnd.github.raw+json; charset=utf-8"})
        body = {"type": "file", "encoding": "base64", "size": len(content), "name": path.rsplit("/", 1)[-1],
                "path": path, "sha": _blob_sha(content),
                "content": base64.encodebytes(content).decode()}  # GitHub wraps the base64 in lines
        return _Answer(200, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})

    def _rate_headers(self, status: int) -> dict[str, str]:
        """The primary rate limit, as GitHub reports it on every answer; a
        304 does not count against it."""
        if status != 304 and self.remaining > 0:
            self.remaining -= 1
        return {"x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-used": str(RATE_LIMIT - self.remaining), "x-ratelimit-resource": "core",
                "x-ratelimit-reset": str(int(time.time()) + 3600)}


def _blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _error(status: int, message: str) -> _Answer:
    body = {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    return _Answer(status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})


def _handler(github: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if github.delay_s:
                time.sleep(github.delay_s)
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), dict(parse_qsl(parts.query))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = github.handle(path, query, headers)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
            """Quiet: tests read ``github.requests`` instead."""

    return Handler
