"""A Notion workspace in memory, served over the real wire format (API
version 2022-06-28): ``POST /v1/search``, ``GET /v1/pages/{id}``,
``GET /v1/blocks/{id}/children``, cursor pagination, bearer auth, error
objects. Timestamps are rounded down to the minute, as Notion's are.

Tests edit it directly (``add``, ``edit``, ``archive``, ``delete``) and move
its clock; like Notion's search, it leaves archived pages out unless
``archived_in_search`` is set, and can be made to miss a live page (``hide``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.connectors.api_server import ApiServer, Reply, Request

__all__ = ["NotionWorkspace", "rich", "block", "TOKEN"]

TOKEN = "secret_notion_test_token"
VERSION = "2022-06-28"
_TEXT_KINDS = {"paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item", "numbered_list_item",
               "to_do", "toggle", "quote", "callout", "code"}


def rich(text: str, *, code: bool = False, href: str | None = None) -> dict[str, Any]:
    """One rich text object."""
    annotations = {"bold": False, "italic": False, "strikethrough": False, "underline": False, "code": code,
                   "color": "default"}
    return {"type": "text", "text": {"content": text, "link": {"url": href} if href else None},
            "annotations": annotations, "plain_text": text, "href": href}


def block(kind: str, text: str = "", *children: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A block as a test writes it: its type's fields, children under "children"."""
    data: dict[str, Any] = {"rich_text": [rich(text)] if text else []} if kind in _TEXT_KINDS else {}
    data.update(fields)
    return {"type": kind, kind: data, "children": list(children)}


def _iso(epoch: float, *, minute: bool = True) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:00.000Z" if minute else "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"object": "error", "status": status, "code": code, "message": message}, headers or {})


@dataclass
class _Page:
    id: str
    title: str
    blocks: list[str]
    created: float
    edited: float
    archived: bool = False
    hidden: bool = False


@dataclass
class _Block:
    data: dict[str, Any]
    children: list[str] = field(default_factory=list)


