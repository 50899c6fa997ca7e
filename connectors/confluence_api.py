"""A Confluence space over the REST API (v1), as a ``SourceConnector``.

Each current page of the space (``config.space``) is one HTML document named
``{page id}.html``: an id, not a title, so a retitled or moved page keeps its
path. Its revision is its version number. ``read`` gives ``<h1>title</h1>``
and the page body in storage format (XHTML), with one change: the code and
noformat macros become ``<pre><code>``, because their text is CDATA, which
HTML parsers drop. Other macros stay as they are (their rich-text bodies are
ordinary markup the parser reads).

How a poll finds changes, each step one the Cloud and Data Center v1 APIs
both offer:

* The first poll, and one every ``full_listing_s`` after, lists the space's
  current pages (``GET /rest/api/content?spaceKey=…&type=page&status=current``,
  read from the database, not the search index). Compared with the pages the
  cursor keeps (id → version number), it gives added, modified and removed
  pages: a page trashed, archived, purged, moved to another space or no
  longer visible to our account leaves this listing.
* The polls in between list the space's trash (``status=trashed``): a known
  page found there is removed at once. Then a CQL search finds the pages
  modified since the newest modification already seen:
  ``space = "KEY" AND type = page AND lastmodified >= now("-Nm")``. CQL dates
  have minute precision, and an absolute date is read in the API user's
  profile time zone, so the window is relative (measured by Confluence's own
  clock, the trash answer's ``Date`` header) and reaches ``lookback_s``
  further back, for the minute and for the search index's lag. What is seen
  twice is dropped by id + version number.

A removed page stays in the cursor as a tombstone for two days (longer than
the change queue remembers delivery ids), so a page restored at its old
version is sent under a delivery id the queue has not seen.

Cursor keys: ``since`` (the newest ``version.when`` seen), ``pages`` (id →
version number, ``x<epoch>`` a tombstone; sorted lines, zlib-compressed,
base64) and ``listed`` (epoch seconds of the last full listing). A cursor
that cannot be read is treated as none: every page is listed again as added.
"""

from __future__ import annotations

import html
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors import page_cursor
from connectors.http_source import error_message, json_body, request, retry_after_seconds, succeeded
from connectors.source_connector import Poll, RateLimited, SourceUnavailable
from wekadocs.change_event import ChangeEvent, ChangeType, delivery_id
from wekadocs.source_registry import SourceConfig, SourceError

__all__ = ["ConfluenceConnector", "page_cql", "storage_html"]

PAGE_LIMIT = 200  # Confluence's cap on a listing without the body expanded
DEFAULT_WAIT_S = 60.0  # when a 429 does not say how long
_CODE_MACRO = re.compile(r'<ac:structured-macro\b[^>]*\bac:name="(?:code|noformat)"[^>]*>(.*?)</ac:structured-macro>',
                         re.S)
_LANGUAGE = re.compile(r'<ac:parameter\b[^>]*\bac:name="language"[^>]*>([^<]*)</ac:parameter>')
_PLAIN_BODY = re.compile(r"<ac:plain-text-body>(.*?)</ac:plain-text-body>", re.S)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)


def page_cql(space: str, minutes: int | None = None) -> str:
    """The CQL for the space's pages, modified in the last ``minutes`` when given."""
    key = space.replace("\\", "\\\\").replace('"', '\\"')
    cql = f'space = "{key}" AND type = page'
    return cql + (f' AND lastmodified >= now("-{minutes}m")' if minutes is not None else "")


