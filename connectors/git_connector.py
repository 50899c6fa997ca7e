"""A git source as a ``SourceConnector``: the mirror fetched on poll, pages read
at the branch head.

Each process that reads or polls keeps its own mirror folder (the supervisor
polls from one, the consumer reads from another), so two ``git fetch`` runs
never race for the same ref locks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from connectors.git_changes import GitChanges, GitError, GitSource
from connectors.source_connector import Poll, SourceUnavailable
from wekadocs.source_registry import SourceConfig

__all__ = ["GitConnector"]


class GitConnector:
    def __init__(self, config: SourceConfig, mirrors: Path) -> None:
        self.config = config
        self.git = GitChanges(GitSource(config.name, config.url, config.branch, config.docs_path), mirrors)

    def poll(self, cursor: Mapping[str, str]) -> Poll:
        """Cursor: ``revision``, the head whose changes were all queued."""
        try:
            head = self.git.fetch()
            since = cursor.get("revision") or None
            if since == head:
                return Poll([], {"revision": head})
            if since is not None and not self.git.has(since):
                # History was rewritten (force push) and the old head is gone:
                # list every page again. Unchanged pages are no-ops downstream;
                # pages deleted by the rewrite stay until the source is re-added.
                since = None
            return Poll(self.git.changes(since, head), {"revision": head})
        except GitError as exc:
            raise SourceUnavailable(f"git source {self.config.name}: {exc}") from exc

    def read(self, path: str, revision: str = "") -> bytes | None:
        """The page at the branch head, fetching first when ``revision`` (a
        pushed commit the webhook announced) is not in the mirror yet."""
        return self.read_many({path: revision})[path]

    def read_many(self, pages: Mapping[str, str]) -> dict[str, bytes | None]:
        """``read`` for a batch (path -> revision): one fetch check per
        revision and one ``git cat-file`` process, not four per page."""
        try:
            if not all(self.git.has(revision) for revision in set(pages.values()) - {""} or {"HEAD"}):
                self.git.fetch()
            return self.git.read_many(self.git.head(), pages)
        except GitError as exc:
            raise SourceUnavailable(f"git source {self.config.name}: {exc}") from exc

    def close(self) -> None:
        """Nothing held open: each git command is its own process."""
