"""A Notion workspace over the REST API, as a ``SourceConnector``.

The source is what the integration's token can see (the pages shared with
it). Each page is one Markdown document named ``{page id without dashes}.md``:
an id, not a title, so a retitled page keeps its path. Its revision is its
``last_edited_time``.

Notion's search can sort by ``last_edited_time`` but not filter by it, so a
poll pages through the search newest first and stops at the first page older
than the high-water mark less ``lookback_s`` (the search index lags edits a
little). Three properties of Notion shape the rest:

* ``last_edited_time`` is rounded down to the minute, so a page can change
  again without its timestamp moving. A page seen while its minute may still
  be open (judged by Notion's own clock, the ``Date`` header, plus
  ``settle_s``) is looked at again once the minute has closed and sent once
  more under a new delivery id; the consumer re-reads it, idempotently. A
  page first seen after its minute closed is sent once.
* Search is not guaranteed to return every page, and normally leaves out
  archived and trashed ones (when it does list one, flagged ``archived`` or
  ``in_trash``, it is removed at once). So the cursor keeps every page seen
  (id → last edit), and every ``full_listing_s`` the whole search is walked:
  a page whose last edit differs is sent, an unknown one is added (shared
  late, or indexed late, whatever its age), and a known one no longer listed
  is fetched by id: archived, trashed or 404 (deleted, or no longer shared)
  makes it "removed"; alive, it stays.
* A removed page stays in the cursor as a tombstone for two days (longer
  than the change queue remembers delivery ids), so a page restored with its
  old timestamp is sent under a delivery id the queue has not seen.

Cursor keys: ``since`` (the newest ``last_edited_time`` seen), ``pages``
(id → last edit, ``~`` marking a minute not yet closed, ``x<epoch>`` a
tombstone; sorted lines, zlib-compressed, base64) and ``listed`` (epoch
seconds of the last full listing). A cursor that cannot be read is treated as
none: every page is listed again as added.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from connectors import page_cursor
from connectors.http_source import error_message, json_body, request, retry_after_seconds, succeeded
from connectors.source_connector import Poll, RateLimited, SourceUnavailable
from wekadocs.change_event import ChangeEvent, ChangeType, delivery_id
from wekadocs.source_registry import SourceConfig, SourceError

__all__ = ["NotionConnector", "blocks_markdown", "API_URL", "NOTION_VERSION"]

API_URL = "https://api.notion.com"
NOTION_VERSION = "2022-06-28"
PAGE_SIZE = 100  # Notion's maximum for search and block children
MAX_DEPTH = 6  # nested blocks followed this deep below the page
DEFAULT_WAIT_S = 10.0  # when a 429 does not say how long (Notion always should)
_MINUTE = 60.0
_ID = re.compile(r"[0-9a-f]{32}")
_HEADINGS = {"heading_1": "##", "heading_2": "###", "heading_3": "####"}  # the title is the one "#"
_ITEMS = {"bulleted_list_item", "numbered_list_item", "to_do"}
_SKIPPED = {"child_page", "child_database", "unsupported", "breadcrumb", "table_of_contents"}


class NotionConnector:
    def __init__(self, config: SourceConfig, *, token: str | None = None, client: httpx.Client | None = None,
                 timeout_s: float = 10.0, page_size: int = PAGE_SIZE, full_listing_s: float = 3600.0,
                 lookback_s: float = 300.0, settle_s: float = 60.0) -> None:
        if config.kind != "notion":
            raise SourceError(f"source {config.name} is a {config.kind} source, not a notion one")
        if token is None and config.token_env:
            token = os.environ.get(config.token_env)
        if not token:
            where = f"environment variable {config.token_env} (its token_env) is not set" if config.token_env \
                else "it has no token_env naming the integration token"
            raise SourceError(f"notion source {config.name}: {where}")
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}")
        if lookback_s < _MINUTE + settle_s:
            raise ValueError("lookback_s must cover a minute plus settle_s, or unsettled pages drop out of view")
        self.config = config
        self.token = token
        self.timeout_s = timeout_s
        self.page_size = page_size
        self.full_listing_s = full_listing_s
        self.lookback_s = lookback_s
        self.settle_s = settle_s
        self.base = (config.api_url or API_URL).rstrip("/")
        self._own_client = client is None
        self.client = client or httpx.Client()

    def poll(self, cursor: Mapping[str, str]) -> Poll:
        """Pages edited since the cursor (its keys: see the module docstring);
        every page, as added, for an empty cursor."""
        pages, since, listed = page_cursor.load(cursor)
        full = since is None or time.time() - listed >= self.full_listing_s
        round_ = _Round(self, pages)
        floor = None if since is None or full else since - self.lookback_s
        for page in self._search(floor, round_):
            round_.visit(page)
        if full:
            for pid in round_.unlisted():
                round_.vanished(pid)
            listed = time.time()
        return Poll(round_.events, round_.cursor(since, listed, fraction="000"))

    def read(self, path: str, revision: str = "") -> bytes | None:
        """The page now (never older than ``revision``); None when it is
        archived, trashed, deleted or no longer shared with the integration."""
        pid = path.removesuffix(".md")
        if not path.endswith(".md") or not _ID.fullmatch(pid):
            return None
        response = self._call("GET", f"/v1/pages/{_dashed(pid)}", allow=(404,))
        if response.status_code == 404:
            return None
        page = _json(response, "a page")
        if page.get("archived") or page.get("in_trash"):
            return None
        body = blocks_markdown(self._blocks(_dashed(pid), 0))
        return f"# {_title(page)}\n\n{body}".rstrip().encode() + b"\n"

    def close(self) -> None:
        """Closes the HTTP client when this connector made it."""
        if self._own_client:
            self.client.close()

    def _search(self, floor: float | None, round_: _Round) -> Iterator[Mapping[str, Any]]:
        """Pages newest first, down to ``floor`` (all of them when None)."""
        start: str | None = None
        while True:
            body: dict[str, Any] = {"filter": {"property": "object", "value": "page"},
                                    "sort": {"direction": "descending", "timestamp": "last_edited_time"},
                                    "page_size": self.page_size}
            if start:
                body["start_cursor"] = start
            response = self._call("POST", "/v1/search", payload=body)
            round_.clock(response)
            listing = _json(response, "search results")
            for page in listing.get("results") or []:
                if page.get("object") != "page":
                    continue
                if floor is not None and page_cursor.epoch(page["last_edited_time"], "Notion") < floor:
                    return
                yield page
            start = listing.get("next_cursor")
            if not listing.get("has_more") or not start:
                return

    def _blocks(self, block_id: str, depth: int) -> list[dict[str, Any]]:
        """A block's children, theirs nested under ``"_children"``, to MAX_DEPTH."""
        blocks: list[dict[str, Any]] = []
        start: str | None = None
        while True:
            params = {"page_size": str(self.page_size), **({"start_cursor": start} if start else {})}
            listing = _json(self._call("GET", f"/v1/blocks/{block_id}/children", params=params), "block children")
            blocks.extend(listing.get("results") or [])
            start = listing.get("next_cursor")
            if not listing.get("has_more") or not start:
                break
        for block in blocks:
            if block.get("has_children") and depth + 1 < MAX_DEPTH and block.get("type") not in _SKIPPED:
                block["_children"] = self._blocks(block["id"], depth + 1)
        return blocks

    def _event(self, change: ChangeType, pid: str, revision: str, tag: str = "") -> ChangeEvent:
        path = f"{pid}.md"
        delivery = delivery_id("notion", self.config.name, revision, path, *([tag] if tag else []))
        return ChangeEvent(source=self.config.name, path=path, change=change, revision=revision,
                           delivery_id=delivery)

    def _call(self, method: str, path: str, *, payload: Any = None, params: Mapping[str, str] | None = None,
              allow: tuple[int, ...] = ()) -> httpx.Response:
        """The one seam to Notion: transport failures and error statuses become
        ``SourceUnavailable`` or ``RateLimited`` here; statuses in ``allow``
        are returned for the caller to read."""
        headers = {"Authorization": f"Bearer {self.token}", "Notion-Version": NOTION_VERSION,
                   "Accept": "application/json"}
        what = f"notion source {self.config.name}: {method} {path}"
        response = request(self.client, method, self.base + path, what=what, site=self.base,
                           timeout_s=self.timeout_s, headers=headers, params=params, json=payload)
        if succeeded(response, allow):
            return response
        status = response.status_code
        error = error_message(response, ("code", "message"))  # Notion's "code: message"
        if status == 429 or (status == 503 and "retry-after" in response.headers):
            wait = retry_after_seconds(response.headers.get("retry-after", ""), DEFAULT_WAIT_S)
            raise RateLimited(f"{what}: Notion asked us to slow down ({status} {error})", wait)
        if status in (401, 403):
            who = f"the token in {self.config.token_env}" if self.config.token_env else "the token"
            raise SourceUnavailable(f"{what}: Notion refused the credentials ({who}): {status} {error}")
        raise SourceUnavailable(f"{what}: Notion answered {status} {error}")