class ConfluenceConnector:
    def __init__(self, config: SourceConfig, *, token: str | None = None, user: str | None = None,
                 client: httpx.Client | None = None, timeout_s: float = 10.0, page_limit: int = PAGE_LIMIT,
                 full_listing_s: float = 3600.0, lookback_s: float = 300.0) -> None:
        if config.kind != "confluence":
            raise SourceError(f"source {config.name} is a {config.kind} source, not a confluence one")
        if not config.space:
            raise SourceError(f"confluence source {config.name}: no space key (set its 'space')")
        token = token if token is not None else _env(config, config.token_env, "token_env")
        user = user if user is not None else _env(config, config.user_env, "user_env")
        if user and not token:
            raise SourceError(f"confluence source {config.name}: basic auth as {user} needs an API token "
                              "(set token_env)")
        if lookback_s < 120.0:
            raise ValueError("lookback_s must cover CQL's minute precision with a minute to spare")
        self.config = config
        self.space = config.space
        self.base = (config.api_url or config.url).rstrip("/")
        self.auth = httpx.BasicAuth(user, token or "") if user else None
        self.token = token
        self.timeout_s = timeout_s
        self.page_limit = page_limit
        self.full_listing_s = full_listing_s
        self.lookback_s = lookback_s
        self._own_client = client is None
        self.client = client or httpx.Client()

    def poll(self, cursor: Mapping[str, str]) -> Poll:
        """Pages changed since the cursor (its keys: see the module docstring);
        every page, as added, for an empty cursor."""
        pages, since, listed = page_cursor.load(cursor)
        round_ = _Round(pages, self._event)
        if since is None or time.time() - listed >= self.full_listing_s:
            for content in self._contents("current", round_):
                round_.visit(content)
            for pid in round_.unlisted():
                round_.remove(pid)
            listed = time.time()
        else:
            for content in self._contents("trashed", round_):
                round_.remove(str(content.get("id", "")))
            minutes = max(2, math.ceil((round_.now - since + self.lookback_s) / 60.0))
            for content in self._pages("/rest/api/content/search", {"cql": page_cql(self.space, minutes),
                                                                    "expand": "version"}):
                round_.visit(content)
        return Poll(round_.events, round_.cursor(since, listed))

    def read(self, path: str, revision: str = "") -> bytes | None:
        """The page now (never older than ``revision``); None when it is no
        longer a current page of the space (trashed, purged, moved away)."""
        pid = path.removesuffix(".html")
        if not path.endswith(".html") or not (pid.isascii() and pid.isdigit()):
            return None
        response = self._get(f"{self.base}/rest/api/content/{pid}", {"expand": "body.storage,version,space"},
                             allow=(404,))
        if response.status_code == 404:
            return None
        content = _json(response, "a page")
        space = (content.get("space") or {}).get("key")
        if content.get("status", "current") != "current" or content.get("type", "page") != "page" \
                or (space and space != self.space):
            return None
        body = ((content.get("body") or {}).get("storage") or {}).get("value", "")
        return f"<h1>{html.escape(str(content.get('title', '')))}</h1>\n{storage_html(body)}".encode()

    def close(self) -> None:
        """Closes the HTTP client when this connector made it."""
        if self._own_client:
            self.client.close()

    def _contents(self, status: str, round_: _Round) -> Iterator[Mapping[str, Any]]:
        params = {"spaceKey": self.space, "type": "page", "status": status, "expand": "version"}
        return self._pages("/rest/api/content", params, round_)

    def _pages(self, path: str, params: dict[str, str], round_: _Round | None = None
               ) -> Iterator[Mapping[str, Any]]:
        """Every result of a listing, following ``_links.next`` (an offset on
        some endpoints, an opaque cursor on Cloud's search)."""
        url: str | None = f"{self.base}{path}"
        query: dict[str, str] | None = {**params, "limit": str(self.page_limit)}
        followed: set[str] = set()
        while url:
            response = self._get(url, query)
            if round_ is not None:
                round_.clock(response)
            listing = _json(response, "a listing")
            yield from listing.get("results") or []
            link = (listing.get("_links") or {}).get("next")
            url, query = (self._url(link), None) if link else (None, None)
            if url in followed:
                raise SourceUnavailable(f"confluence source {self.config.name}: {path} pages in a loop")
            followed.add(url or "")

    def _url(self, link: str) -> str:
        """A ``_links.next`` (relative to the site, with or without its
        context path) on our base URL: the host in ``_links.base`` may be one
        we do not talk to (a proxy, a test server)."""
        parts = urlsplit(link)
        relative = parts.path + (f"?{parts.query}" if parts.query else "")
        base = urlsplit(self.base)
        context = base.path.rstrip("/")
        if context and relative.startswith(context + "/"):
            return f"{base.scheme}://{base.netloc}{relative}"
        return self.base + relative

    def _event(self, change: ChangeType, pid: str, revision: str, tag: str = "") -> ChangeEvent:
        path = f"{pid}.html"
        delivery = delivery_id("confluence", self.config.name, revision, path, *([tag] if tag else []))
        return ChangeEvent(source=self.config.name, path=path, change=change, revision=revision,
                           delivery_id=delivery)

    def _get(self, url: str, params: Mapping[str, str] | None, *, allow: tuple[int, ...] = ()) -> httpx.Response:
        """The one seam to Confluence: transport failures and error statuses
        become ``SourceUnavailable`` or ``RateLimited`` here; statuses in
        ``allow`` are returned for the caller to read."""
        headers = {"Accept": "application/json"}
        if self.token and self.auth is None:
            headers["Authorization"] = f"Bearer {self.token}"
        what = f"confluence source {self.config.name}: GET {urlsplit(url).path}"
        response = request(self.client, "GET", url, what=what, site=self.base, timeout_s=self.timeout_s,
                           headers=headers, params=params, auth=self.auth or httpx.USE_CLIENT_DEFAULT)
        if succeeded(response, allow):
            return response
        status = response.status_code
        message = error_message(response, ("message",))
        if status == 429 or (status == 503 and "retry-after" in response.headers):
            wait = retry_after_seconds(response.headers.get("retry-after", ""), DEFAULT_WAIT_S)
            raise RateLimited(f"{what}: Confluence asked us to slow down ({status} {message})", wait)
        if status in (401, 403):
            raise SourceUnavailable(f"{what}: Confluence refused the credentials ({self._who()}): "
                                    f"{status} {message}")
        if status == 404:
            raise SourceUnavailable(f"{what}: not found (404 {message}); is {self.base} the site "
                                    f"(https://SITE.atlassian.net/wiki) and {self.space!r} a space we may read?")
        raise SourceUnavailable(f"{what}: Confluence answered {status} {message}")

    def _who(self) -> str:
        if self.auth is not None:
            return f"basic auth with the e-mail in {self.config.user_env or 'user'} and its API token"
        if self.token:
            return f"the bearer token in {self.config.token_env}" if self.config.token_env else "the bearer token"
        return "no credentials: set token_env (and user_env for Cloud)"


