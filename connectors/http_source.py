"""The HTTP mechanics every REST source connector (GitHub, Notion, Confluence) shares, written once.

A transport failure becomes ``SourceUnavailable`` here, and a body, an error
message, ``Retry-After`` and the ``Date`` header are read one way; which status
means what (a rate limit, refused credentials) is each API's own and stays in
its connector.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.source_connector import SourceUnavailable

__all__ = ["request", "succeeded", "json_body", "error_message", "retry_after_seconds", "server_time"]


def request(client: httpx.Client, method: str, url: str, *, what: str, site: str, timeout_s: float,
            headers: Mapping[str, str], params: Mapping[str, str] | None = None, json: Any = None,
            auth: Any = httpx.USE_CLIENT_DEFAULT, follow_redirects: Any = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
    """The answer, whatever its status; ``SourceUnavailable`` when none came:
    ``{what} timed out after {timeout_s}s`` or ``{what}: cannot reach {site}: …``."""
    try:
        return client.request(method, url, params=params, json=json, headers=headers, auth=auth,
                              follow_redirects=follow_redirects, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        raise SourceUnavailable(f"{what} timed out after {timeout_s:g}s") from exc
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"{what}: cannot reach {site}: {exc}") from exc


def succeeded(response: httpx.Response, allow: tuple[int, ...] = ()) -> bool:
    """A 2xx, or a status in ``allow`` (one the caller reads itself)."""
    return 200 <= response.status_code < 300 or response.status_code in allow


def json_body(response: httpx.Response, service: str, what: str) -> Any:
    """The answer's JSON; ``SourceUnavailable`` when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise SourceUnavailable(f"{service} sent {what} as something other than JSON") from exc


def error_message(response: httpx.Response, keys: tuple[str, ...], *, blank: str | None = None) -> str:
    """The API's own words from an error body: the values under ``keys`` in
    its JSON object, joined by ``": "``. The reason phrase when the body is not
    JSON; ``blank`` (the reason phrase when None) when it is JSON but names
    none of them."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    words = ": ".join(str(body[key]) for key in keys if body.get(key)) if isinstance(body, dict) else ""
    return words or (response.reason_phrase if blank is None else blank)


def retry_after_seconds(value: str, default: float) -> float:
    """A ``Retry-After`` value, seconds or an HTTP date, as seconds from now;
    ``default`` when it is neither."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, IndexError):
        return default


def server_time(response: httpx.Response) -> float:
    """The source's clock, from the answer's ``Date`` header (ours when it has none)."""
    try:
        return email.utils.parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return time.time()
