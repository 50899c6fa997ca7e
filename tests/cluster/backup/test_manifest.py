"""The manifest: written and read back, files checked, content compared (no services)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.backup.manifest import (
    MANIFEST,
    Manifest,
    PartSummary,
    canonical,
    compare_summaries,
    digest_lines,
    file_entry,
    verify_files,
)
from wekadocs.errors import BackupError


def _backup(folder: Path) -> Manifest:
    (folder / "neo4j").mkdir(parents=True)
    (folder / "neo4j" / "neo4j.dump").write_bytes(b"graph bytes" * 100)
    (folder / "redis").mkdir()
    (folder / "redis" / "keys.jsonl").write_text('{"key": "a"}\n')
    manifest = Manifest(
        created_at="2026-01-01T00:00:00+00:00", consistency_point="2026-01-01T00:00:00.000+00:00",
        consistency_point_unix=1767225600.0, versions={"neo4j": "5.26.30"},
        parts={
            "neo4j": PartSummary(counts={"documents": 2, "sections": 5}, checksums={"sections": "a" * 64},
                                 files={"neo4j/neo4j.dump": file_entry(folder / "neo4j" / "neo4j.dump")}),
            "redis": PartSummary(counts={"keys": 1}, checksums={"keys": "b" * 64},
                                 files={"redis/keys.jsonl": file_entry(folder / "redis" / "keys.jsonl")}),
        })
    manifest.write(folder)
    return manifest


def test_a_manifest_reads_back_as_written(tmp_path: Path) -> None:
    written = _backup(tmp_path)
    read = Manifest.read(tmp_path)
    assert read.as_dict() == written.as_dict()
    assert read.content() == {"neo4j": {"counts": {"documents": 2, "sections": 5}, "checksums": {"sections": "a" * 64}},
                              "redis": {"counts": {"keys": 1}, "checksums": {"keys": "b" * 64}}}
    assert verify_files(tmp_path, read) == 1100 + len('{"key": "a"}\n')


def test_one_changed_byte_fails_the_integrity_check_naming_the_file(tmp_path: Path) -> None:
    manifest = _backup(tmp_path)
    dump = tmp_path / "neo4j" / "neo4j.dump"
    data = bytearray(dump.read_bytes())
    data[7] ^= 1
    dump.write_bytes(bytes(data))
    with pytest.raises(BackupError) as caught:
        verify_files(tmp_path, manifest)
    assert "failed its integrity check (nothing was changed)" in str(caught.value)
    assert "neo4j/neo4j.dump: 1100 bytes, sha256" in str(caught.value)


def test_missing_and_extra_files_fail_the_integrity_check(tmp_path: Path) -> None:
    manifest = _backup(tmp_path)
    (tmp_path / "redis" / "keys.jsonl").unlink()
    (tmp_path / "neo4j" / "other.dump").write_bytes(b"x")
    with pytest.raises(BackupError) as caught:
        verify_files(tmp_path, manifest)
    assert "redis/keys.jsonl: missing" in str(caught.value)
    assert "neo4j/other.dump: not listed in the manifest" in str(caught.value)


def test_a_folder_without_a_manifest_is_not_a_backup(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="has no manifest.json"):
        Manifest.read(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(BackupError, match="not a valid manifest"):
        Manifest.read(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"format": 99}))
    with pytest.raises(BackupError, match="format 99"):
        Manifest.read(tmp_path)


def test_compare_summaries_names_each_difference() -> None:
    backup = PartSummary(counts={"documents": 2, "sections": 5}, checksums={"sections": "a" * 64})
    same = PartSummary(counts={"sections": 5, "documents": 2}, checksums={"sections": "a" * 64}, files={"x": {}})
    assert compare_summaries("neo4j", backup, same) == []
    other = PartSummary(counts={"documents": 2, "sections": 4}, checksums={"sections": "c" * 64, "extra": "d"})
    assert compare_summaries("neo4j", backup, other) == [
        "neo4j count sections: backup 5, restored 4",
        "neo4j checksum extra: backup absent, restored d",
        f"neo4j checksum sections: backup {'a' * 16}…, restored {'c' * 16}…",
    ]


def test_digests_do_not_depend_on_order_and_canonical_sorts_keys() -> None:
    assert digest_lines(["b", "a", "c"]) == digest_lines(["c", "b", "a"])
    assert digest_lines(["ab", "c"]) != digest_lines(["a", "bc"])  # lines are delimited
    assert canonical({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