class _Round(page_cursor.Round):
    """One poll's bookkeeping (the events, the pages listed, Notion's clock),
    with Notion's ``~`` on a page whose minute may still be open."""

    def __init__(self, connector: NotionConnector, pages: dict[str, str]) -> None:
        super().__init__(pages, connector._event)
        self.connector = connector

    def visit(self, page: Mapping[str, Any]) -> None:
        pid, edited = page["id"].replace("-", "").lower(), str(page["last_edited_time"])
        self.listed.add(pid)
        at = page_cursor.epoch(edited, "Notion")
        self.saw(at)
        old = self.pages.get(pid)
        if page.get("archived") or page.get("in_trash"):
            self.remove(pid)
            return
        open_ = self.now < at + _MINUTE + self.connector.settle_s
        event = self.event
        if old is None:
            self.events.append(event("added", pid, edited))
        elif page_cursor.is_tomb(old):
            self.events.append(event("added", pid, edited, f"restored@{old[1:]}"))
        elif old.rstrip("~") != edited:
            self.events.append(event("modified", pid, edited))
        elif old.endswith("~") and not open_:
            self.events.append(event("modified", pid, edited, "settled"))
        elif not old.endswith("~"):
            return  # seen, settled, unchanged
        self.pages[pid] = edited + ("~" if open_ else "")

    def vanished(self, pid: str) -> None:
        """A known page the full listing left out: search is not exhaustive,
        so ask for the page itself before calling it gone."""
        response = self.connector._call("GET", f"/v1/pages/{_dashed(pid)}", allow=(404,))
        if response.status_code == 404:
            self.remove(pid)
        else:
            self.visit(_json(response, "a page"))

    def revision(self, value: str) -> str:
        """The last edit, without the ``~`` of a minute not yet closed."""
        return value.rstrip("~")


