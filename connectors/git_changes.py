"""Changes in a git repository's docs folder, as change events.

Real git, run as a subprocess: a bare mirror of the remote (or a local
repository) under the data dir, ``git fetch`` to move it, and
``git diff --name-status -M`` between the last ingested revision and the
branch head, limited to the docs folder and the page extensions. Works offline
on local repositories.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from wekadocs.change_event import ChangeEvent, ChangeType, delivery_id
from wekadocs.errors import WekadocsError

__all__ = ["GitSource", "GitChanges", "GitError", "docs_page", "PAGE_EXTENSIONS"]

GIT_TIMEOUT_S = 300
PAGE_EXTENSIONS = (".md", ".html", ".htm")
_STATUS: dict[str, ChangeType] = {"A": "added", "M": "modified", "D": "removed", "R": "renamed",
                                  "C": "added", "T": "modified"}


class GitError(WekadocsError):
    """A git command failed; the message carries git's own words."""


@dataclass(frozen=True)
class GitSource:
    name: str
    url: str  # any git remote, or a path to a local repository
    branch: str = "main"
    docs_path: str = ""  # folder inside the repository; "" for all of it
    extensions: tuple[str, ...] = field(default=PAGE_EXTENSIONS)


class GitChanges:
    """One source's mirror: ``fetch`` moves it, ``changes`` lists what moved."""

    def __init__(self, source: GitSource, mirrors: Path) -> None:
        self.source = source
        self.mirror = mirrors / f"{source.name}.git"

    def fetch(self) -> str:
        """Bring the mirror up to the remote; the branch head's commit id."""
        if not (self.mirror / "HEAD").exists():
            self.mirror.parent.mkdir(parents=True, exist_ok=True)
            _git(None, "clone", "--bare", "--quiet", "--", self.source.url, str(self.mirror))
        branch = self.source.branch
        self._git("fetch", "--quiet", "--prune", "--", self.source.url, f"+refs/heads/{branch}:refs/heads/{branch}")
        return self._git("rev-parse", "--verify", "--end-of-options", f"refs/heads/{branch}^{{commit}}").strip()

    def changes(self, since: str | None, head: str) -> list[ChangeEvent]:
        """Pages changed from ``since`` to ``head`` (every page, as added, when
        ``since`` is None); paths relative to the docs folder."""
        scope = self.source.docs_path.strip("/") or "."
        if since is None:
            listed = self._git("ls-tree", "-r", "--name-only", head, "--", scope).splitlines()
            rows = [("A", path, None) for path in listed]
        else:
            out = self._git("diff", "--name-status", "-M", "--no-color", since, head, "--", scope)
            rows = [_parse_status(line) for line in out.splitlines() if line.strip()]
        events = []
        for status, path, old in rows:
            event = self._event(status, path, old, head)
            if event is not None:
                events.append(event)
        return events

    def head(self) -> str:
        """The branch head the mirror holds (no fetch)."""
        return self._git("rev-parse", "--verify", "--end-of-options", f"refs/heads/{self.source.branch}^{{commit}}").strip()

    def has(self, revision: str) -> bool:
        """Whether the mirror holds ``revision`` (it may have to fetch first)."""
        if not (self.mirror / "HEAD").exists():
            return False
        # `--end-of-options`: a revision from a payload or the queue is never read as an option
        found = _run(self.mirror, ("cat-file", "-e", "--end-of-options", f"{revision}^{{commit}}"), check=False)
        return found.returncode == 0

    def read(self, revision: str, path: str) -> bytes | None:
        """A page's bytes at a revision (``path`` relative to the docs folder);
        None when the page does not exist there."""
        return self.read_many(revision, [path])[path]

    def read_many(self, revision: str, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Pages at one revision through one ``git cat-file --batch`` process,
        not two processes per page; a path that is not a file there is None."""
        wanted = list(dict.fromkeys(paths))
        docs = PurePosixPath(self.source.docs_path.strip("/") or ".")
        specs = [f"{revision}:{str(docs / path).removeprefix('./')}\n" for path in wanted]
        if any(spec.count("\n") > 1 for spec in specs):
            raise GitError("a page path with a line break cannot be read")  # the batch input is line-based
        out = _run(self.mirror, ("cat-file", "--batch"), stdin="".join(specs).encode()).stdout
        found: dict[str, bytes | None] = {}
        at = 0
        for path in wanted:
            end = out.index(b"\n", at)
            header, at = out[at:end], end + 1
            if header.endswith((b" missing", b" ambiguous")):
                found[path] = None
                continue
            _, kind, size = header.rsplit(b" ", 2)
            found[path] = out[at:at + int(size)] if kind == b"blob" else None
            at += int(size) + 1  # the object, then a line feed
        return found

    def _event(self, status: str, path: str, old: str | None, head: str) -> ChangeEvent | None:
        kind = _STATUS.get(status[0])
        relative, old_relative = self._relative(path), self._relative(old) if old else None
        if kind is None or relative is None:
            return None
        if kind == "renamed" and old_relative is None:  # moved in from outside the docs
            kind = "added"
        return ChangeEvent(source=self.source.name, path=relative, change=kind, revision=head,
                           delivery_id=delivery_id("git", self.source.name, head, relative),
                           old_path=old_relative if kind == "renamed" else None)

    def _relative(self, path: str) -> str | None:
        return docs_page(path, self.source.docs_path, self.source.extensions)

    def _git(self, *args: str) -> str:
        return _git(self.mirror, *args)


def docs_page(path: str, docs_path: str, extensions: tuple[str, ...] = PAGE_EXTENSIONS) -> str | None:
    """A repository path relative to the docs folder, or None when it lies
    outside the folder or is not a page."""
    prefix = docs_path.strip("/")
    if prefix and not path.startswith(prefix + "/"):
        return None
    relative = path[len(prefix) + 1:] if prefix else path
    return relative if relative.lower().endswith(extensions) else None


def _parse_status(line: str) -> tuple[str, str, str | None]:
    parts = line.split("\t")
    if parts[0].startswith(("R", "C")):
        return parts[0], parts[2], parts[1]
    return parts[0], parts[1], None


def _git(repo: Path | None, *args: str) -> str:
    return _run(repo, args).stdout.decode("utf-8", errors="replace")


def _run(repo: Path | None, args: tuple[str, ...], *, check: bool = True,
         stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    command = ["git", *(["--git-dir", str(repo)] if repo else []), *args]
    try:
        done = subprocess.run(command, capture_output=True, timeout=GIT_TIMEOUT_S, check=False, input=stdin,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})  # never ask for a password
    except FileNotFoundError as exc:
        raise GitError("git is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_S}s") from exc
    if check and done.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {done.stderr.decode(errors='replace').strip()}")
    return done
