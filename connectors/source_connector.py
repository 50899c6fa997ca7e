"""What every connector offers the poller and the consumer.

A connector turns one configured source into two calls:

* ``poll(cursor)`` — the pages changed since ``cursor`` as change events, and
  the cursor to save once every one of them is queued. A poller that crashes
  before saving polls the same range again; the queue drops repeated delivery
  ids and ingestion is idempotent, so nothing is done twice.
* ``read(path, revision)`` — a page's bytes as the source holds it *now*
  (at least as new as ``revision``), or None when the page is gone. Events are
  hints: the consumer always ingests the current state, so a late or
  re-delivered event can never roll a page back.

Pages are named by ``path``, relative to the source's docs root; the
extension picks the parser (``.md`` Markdown, ``.html`` HTML).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from wekadocs.change_event import ChangeEvent
from wekadocs.errors import WekadocsError
from wekadocs.source_registry import SourceConfig

__all__ = ["Poll", "SourceConnector", "SourceUnavailable", "RateLimited", "ReadsMany", "read_pages"]


@dataclass(frozen=True)
class Poll:
    events: list[ChangeEvent]
    cursor: dict[str, str] = field(default_factory=dict)


class SourceUnavailable(WekadocsError):
    """The source failed (unreachable, timed out, 5xx, refused our credentials).
    Counts against the source's circuit breaker."""


class RateLimited(WekadocsError):
    """The source asked us to slow down. Not a failure: the poller waits
    ``retry_after_s`` (from ``Retry-After`` or the rate-limit reset header)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        self.retry_after_s = max(0.0, retry_after_s)
        super().__init__(f"{message} (retry in {self.retry_after_s:.0f}s)")


class SourceConnector(Protocol):
    config: SourceConfig

    def poll(self, cursor: Mapping[str, str]) -> Poll: ...

    def read(self, path: str, revision: str = "") -> bytes | None: ...

    def close(self) -> None: ...


@runtime_checkable
class ReadsMany(Protocol):
    """A connector that reads a batch of pages cheaper than one by one (git:
    one ``cat-file`` process instead of four per page)."""

    def read_many(self, pages: Mapping[str, str]) -> dict[str, bytes | None]: ...


def read_pages(connector: SourceConnector, pages: Mapping[str, str]) -> dict[str, bytes | None]:
    """Each page (path -> revision) as the source holds it now; None = gone."""
    if isinstance(connector, ReadsMany):
        return connector.read_many(pages)
    return {path: connector.read(path, revision) for path, revision in pages.items()}
