"""What `wekadocs backup` and `restore` refuse before touching any store (no services)."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from cluster.cli import cli


def _run(*args: str, **env: str) -> tuple[int, str]:
    clean = {k: None for k in os.environ if k.startswith(("WEKADOCS_", "NEO4J_", "REDIS_", "QDRANT_"))}
    result = CliRunner().invoke(cli, list(args), env={**clean, **env})
    return result.exit_code, result.output


def test_backup_of_an_external_neo4j_is_refused_clearly(tmp_path: Path) -> None:
    code, output = _run("backup", str(tmp_path / "bk"), WEKADOCS_DATA_DIR=str(tmp_path / "data"),
                        NEO4J_URI="bolt://127.0.0.1:1", NEO4J_PASSWORD="external-password")
    assert code == 1
    assert "NEO4J_URI points at an external one (bolt://127.0.0.1:1)" in output
    assert "Use that server's own backup" in output and "nothing was changed" in output
    assert not (tmp_path / "bk").exists()


def test_restore_onto_an_external_neo4j_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "bk").mkdir()
    code, output = _run("restore", str(tmp_path / "bk"), "--force", WEKADOCS_DATA_DIR=str(tmp_path / "data"),
                        NEO4J_URI="neo4j+s://example.databases.neo4j.io", NEO4J_PASSWORD="external-password")
    assert code == 1
    assert "restore covers the Neo4j server this stack runs itself" in output


def test_a_backup_never_writes_into_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "keep.txt").write_text("mine")
    code, output = _run("backup", str(tmp_path / "bk"), WEKADOCS_DATA_DIR=str(tmp_path / "data"))
    assert code == 1
    assert "exists and is not an empty folder" in output
    assert [p.name for p in (tmp_path / "bk").iterdir()] == ["keep.txt"]


def test_restore_of_a_folder_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bk").mkdir()
    code, output = _run("restore", str(tmp_path / "bk"), WEKADOCS_DATA_DIR=str(tmp_path / "data"))
    assert code == 1
    assert "has no manifest.json: not a backup, or one that did not finish" in output
