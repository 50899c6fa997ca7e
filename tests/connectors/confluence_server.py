"""A Confluence Cloud site in memory, served over the real v1 wire format
under ``/wiki``: ``GET /rest/api/content`` (offset pages), ``GET
/rest/api/content/search`` (CQL, opaque cursors), ``GET /rest/api/content/{id}``,
``_links.next`` relative to the site, basic or bearer auth.

Tests edit it directly (``add``, ``edit``, ``trash``, ``restore``, ``purge``,
``archive``, ``move``) and move its clock. It understands only the CQL the
connector should send and answers 400 to anything else, as Confluence does to
CQL it cannot parse. ``unindexed`` pages are left out of search results, as
pages the search index has not caught up with.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.connectors.api_server import ApiServer, Reply, Request

__all__ = ["ConfluenceSite", "USER", "TOKEN"]

USER = "docs-bot@acme.test"
TOKEN = "confluence-api-token"
_CQL = re.compile(r'space\s*=\s*"((?:[^"\\]|\\.)*)"\s+AND\s+type\s*=\s*page'
                  r'(?:\s+AND\s+lastmodified\s*>=\s*now\("-(\d+)m"\))?', re.I)


@dataclass
class _Content:
    id: str
    title: str
    body: str
    space: str
    version: int
    when: float
    status: str = "current"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"statusCode": status, "data": {"authorized": status != 401, "valid": True, "errors": []},
                          "message": message}, headers or {})


class ConfluenceSite:
    def __init__(self, space: str = "DOCS", *, user: str | None = USER, token: str = TOKEN,
                 limit_cap: int = 2) -> None:
        self.space = space
        self.user = user  # None: a bearer token (personal access token), not basic auth
        self.token = token
        self.limit_cap = limit_cap
        self.pages: dict[str, _Content] = {}
        self.unindexed: set[str] = set()
        self.last_search: list[str] = []  # ids the last search answered, over all its pages
        self._next_id = 98_300
        self.server = ApiServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    # -- what tests do to the site -----------------------------------------------------

    def add(self, title: str, body: str = "<p>Hello.</p>", *, space: str | None = None) -> str:
        self._next_id += 5
        pid = str(self._next_id)
        self.pages[pid] = _Content(pid, title, body, space or self.space, 1, self.server.clock)
        return pid

    def edit(self, pid: str, body: str | None = None, *, title: str | None = None) -> None:
        page = self.pages[pid]
        page.body = body if body is not None else page.body
        page.title = title if title is not None else page.title
        page.version += 1
        page.when = self.server.clock

    def trash(self, pid: str) -> None:
        self.pages[pid].status = "trashed"  # the version stays, as Confluence's does

    def restore(self, pid: str) -> None:
        self.pages[pid].status = "current"

    def archive(self, pid: str) -> None:
        self.pages[pid].status = "archived"

    def purge(self, pid: str) -> None:
        del self.pages[pid]

    def move(self, pid: str, space: str) -> None:
        self.pages[pid].space = space

    def tick(self, seconds: float) -> None:
        self.server.tick(seconds)

    # -- the wire ----------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if not self._authorized(request.headers.get("authorization", "")):
            return _error(401, "Client must be authenticated to access this resource.")
        if request.method != "GET" or not request.path.startswith("/wiki/rest/api/content"):
            return _error(404, "null for uri: " + request.path)
        rest = request.path.removeprefix("/wiki/rest/api/content").strip("/")
        if rest == "":
            return self._listing(request.query)
        if rest == "search":
            return self._search(request.query)
        if rest.isdigit():
            return self._content(rest, request.query)
        return _error(404, "null for uri: " + request.path)

    def _authorized(self, header: str) -> bool:
        if self.user is None:
            return header == f"Bearer {self.token}"
        return header == "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()

    def _listing(self, query: dict[str, str]) -> Reply:
        if query.get("type", "page") != "page":
            return _error(400, "only pages here")
        statuses = query.get("status", "current").split(",")
        found = [p for p in self.pages.values() if p.space == query.get("spaceKey") and p.status in statuses]
        found.sort(key=lambda p: int(p.id))
        start = int(query.get("start", "0"))
        limit = min(int(query.get("limit", "25")), self.limit_cap)
        chunk = found[start:start + limit]
        links = self._links("/rest/api/content", query)
        if start + limit < len(found):
            links["next"] = "/rest/api/content?" + urlencode({**query, "limit": str(limit), "start": str(start + limit)})
        return Reply(200, {"results": [self._object(p, query.get("expand", "")) for p in chunk], "start": start,
                           "limit": limit, "size": len(chunk), "_links": links})

    def _search(self, query: dict[str, str]) -> Reply:
        cql = query.get("cql", "")
        match = _CQL.fullmatch(cql.strip())
        if match is None:
            return _error(400, f"Could not parse cql : {cql}")
        space = match[1].replace('\\"', '"').replace("\\\\", "\\")
        since = self.server.clock - int(match[2]) * 60 if match[2] else None
        found = [p for p in self.pages.values() if p.space == space and p.status == "current"
                 and p.id not in self.unindexed and (since is None or p.when >= since)]
        found.sort(key=lambda p: (p.when, int(p.id)))
        try:
            start = int(base64.urlsafe_b64decode(query["cursor"]).decode()) if "cursor" in query else 0
        except ValueError:
            return _error(400, "invalid cursor")
        if start == 0:
            self.last_search = []
        limit = min(int(query.get("limit", "25")), self.limit_cap)
        chunk = found[start:start + limit]
        self.last_search += [p.id for p in chunk]
        links = self._links("/rest/api/content/search", query)
        if start + limit < len(found):
            cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            rest = {k: v for k, v in query.items() if k not in ("cursor", "limit")}
            links["next"] = "/rest/api/content/search?" + urlencode({"next": "true", "cursor": cursor,
                                                                     "limit": str(limit), **rest})
        return Reply(200, {"results": [self._object(p, query.get("expand", "")) for p in chunk], "start": start,
                           "limit": limit, "size": len(chunk), "cqlQuery": cql, "searchDuration": 12,
                           "_links": links})

    def _content(self, pid: str, query: dict[str, str]) -> Reply:
        page = self.pages.get(pid)
        if page is None or page.status not in query.get("status", "current").split(","):
            return _error(404, f"No content found with id: ContentId{{id={pid}}}")
        return Reply(200, self._object(page, query.get("expand", "")))

    def _object(self, page: _Content, expand: str) -> dict[str, Any]:
        fields = set(expand.split(","))
        content: dict[str, Any] = {
            "id": page.id, "type": "page", "status": page.status, "title": page.title,
            "space": {"key": page.space, "name": page.space.title(), "type": "global"},
            "version": {"by": {"type": "known", "accountId": "557058:bot", "displayName": "Docs Bot"},
                        "when": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(page.when)),
                        "number": page.version, "minorEdit": False},
            "_links": {"webui": f"/spaces/{page.space}/pages/{page.id}", "self": f"{self.url}/wiki/rest/api/content/{page.id}"},
            "_expandable": {"children": "", "ancestors": "", "history": f"/rest/api/content/{page.id}/history"},
        }
        if "body.storage" in fields:
            content["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        else:
            content["_expandable"]["body"] = ""
        return content

    def _links(self, path: str, query: dict[str, str]) -> dict[str, str]:
        # the site's public name, not the address the test talks to: next links must not depend on it
        site = "https://acme.atlassian.net/wiki"
        return {"base": site, "context": "/wiki", "self": f"{site}{path}?{urlencode(query)}"}
