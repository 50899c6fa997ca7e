"""The git connector against real git on a local repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.git_changes import GitChanges, GitError, GitSource
from tests.git_repo import Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "work")
    repo.write("docs/intro.md", "# Intro\n\nHello.\n")
    repo.write("docs/guide/setup.md", "# Setup\n\nInstall it.\n")
    repo.write("docs/old-name.md", "# Moving page\n\n" + "A long enough body to be recognised as a rename.\n" * 5)
    repo.write("src/main.py", "print('not docs')\n")
    repo.write("docs/diagram.png", "not a page")
    repo.commit("first")
    return repo


def changes(tmp_path: Path, repo: Repo) -> GitChanges:
    return GitChanges(GitSource("docs", str(repo.root), docs_path="docs"), tmp_path / "mirrors")


def test_the_first_fetch_lists_every_page_as_added(tmp_path: Path, repo: Repo) -> None:
    git = changes(tmp_path, repo)
    head = git.fetch()
    events = git.changes(None, head)
    assert sorted((e.change, e.path) for e in events) == [
        ("added", "guide/setup.md"), ("added", "intro.md"), ("added", "old-name.md")]
    assert all(e.revision == head and e.delivery_id == f"git:docs:{head}:{e.path}" for e in events)
    assert git.read(head, "intro.md") == b"# Intro\n\nHello.\n"


def test_a_commit_becomes_added_modified_removed_renamed(tmp_path: Path, repo: Repo) -> None:
    git = changes(tmp_path, repo)
    first = git.fetch()
    repo.write("docs/intro.md", "# Intro\n\nHello again.\n")
    repo.write("docs/guide/new.md", "# New\n")
    (repo.root / "docs/guide/setup.md").unlink()
    (repo.root / "docs/old-name.md").rename(repo.root / "docs/new-name.md")
    repo.write("src/main.py", "print('still not docs')\n")
    repo.commit("second")
    head = git.fetch()
    assert head != first
    found = {(e.change, e.path, e.old_path) for e in git.changes(first, head)}
    assert found == {("modified", "intro.md", None), ("added", "guide/new.md", None),
                     ("removed", "guide/setup.md", None), ("renamed", "new-name.md", "old-name.md")}
    assert git.changes(head, head) == []


def test_a_missing_repository_or_branch_is_a_clear_error(tmp_path: Path, repo: Repo) -> None:
    with pytest.raises(GitError, match="git clone"):
        GitChanges(GitSource("x", str(tmp_path / "nowhere")), tmp_path / "m1").fetch()
    with pytest.raises(GitError, match="git fetch"):
        GitChanges(GitSource("y", str(repo.root), branch="no-such-branch"), tmp_path / "m2").fetch()
