"""``manifest.json``: what a backup holds, and how a restore proves it got it back.

A backup folder holds one part per store (``neo4j/``, ``vectors/``,
``redis/``) and ``manifest.json``, written last. For each part the manifest
records:

* ``files``: every file's size and SHA-256, checked before a restore touches
  anything (a file changed, missing or added refuses the restore);
* ``counts`` and ``checksums``: the part's *content*, computed from the live
  store when the backup was taken (documents, sections, vectors per
  collection, queue entries, Redis keys…) and computed again from the
  restored store; any difference fails the restore.

``content()`` is the comparable part: two backups of the same data have equal
content even though their dump files (and times) differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wekadocs.errors import BackupError

__all__ = ["FORMAT", "MANIFEST", "Manifest", "PartSummary", "canonical", "digest_lines", "file_entry",
           "verify_files", "compare_summaries"]

FORMAT = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def canonical(value: Any) -> str:
    """One stable text for a value: sorted keys, no spaces, non-JSON types as ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def digest_lines(lines: Iterable[str | bytes]) -> str:
    """SHA-256 of the lines sorted, each ended by a NUL: the same set gives the
    same digest whatever order a store returned it in."""
    encoded = sorted(line.encode() if isinstance(line, str) else line for line in lines)
    sha = hashlib.sha256()
    for line in encoded:
        sha.update(line)
        sha.update(b"\0")
    return sha.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}


@dataclass
class PartSummary:
    """What one part holds: counts and checksums of the content, and its files
    (relative to the backup folder)."""

    counts: dict[str, int] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # shown, not compared (e.g. aliases, dims)

    def content(self) -> dict[str, Any]:
        return {"counts": self.counts, "checksums": self.checksums}

    def as_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "checksums": self.checksums, "files": self.files, "details": self.details}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PartSummary:
        return cls(counts=dict(raw.get("counts", {})), checksums=dict(raw.get("checksums", {})),
                   files=dict(raw.get("files", {})), details=dict(raw.get("details", {})))


@dataclass
class Manifest:
    created_at: str
    consistency_point: str  # when the graph stopped taking writes (ISO, UTC)
    consistency_point_unix: float
    versions: dict[str, str]
    parts: dict[str, PartSummary]
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    format: int = FORMAT

    def content(self) -> dict[str, Any]:
        """Counts and checksums per part: equal for equal data."""
        return {name: part.content() for name, part in sorted(self.parts.items())}

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "created_at": self.created_at,
                "consistency_point": self.consistency_point,
                "consistency_point_unix": self.consistency_point_unix,
                "versions": self.versions, "timings_s": self.timings_s, "notes": self.notes,
                "parts": {name: part.as_dict() for name, part in sorted(self.parts.items())}}

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not folder.is_dir():
            raise BackupError(f"{folder} is not a folder")
        if not path.exists():
            raise BackupError(f"{folder} has no {MANIFEST}: not a backup, or one that did not finish")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise BackupError(f"{path}: format {raw.get('format')!r}; this release reads format {FORMAT}")
            return cls(created_at=str(raw["created_at"]), consistency_point=str(raw["consistency_point"]),
                       consistency_point_unix=float(raw["consistency_point_unix"]),
                       versions={k: str(v) for k, v in raw["versions"].items()},
                       parts={n: PartSummary.from_dict(p) for n, p in raw["parts"].items()},
                       timings_s=dict(raw.get("timings_s", {})), notes=list(raw.get("notes", [])))
        except BackupError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"{path} is not a valid manifest: {exc}") from exc


def verify_files(folder: Path, manifest: Manifest) -> int:
    """Check every file the manifest lists (size and SHA-256), and that no
    other file sits in a part's folder; the bytes checked. Raises
    ``BackupError`` naming each file that differs."""
    problems = []
    checked = 0
    listed = set()
    for name, part in sorted(manifest.parts.items()):
        for relative, expected in sorted(part.files.items()):
            listed.add(relative)
            path = folder / relative
            if not path.is_file():
                problems.append(f"{relative}: missing")
                continue
            found = file_entry(path)
            checked += found["bytes"]
            if found != {"bytes": expected.get("bytes"), "sha256": expected.get("sha256")}:
                problems.append(f"{relative}: {found['bytes']} bytes, sha256 {found['sha256'][:16]}… where the "
                                f"manifest says {expected.get('bytes')} bytes, {str(expected.get('sha256'))[:16]}…")
        part_folder = folder / name
        if part_folder.is_dir():
            for path in sorted(part_folder.rglob("*")):
                relative = path.relative_to(folder).as_posix()
                if path.is_file() and relative not in listed:
                    problems.append(f"{relative}: not listed in the manifest")
    if problems:
        raise BackupError(f"the backup in {folder} failed its integrity check (nothing was changed):\n  "
                          + "\n  ".join(problems))
    return checked


def compare_summaries(part: str, expected: PartSummary, found: PartSummary) -> list[str]:
    """Each count or checksum that differs, as a readable line ([] when equal)."""
    lines = []
    for kind, want, got in (("count", expected.counts, found.counts), ("checksum", expected.checksums,
                                                                        found.checksums)):
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                lines.append(f"{part} {kind} {key}: backup {_short(want.get(key))}, restored {_short(got.get(key))}")
    return lines


def _short(value: object) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:16] + "…"
    return "absent" if value is None else str(value)
