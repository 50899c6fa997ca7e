"""Which files of a tree an ingest reads: links that leave the tree are refused."""

from __future__ import annotations

from pathlib import Path

from pipelines.source_tree import scan_tree


def test_links_that_leave_the_tree_are_refused_and_those_inside_are_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nnot part of the docs\n")
    root = tmp_path / "docs"
    (root / "guide").mkdir(parents=True)
    (root / "guide" / "page.md").write_text("# Page\n\ntext\n")
    (root / "alias.md").symlink_to(root / "guide" / "page.md")  # inside: read
    (root / "leak.md").symlink_to(outside / "secret.md")  # outside: refused
    (root / "up.md").symlink_to(Path("..") / "outside" / "secret.md")  # relative, outside: refused
    (root / "linked-folder").symlink_to(outside, target_is_directory=True)  # not followed

    files, errors = scan_tree(root)

    assert sorted(f.path for f in files) == ["alias.md", "guide/page.md"]
    assert dict(errors) == {"leak.md": "a link to a file outside the ingested folder",
                            "up.md": "a link to a file outside the ingested folder"}
