"""The cursor of a connector that tracks a set of pages by id (Notion, Confluence), and the poll round that moves it.

Both connectors keep the same cursor (``since``, the newest change seen;
``pages``, id → revision or ``x<epoch>`` tombstone, sorted lines
zlib-compressed in base64; ``listed``, the last full listing) and move it the
same way, so its format and its tombstones are written once, here.
"""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

import httpx

from connectors.http_source import server_time
from connectors.source_connector import SourceUnavailable
from wekadocs.change_event import ChangeEvent

__all__ = ["TOMBSTONE_S", "Round", "is_tomb", "load", "pack", "unpack", "epoch", "iso"]

# A removed page stays this long (longer than the change queue remembers delivery
# ids), so a page restored at its old revision is sent under a new delivery id.
TOMBSTONE_S = 2 * 86_400.0


class Round:
    """One poll's bookkeeping: the events, the pages listed, the newest
    change seen and the source's clock (``now``: the first answer's ``Date``
    once ``clock`` has seen one). ``event(change, pid, revision, tag)`` makes
    the connector's events."""

    def __init__(self, pages: dict[str, str], event: Callable[..., ChangeEvent]) -> None:
        self.pages = pages
        self.event = event
        self.events: list[ChangeEvent] = []
        self.listed: set[str] = set()
        self.newest: float | None = None
        self.now = time.time()
        self._clocked = False

    def clock(self, response: httpx.Response) -> None:
        if not self._clocked:
            self.now, self._clocked = server_time(response), True

    def saw(self, at: float) -> None:
        """A page changed at ``at`` (epoch seconds)."""
        self.newest = at if self.newest is None else max(self.newest, at)

    def unlisted(self) -> list[str]:
        """The known pages, less tombstones, that this round has not listed."""
        return [pid for pid, value in self.pages.items() if not is_tomb(value) and pid not in self.listed]

    def remove(self, pid: str) -> None:
        """A known page is gone: a "removed" event and a tombstone."""
        old = self.pages.get(pid)
        if old is not None and not is_tomb(old):
            self.events.append(self.event("removed", pid, self.revision(old), f"removed@{self.now:.0f}"))
            self.pages[pid] = f"x{self.now:.0f}"

    def revision(self, value: str) -> str:
        """The revision a (live) cursor value stands for: the value itself,
        unless a connector marks more on it."""
        return value

    def cursor(self, since: float | None, listed: float, *, fraction: str = "%f") -> dict[str, str]:
        """The cursor to save: the newest change seen (``since`` when newer,
        else now), the pages less tombstones past ``TOMBSTONE_S``."""
        newest = max((t for t in (since, self.newest) if t is not None), default=self.now)
        kept = {p: v for p, v in self.pages.items() if not is_tomb(v) or self.now - float(v[1:]) < TOMBSTONE_S}
        return {"since": iso(newest, fraction=fraction), "pages": pack(kept), "listed": str(int(listed))}


def is_tomb(value: str) -> bool:
    """Whether a cursor value is a tombstone (``x<epoch>``, when the page went)."""
    return value.startswith("x")


def load(cursor: Mapping[str, str]) -> tuple[dict[str, str], float | None, float]:
    """(pages, since, listed) from a cursor; an empty start for no cursor or
    one we cannot read (every page is then listed again, as added)."""
    try:
        pages = unpack(cursor["pages"])
        since = datetime.fromisoformat(cursor["since"]).timestamp()
        return pages, since, float(cursor.get("listed") or 0)
    except (KeyError, ValueError, zlib.error):
        return {}, None, 0.0


def pack(entries: Mapping[str, str]) -> str:
    text = "\n".join(f"{key} {value}" for key, value in sorted(entries.items()))
    return base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode("ascii")


def unpack(packed: str) -> dict[str, str]:
    text = zlib.decompress(base64.urlsafe_b64decode(packed.encode("ascii"))).decode()
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def epoch(stamp: str, service: str) -> float:
    """An ISO 8601 timestamp from ``service`` as epoch seconds (UTC when it
    names no zone); ``SourceUnavailable`` when it cannot be read."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError) as exc:
        raise SourceUnavailable(f"{service} sent a timestamp we cannot read: {stamp!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def iso(seconds: float, *, fraction: str = "%f") -> str:
    """Epoch seconds as ISO 8601 in UTC; ``fraction`` is what follows the
    seconds' dot: ``%f`` keeps the microseconds, ``000`` drops them."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime(f"%Y-%m-%dT%H:%M:%S.{fraction}Z")
