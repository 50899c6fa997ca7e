"""A GitHub repository's docs folder over the REST API, as a ``SourceConnector``.

No clone: the branch head comes from a conditional request (an unchanged
branch answers 304, which GitHub does not count against the rate limit), the
changes from ``compare/{base}...{head}``, the pages from the contents API.

Two limits of ``compare`` shape the code. Its ``files`` come on the first page
only and stop at 300 (its ``Link`` header pages through *commits*, never
files), and it diffs from the merge base, so after a force push it is not
``base → head``. In both cases the two commits' trees are diffed instead; that
is exact, though a rename shows as a removal and an addition. When the base
commit is gone altogether, every page is listed again as added (as the git
connector does).
"""

from __future__ import annotations

import os
import posixpath
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from connectors.git_changes import docs_page
from connectors.http_source import error_message, json_body, request, retry_after_seconds, succeeded
from connectors.source_connector import Poll, RateLimited, SourceUnavailable
from wekadocs.change_event import ChangeEvent, ChangeType, delivery_id
from wekadocs.source_registry import SourceConfig, SourceError

__all__ = ["GitHubConnector", "parse_repo", "API_URL", "COMPARE_FILES_CAP"]

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "wekadocs-github-connector"
COMPARE_FILES_CAP = 300  # compare lists at most this many files, with no further page of them
DEFAULT_WAIT_S = 60.0  # GitHub: without a header saying how long, wait at least a minute
_JSON = "application/vnd.github+json"
_RAW = "application/vnd.github.raw+json"
_STATUS: dict[str, ChangeType] = {"added": "added", "modified": "modified", "changed": "modified",
                                  "removed": "removed", "renamed": "renamed", "copied": "added"}
_REPO = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/]+@)?[^/@]+/"  # https://host/, ssh://git@host:22/
                   r"|(?:[^@/]+@)?[^/:@]+:"  # scp-like git@host:
                   r"|(?:[^/:@]+/)?)"  # host/ or nothing
                   r"([A-Za-z0-9][A-Za-z0-9_-]*)/([A-Za-z0-9_.-]+?)(?:\.git)?/?")


def parse_repo(url: str) -> tuple[str, str]:
    """``(owner, repo)`` from ``https://github.com/o/r``, ``git@github.com:o/r.git``
    or plain ``o/r``; SourceError for anything else (a URL into the tree,
    a bare name)."""
    match = _REPO.fullmatch(url.strip())
    if match is None or match[2] in (".", ".."):
        raise SourceError(f"cannot read a GitHub repository from {url!r}: "
                          "expected https://github.com/OWNER/REPO, git@github.com:OWNER/REPO.git or OWNER/REPO")
    return match[1], match[2]