def blocks_markdown(blocks: list[dict[str, Any]]) -> str:
    """Notion blocks (children nested under ``"_children"``) as Markdown the
    project's parser reads back: headings one level below the title, lists
    with their nesting, fenced code with its language, quotes, tables."""
    return _join(_chunks(blocks))


def _chunks(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    chunks, number = [], 0
    for block in blocks:
        kind = str(block.get("type", ""))
        number = number + 1 if kind == "numbered_list_item" else 0
        text = _block(block, kind, number)
        if text:
            chunks.append((kind, text))
    return chunks


def _join(chunks: list[tuple[str, str]]) -> str:
    """Blank lines between blocks; none between items of one list."""
    out = []
    for i, (kind, text) in enumerate(chunks):
        if i:
            out.append("\n" if kind in _ITEMS and chunks[i - 1][0] in _ITEMS else "\n\n")
        out.append(text)
    return "".join(out)


def _block(block: Mapping[str, Any], kind: str, number: int) -> str:
    data = block.get(kind) or {}
    text = _rich(data.get("rich_text") or [])
    children = _chunks(block.get("_children") or [])
    if kind in _HEADINGS:
        return _then(f"{_HEADINGS[kind]} {' '.join(text.split())}" if text.strip() else "", children)
    if kind == "bulleted_list_item":
        return _item("- ", text, children)
    if kind == "numbered_list_item":
        return _item(f"{number}. ", text, children)
    if kind == "to_do":
        return _item("- [x] " if data.get("checked") else "- [ ] ", text, children, indent=2)
    if kind in ("quote", "callout"):
        icon = (data.get("icon") or {}).get("emoji", "") if kind == "callout" else ""
        inner = _then(f"{icon} {text}".strip(), children)
        return "\n".join(f"> {line}" if line else ">" for line in inner.splitlines())
    if kind == "code":
        return _fence(_plain(data.get("rich_text") or []), str(data.get("language") or ""))
    if kind == "divider":
        return "---"
    if kind == "equation":
        return f"$$ {data.get('expression', '')} $$"
    if kind in ("bookmark", "embed", "link_preview"):
        return f"<{data['url']}>" if data.get("url") else ""
    if kind == "table":
        return _table(block.get("_children") or [])
    if kind in _SKIPPED:
        return ""
    return _then(text, children)  # paragraph, toggle, column_list, synced_block, anything newer


def _then(text: str, children: list[tuple[str, str]]) -> str:
    return _join(([("paragraph", text)] if text else []) + children)


def _item(marker: str, text: str, children: list[tuple[str, str]], indent: int | None = None) -> str:
    if not children:
        return marker + text
    pad = " " * (indent or len(marker))
    nested = "\n".join(pad + line if line else "" for line in _join(children).splitlines())
    return marker + text + ("\n" if children[0][0] in _ITEMS else "\n\n") + nested


def _fence(code: str, language: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    info = "" if language in ("", "plain text") else language.replace(" ", "-")
    return f"{fence}{info}\n{code.rstrip(chr(10))}\n{fence}"


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [[" ".join(_rich(cell).replace("|", "\\|").split()) for cell in row["table_row"].get("cells", [])]
             for row in rows if row.get("type") == "table_row"]
    width = max((len(row) for row in cells), default=0)
    if not width:
        return ""
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cells]
    return "\n".join([lines[0], "|" + " --- |" * width, *lines[1:]])


def _rich(items: list[Mapping[str, Any]]) -> str:
    """Rich text as Markdown: its plain text, code spans and links kept."""
    parts = []
    for item in items:
        text = str(item.get("plain_text", ""))
        if not text:
            continue
        if (item.get("annotations") or {}).get("code"):
            text = f"`{text}`"
        if item.get("href"):
            text = f"[{text}]({item['href']})"
        parts.append(text)
    return "".join(parts)


def _plain(items: list[Mapping[str, Any]]) -> str:
    return "".join(str(item.get("plain_text", "")) for item in items)


def _title(page: Mapping[str, Any]) -> str:
    """The page's title property (whatever it is named: ``type`` says which)."""
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return " ".join(_plain(prop.get("title") or []).split()) or "Untitled"
    return "Untitled"


def _dashed(pid: str) -> str:
    return f"{pid[:8]}-{pid[8:12]}-{pid[12:16]}-{pid[16:20]}-{pid[20:]}"


def _json(response: httpx.Response, what: str) -> Any:
    return json_body(response, "Notion", what)