class NotionWorkspace:
    def __init__(self, *, token: str = TOKEN, page_cap: int = 100) -> None:
        self.token = token
        self.page_cap = page_cap  # fewer per page than asked, as Notion may send
        self.archived_in_search = False
        self.pages: dict[str, _Page] = {}
        self.blocks: dict[str, _Block] = {}
        self.server = ApiServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    # -- what tests do to the workspace ------------------------------------------------

    def add(self, title: str, *blocks: dict[str, Any], edited: float | None = None) -> str:
        pid = str(uuid.uuid4())
        now = self.server.clock if edited is None else edited
        self.pages[pid] = _Page(pid, title, self._store(pid, list(blocks)), now, now)
        return pid

    def edit(self, pid: str, *blocks: dict[str, Any], title: str | None = None) -> None:
        page = self.pages[pid]
        if title is not None:
            page.title = title
        if blocks:
            page.blocks = self._store(pid, list(blocks))
        page.edited = self.server.clock

    def archive(self, pid: str, *, touch: bool = True) -> None:
        """Into the trash; ``touch=False`` keeps the timestamp (the worst case for delivery ids)."""
        self.pages[pid].archived = True
        if touch:
            self.pages[pid].edited = self.server.clock

    def restore(self, pid: str) -> None:
        """Out of the trash; the timestamp stays."""
        self.pages[pid].archived = False

    def delete(self, pid: str) -> None:
        del self.pages[pid]

    def hide(self, pid: str, hidden: bool = True) -> None:
        self.pages[pid].hidden = hidden

    def tick(self, seconds: float) -> None:
        self.server.tick(seconds)

    def _store(self, parent: str, blocks: list[dict[str, Any]]) -> list[str]:
        ids = []
        for written in blocks:
            bid = str(uuid.uuid4())
            data = {k: v for k, v in written.items() if k != "children"}
            self.blocks[bid] = _Block({"parent": {"type": "page_id", "page_id": parent}, **data},
                                      self._store(bid, written.get("children", [])))
            ids.append(bid)
        return ids

    # -- the wire ----------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "API token is invalid.")
        if request.headers.get("notion-version") != VERSION:
            return _error(400, "missing_version", "Notion-Version header failed validation.")
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and parts == ["v1", "search"]:
            return self._search(request.body or {})
        if request.method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "pages"]:
            page = self._page(parts[2])
            return Reply(200, self._page_object(page)) if page else self._not_found(parts[2])
        if request.method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "blocks"] and parts[3] == "children":
            return self._children(parts[2], request.query)
        return _error(400, "invalid_request_url", "Invalid request URL.")

    def _search(self, body: dict[str, Any]) -> Reply:
        if body.get("filter") not in (None, {"property": "object", "value": "page"}):
            return _error(400, "validation_error", "body.filter.value should be `page` or `database`.")
        sort = body.get("sort") or {"direction": "descending", "timestamp": "last_edited_time"}
        if sort.get("timestamp") != "last_edited_time" or sort.get("direction") not in ("ascending", "descending"):
            return _error(400, "validation_error", "body.sort failed validation.")
        listed = [p for p in self.pages.values() if not p.hidden and (self.archived_in_search or not p.archived)]
        listed.sort(key=lambda p: (p.edited // 60, p.id), reverse=sort["direction"] == "descending")
        return self._paginate([self._page_object(p) for p in listed], body.get("start_cursor"),
                              body.get("page_size", 100), "page_or_database")

    def _children(self, bid: str, query: dict[str, str]) -> Reply:
        page = self._page(bid)
        found = page.blocks if page else self.blocks[bid].children if bid in self.blocks else None
        if found is None:
            return self._not_found(bid)
        results = [self._block_object(child) for child in found]
        return self._paginate(results, query.get("start_cursor"), int(query.get("page_size", 100)), "block")

    def _paginate(self, results: list[dict[str, Any]], start: str | None, size: Any, kind: str) -> Reply:
        if not isinstance(size, int) or not 1 <= size <= 100:
            return _error(400, "validation_error", "body.page_size should be ≤ `100`.")
        ids = [r["id"] for r in results]
        if start is not None and start not in ids:
            return _error(400, "validation_error", "start_cursor provided is invalid.")
        first = ids.index(start) if start else 0
        chunk = results[first:first + min(size, self.page_cap)]
        more = first + len(chunk) < len(results)
        return Reply(200, {"object": "list", "results": chunk, "next_cursor": ids[first + len(chunk)] if more else None,
                           "has_more": more, "type": kind, kind: {}})

    def _page(self, raw: str) -> _Page | None:
        try:
            return self.pages.get(str(uuid.UUID(raw)))
        except ValueError:
            return None

    def _page_object(self, page: _Page) -> dict[str, Any]:
        user = {"object": "user", "id": "6794760a-1f15-45cd-9c65-0dfe42f5135a"}
        return {"object": "page", "id": page.id, "created_time": _iso(page.created), "last_edited_time": _iso(page.edited),
                "created_by": user, "last_edited_by": user, "cover": None, "icon": None,
                "parent": {"type": "workspace", "workspace": True}, "archived": page.archived,
                "in_trash": page.archived,
                "properties": {"Tags": {"id": "a%3Ab", "type": "multi_select", "multi_select": []},
                               "Name": {"id": "title", "type": "title", "title": [rich(page.title)]}},
                "url": f"https://www.notion.so/{page.id.replace('-', '')}", "public_url": None}

    def _block_object(self, bid: str) -> dict[str, Any]:
        stored = self.blocks[bid]
        stamp = _iso(self.server.clock)
        return {"object": "block", "id": bid, "created_time": stamp, "last_edited_time": stamp,
                "has_children": bool(stored.children), "archived": False, "in_trash": False, **stored.data}

    @staticmethod
    def _not_found(raw: str) -> Reply:
        return _error(404, "object_not_found", f"Could not find block with ID: {raw}. Make sure the relevant pages "
                                               "and databases are shared with your integration.")
