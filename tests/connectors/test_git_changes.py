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


def test_a_batch_read_gives_what_reading_page_by_page_gives(tmp_path: Path, repo: Repo) -> None:
    binary = bytes(range(256)) * 3 + b"\n\n"  # line feeds and NULs inside a blob must not confuse the batch
    repo.write("docs/with space.md", "# Spaced name\n")
    repo.write("docs/raw.md", binary)
    repo.write("docs/empty.md", "")
    repo.commit("more")
    git = changes(tmp_path, repo)
    head = git.fetch()
    paths = ["intro.md", "with space.md", "raw.md", "empty.md", "never-was.md", "guide", "guide/setup.md", "intro.md"]
    batch = git.read_many(head, paths)
    assert list(batch) == list(dict.fromkeys(paths))
    assert batch["intro.md"] == b"# Intro\n\nHello.\n"
    assert batch["with space.md"] == b"# Spaced name\n" and batch["raw.md"] == binary and batch["empty.md"] == b""
    assert batch["never-was.md"] is None
    assert batch["guide"] is None  # a folder is not a page
    assert batch["guide/setup.md"] == b"# Setup\n\nInstall it.\n"
    with pytest.raises(GitError, match="line break"):
        git.read_many(head, ["bad\nname.md"])


def test_long_page_paths_get_bounded_distinct_delivery_ids(tmp_path: Path, repo: Repo) -> None:
    """The WEKA docs hold a 147-character page path; with a source name and a
    commit id, a plain delivery id would pass the 200-character limit and the
    whole poll would fail on that one page."""
    folder = "attaching-detaching-object-stores-to-from-filesystems/" * 3
    repo.write(f"docs/{folder}first.md", "# First\n")
    repo.write(f"docs/{folder}second.md", "# Second\n")
    repo.commit("long paths")
    git = GitChanges(GitSource("weka-documentation", str(repo.root), docs_path="docs"), tmp_path / "mirrors")
    events = {e.path: e for e in git.changes(None, git.fetch())}
    long_ones = [events[f"{folder}first.md"], events[f"{folder}second.md"]]
    assert all(len(e.delivery_id) <= 200 for e in long_ones)
    assert long_ones[0].delivery_id != long_ones[1].delivery_id
    assert events["intro.md"].delivery_id.startswith("git:weka-documentation:")  # short ids read as before
