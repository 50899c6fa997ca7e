"""The files of a local documentation tree, with checksums for change detection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.parse import PARSERS
from wekadocs.ids import checksum

__all__ = ["SourceFile", "scan_tree"]


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the root, '/'-separated
    absolute: str
    checksum: str
    size: int


def scan_tree(root: Path) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """Markdown and HTML files under ``root`` (hidden folders skipped), and
    (path, reason) for each one that could not be read."""
    files: list[SourceFile] = []
    errors: list[tuple[str, str]] = []
    inside = root.resolve()
    for folder, dirs, names in os.walk(root):  # links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() not in PARSERS:
                continue
            absolute = Path(folder) / name
            relative = absolute.relative_to(root).as_posix()
            if not absolute.is_file():  # a dangling link, a pipe, a socket: never read those
                errors.append((relative, "not a regular file (or a link to nothing)"))
                continue
            if absolute.is_symlink() and not absolute.resolve().is_relative_to(inside):
                errors.append((relative, "a link to a file outside the ingested folder"))
                continue
            try:
                data = absolute.read_bytes()
            except OSError as exc:
                errors.append((relative, f"cannot read: {exc.strerror or exc}"))
                continue
            files.append(SourceFile(relative, str(absolute), checksum(data), len(data)))
    return files, errors