class GitHubConnector:
    def __init__(self, config: SourceConfig, *, token: str | None = None, client: httpx.Client | None = None,
                 timeout_s: float = 10.0) -> None:
        if config.kind != "github":
            raise SourceError(f"source {config.name} is a {config.kind} source, not a github one")
        self.config = config
        self.owner, self.repo = parse_repo(config.url)
        if token is None and config.token_env:
            token = os.environ.get(config.token_env)
            if not token:
                raise SourceError(f"source {config.name}: environment variable {config.token_env} "
                                  "(its token_env) is not set")
        self.token = token
        self.timeout_s = timeout_s
        self.base = f"{(config.api_url or API_URL).rstrip('/')}/repos/{quote(self.owner)}/{quote(self.repo)}"
        self._own_client = client is None
        self.client = client or httpx.Client()

    def poll(self, cursor: Mapping[str, str]) -> Poll:
        """Cursor: ``revision``, the head whose changes were all queued, and
        ``etag``, the branch answer's validator for the next conditional poll."""
        since = cursor.get("revision") or None
        etag = cursor.get("etag") if since else None
        response = self._get(f"branches/{quote(self.config.branch, safe='')}", etag=etag, allow=(304,))
        if response.status_code == 304:
            return Poll([], dict(cursor))
        try:
            head = str(_json(response, "the branch")["commit"]["sha"])
        except (KeyError, TypeError) as exc:
            raise SourceUnavailable(f"github source {self.config.name}: the branch answer names no commit") from exc
        new_cursor = {"revision": head}
        if response.headers.get("etag"):
            new_cursor["etag"] = response.headers["etag"]
        if since == head:
            return Poll([], new_cursor)
        events = self._listing(head) if since is None else self._changes(since, head)
        return Poll(events, new_cursor)

    def read(self, path: str, revision: str = "") -> bytes | None:
        """The page as it is now on the branch (so never older than
        ``revision``, the head of the event that named it); None when gone."""
        full = posixpath.join(self.config.docs_path.strip("/"), path)
        response = self._get(f"contents/{quote(full)}", params={"ref": self.config.branch}, accept=_RAW,
                             allow=(404,))
        if response.status_code == 404:
            # A 404 is also what a repository we lost access to answers: make
            # sure the branch is still there before calling the page gone.
            self._get(f"branches/{quote(self.config.branch, safe='')}")
            return None
        return response.content

    def close(self) -> None:
        """Closes the HTTP client when this connector made it."""
        if self._own_client:
            self.client.close()

    def __enter__(self) -> GitHubConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _changes(self, base: str, head: str) -> list[ChangeEvent]:
        response = self._get(f"compare/{base}...{head}", allow=(404, 422))
        if response.status_code in (404, 422):
            # The base commit is gone (history rewritten): list every page
            # again. Ingestion is idempotent by checksum, so unchanged pages
            # cost nothing; pages the rewrite deleted stay until re-added.
            return self._listing(head)
        comparison = _json(response, "the comparison")
        files = comparison.get("files") or []
        if comparison.get("status") not in ("ahead", "identical") or len(files) >= COMPARE_FILES_CAP:
            return self._tree_diff(base, head)
        events = [self._compare_event(entry, head) for entry in files]
        return [event for event in events if event is not None]

    def _compare_event(self, entry: Mapping[str, Any], head: str) -> ChangeEvent | None:
        kind = _STATUS.get(entry.get("status", ""))
        path = self._page(entry["filename"])
        if kind != "renamed":
            return self._event(kind, path, head) if kind and path else None
        old = self._page(entry.get("previous_filename") or "")
        if path is None:  # moved out of the docs: gone from them
            return self._event("removed", old, head) if old else None
        return self._event("renamed", path, head, old) if old else self._event("added", path, head)

    def _listing(self, head: str) -> list[ChangeEvent]:
        return [self._event("added", page, head) for page in sorted(self._tree(head))]

    def _tree_diff(self, base: str, head: str) -> list[ChangeEvent]:
        before, after = self._tree(base), self._tree(head)
        events = []
        for page in sorted(before.keys() | after.keys()):
            if page not in after:
                events.append(self._event("removed", page, head))
            elif page not in before:
                events.append(self._event("added", page, head))
            elif before[page] != after[page]:
                events.append(self._event("modified", page, head))
        return events

    def _tree(self, tree: str, prefix: str = "") -> dict[str, str]:
        """Docs page → blob sha, for every page under a tree (a commit sha
        names its root tree). One recursive listing; when GitHub cuts it short
        (past 100,000 entries or 7 MB), one level at a time, going down only
        toward or into the docs folder."""
        body = _json(self._get(f"git/trees/{tree}", params={"recursive": "1"}), "a tree")
        walk = bool(body.get("truncated"))
        if walk:
            body = _json(self._get(f"git/trees/{tree}"), "a tree")
        pages: dict[str, str] = {}
        for entry in body.get("tree", []):
            path = prefix + entry["path"]
            page = self._page(path)
            if entry.get("type") == "blob" and entry.get("mode") != "120000" and page:  # not symlinks
                pages[page] = entry["sha"]
            elif walk and entry.get("type") == "tree" and self._toward_docs(path):
                pages.update(self._tree(entry["sha"], path + "/"))
        return pages

    def _toward_docs(self, folder: str) -> bool:
        docs = self.config.docs_path.strip("/")
        return not docs or folder == docs or folder.startswith(docs + "/") or docs.startswith(folder + "/")

    def _page(self, path: str) -> str | None:
        return docs_page(path, self.config.docs_path) if path else None

    def _event(self, kind: ChangeType, page: str, head: str, old: str | None = None) -> ChangeEvent:
        return ChangeEvent(source=self.config.name, path=page, change=kind, revision=head, priority="normal",
                           delivery_id=delivery_id("github", self.config.name, head, page), old_path=old)

    def _get(self, path: str, *, params: Mapping[str, str] | None = None, accept: str = _JSON,
             etag: str | None = None, allow: tuple[int, ...] = ()) -> httpx.Response:
        """The one seam to GitHub: every transport failure and error status
        becomes ``SourceUnavailable`` or ``RateLimited`` here. Statuses in
        ``allow`` are returned for the caller to read."""
        headers = {"Accept": accept, "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if etag:
            headers["If-None-Match"] = etag
        what = f"github source {self.config.name}: GET {path}"
        response = request(self.client, "GET", f"{self.base}/{path}", what=what, site=self.base,
                           timeout_s=self.timeout_s, headers=headers, params=params, follow_redirects=True)
        if succeeded(response, allow):
            return response
        status = response.status_code
        message = error_message(response, ("message",), blank="")  # GitHub's own words, if any
        wait = _rate_limit_wait(response, message)
        if wait is not None:
            raise RateLimited(f"{what}: GitHub rate limit ({message})", wait)
        if status == 401:
            who = f"the token in {self.config.token_env}" if self.config.token_env else "the token"
            raise SourceUnavailable(f"{what}: GitHub refused {who} (401 {message})")
        if status == 404:
            raise SourceUnavailable(f"{what}: repository {self.owner}/{self.repo} or its branch "
                                    f"{self.config.branch!r} not found (404; a private repository needs a token)")
        raise SourceUnavailable(f"{what}: GitHub answered {status} {message}".rstrip())


def _json(response: httpx.Response, what: str) -> Any:
    return json_body(response, "GitHub", what)


def _rate_limit_wait(response: httpx.Response, message: str) -> float | None:
    """Seconds to wait when a 403 or 429 is a rate limit, else None. GitHub's
    order: ``Retry-After`` first (secondary limits), then an exhausted primary
    limit's ``x-ratelimit-reset`` (epoch seconds), then a minute."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if "retry-after" in headers:
        return retry_after_seconds(headers["retry-after"], DEFAULT_WAIT_S)
    if headers.get("x-ratelimit-remaining") == "0":
        try:
            return float(headers["x-ratelimit-reset"]) - time.time()
        except (KeyError, ValueError):
            return DEFAULT_WAIT_S
    if response.status_code == 429 or "rate limit" in message.lower():
        return DEFAULT_WAIT_S
    return None  # a plain 403: the token may not read this repository
