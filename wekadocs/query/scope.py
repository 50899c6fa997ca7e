"""Which pages a question covers: one version asked for, or each source's current version.

Sources version their pages differently: a docs release tree is ``4.4``, a
git or GitHub source its branch (``main``), Notion and Confluence ``latest``.
Scoping a plain question to the highest label across all of them would hide
every source whose labels are not numbers, so without a version a question
covers the **current version of every source**:

* a source with numeric versions: its highest one (``4.10`` after ``4.9``;
  names such as ``master`` beside them do not count);
* a source with names only: its most recently ingested one (ties: the name
  that sorts last).

A caller who passes ``version`` gets exactly that version, across every
source that has it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Scope", "SourceVersion", "current_versions", "version_key"]


def version_key(version: str) -> tuple[int, tuple[int, ...], str]:
    """Numeric versions in numeric order (4.10 after 4.9); names such as
    ``master`` sort before them, so "newest" means the newest release."""
    parts = version.split(".")
    if all(p.isdigit() for p in parts):
        return (1, tuple(int(p) for p in parts), version)
    return (0, (), version)


@dataclass(frozen=True)
class SourceVersion:
    """One version of one source as the graph holds it."""

    source: str
    version: str
    documents: int
    ingested: Any  # when its pages were last written (a Neo4j datetime); orders name-only versions


@dataclass(frozen=True)
class Scope:
    """Args:
        version: the version asked for, or None for each source's current one.
        sources: the (source, version) pairs in scope, sorted.
        path_prefix: only pages under it ("" for all).
        document_ids: the pages in scope.
        wider_by_version: a filter on the version labels in scope admits
            pages outside it too (a path prefix; another source that has one
            of those labels but is not in scope), so vector search goes deeper.
    """

    version: str | None
    sources: tuple[tuple[str, str], ...]
    path_prefix: str
    document_ids: tuple[str, ...]
    wider_by_version: bool = False

    @property
    def versions(self) -> list[str]:
        """The distinct version labels in scope, oldest first."""
        return sorted({v for _, v in self.sources}, key=version_key)

    @property
    def label(self) -> str:
        """How an answer names its scope for the reader."""
        if self.version is not None:
            return f"version {self.version}"
        pairs = ", ".join(f"{source} {version}" for source, version in self.sources)
        return f"the current version of each source ({pairs})"

    def as_dict(self) -> dict[str, Any]:
        """The scope in an answer's diagnostics."""
        return {"version": self.version, "sources": {s: v for s, v in self.sources},
                "path_prefix": self.path_prefix, "documents": len(self.document_ids)}


def current_versions(rows: Iterable[SourceVersion]) -> dict[str, str]:
    """Each source's current version (see the module docstring)."""
    by_source: dict[str, list[SourceVersion]] = {}
    for row in rows:
        by_source.setdefault(row.source, []).append(row)
    current = {}
    for source, versions in by_source.items():
        numeric = [v for v in versions if version_key(v.version)[0] == 1]
        if numeric:
            current[source] = max(numeric, key=lambda v: version_key(v.version)).version
        else:
            current[source] = max(versions, key=lambda v: (_sortable(v.ingested), v.version)).version
    return current


def source_versions(rows: Iterable[Mapping[str, Any]]) -> list[SourceVersion]:
    return [SourceVersion(str(r["source"]), str(r["version"]), int(r["documents"]), r["ingested"])
            for r in rows]


def _sortable(moment: Any) -> str:
    """Neo4j datetimes compare only with each other, and a page written by an
    older release may have none: ISO text orders both."""
    return moment.iso_format() if hasattr(moment, "iso_format") else str(moment or "")