class _Round(page_cursor.Round):
    """One poll's bookkeeping (the events, the pages listed, Confluence's
    clock), with pages at their version numbers."""

    def visit(self, content: Mapping[str, Any]) -> None:
        if content.get("type", "page") != "page" or content.get("status", "current") != "current":
            return
        pid, version = str(content["id"]), content.get("version") or {}
        number = str(version.get("number", ""))
        self.listed.add(pid)
        if version.get("when"):
            self.saw(page_cursor.epoch(str(version["when"]), "Confluence"))
        old = self.pages.get(pid)
        if old is None:
            self.events.append(self.event("added", pid, number))
        elif page_cursor.is_tomb(old):
            self.events.append(self.event("added", pid, number, f"restored@{old[1:]}"))
        elif old != number:
            self.events.append(self.event("modified", pid, number))
        self.pages[pid] = number


def storage_html(storage: str) -> str:
    """Storage format with code macros as ``<pre><code class="language-…">``
    (a ``]]>`` in code is stored as two CDATA sections: they are joined)."""
    def code(match: re.Match[str]) -> str:
        language = _LANGUAGE.search(match[1])
        body = _PLAIN_BODY.search(match[1])
        text = "".join(_CDATA.findall(body[1])) if body else ""
        css = f' class="language-{html.escape(language[1].strip(), quote=True)}"' if language else ""
        return f"<pre><code{css}>{html.escape(text, quote=False)}</code></pre>"
    return _CODE_MACRO.sub(code, storage)


def _env(config: SourceConfig, variable: str | None, field: str) -> str | None:
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise SourceError(f"confluence source {config.name}: environment variable {variable} "
                          f"(its {field}) is not set")
    return value


def _json(response: httpx.Response, what: str) -> Any:
    return json_body(response, "Confluence", what)
