"""A working git repository that tests commit to (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(command, cwd=self.root, check=True, capture_output=True, text=True).stdout

    def write(self, path: str, text: str | bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)

    def remove(self, path: str) -> None:
        self.git("rm", "--quiet", path)

    def move(self, old: str, new: str) -> None:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def pages(self, folder: str = "") -> dict[str, bytes]:
        """Every page in the working tree under ``folder``, by path relative to it."""
        base = self.root / folder if folder else self.root
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*"))
                if p.is_file() and ".git" not in p.parts and p.suffix in (".md", ".html", ".htm")}
