"""``wekadocs backup DIR`` and ``wekadocs restore DIR``: the three stores of one
stack, taken at one consistency point and put back with proof.

**Backup.** Our Neo4j is stopped (Community cannot dump an online database);
that moment is the backup's *consistency point*. While it is down nothing can
change the graph, and no change event can be acknowledged (the consumer needs
the graph), so the vectors and Redis are exported in that window, side by
side with ``neo4j-admin database dump``. The graph is then counted on a
private start (see ``neo4j_dump``) and the server comes back on its port.
Writes after the consistency point are not in the backup. The folder appears
only when complete (written under a hidden name, renamed at the end), with
``manifest.json``.

**Restore.** Before anything changes: every file's size and SHA-256 is checked
against the manifest, the Neo4j release must be the backup's, the dump must
read as an archive (``load --info``), and a stack
holding data is refused unless ``force`` (then a safety backup of it is taken
first, under ``<data_dir>/backups/``). Then Neo4j is stopped, the dump loaded
(``--overwrite-destination``), the graph counted on a private port, the
vectors and Redis keys replaced, and each part's counts and checksums
compared with the manifest. Only when all match does Neo4j come back on its
own port; on a mismatch it stays stopped and the error lists every
difference, so nothing serves data that failed its check.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

from cluster.backup import neo4j_dump, redis_dump, vector_dump
from cluster.backup.manifest import Manifest, compare_summaries, file_entry, verify_files
from cluster.vector_admin import vector_store_session
from wekadocs.errors import BackupError, WekadocsError
from wekadocs.graph_store import GraphStore
from wekadocs.settings import SCHEMA_VERSION, Settings
from wekadocs.vectors import VectorStore

__all__ = ["BackupReport", "RestoreReport", "backup", "restore", "populated"]


@dataclass
class BackupReport:
    folder: Path
    manifest: Manifest
    neo4j_downtime_s: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "neo4j_downtime_s": round(self.neo4j_downtime_s, 1),
                "seconds": round(self.seconds, 1), "manifest": self.manifest.as_dict()}


@dataclass
class RestoreReport:
    folder: Path
    manifest: Manifest
    neo4j_downtime_s: float
    seconds: float
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)
    safety_backup: Path | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "neo4j_downtime_s": round(self.neo4j_downtime_s, 1),
                "seconds": round(self.seconds, 1), "verified": self.verified,
                "safety_backup": str(self.safety_backup) if self.safety_backup else None,
                "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
                "consistency_point": self.manifest.consistency_point}


def backup(settings: Settings, folder: Path) -> BackupReport:
    """Back up this stack's graph, vectors and Redis keys into ``folder`` (new or empty)."""
    neo4j_dump.refuse_external(settings, "backup")
    folder = folder.expanduser().absolute()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} exists and is not an empty folder; a backup goes into a new one")
    with closing(_redis(settings)) as client, vector_store_session(settings) as store:
        return _backup(settings, folder, store, client)


def restore(settings: Settings, folder: Path, *, force: bool = False) -> RestoreReport:
    """Replace this stack's graph, vectors and Redis keys by the backup in
    ``folder``, verified part by part. Refuses a stack holding data unless ``force``."""
    started = time.monotonic()
    neo4j_dump.refuse_external(settings, "restore")
    folder = folder.expanduser().absolute()
    manifest = Manifest.read(folder)
    timings: dict[str, float] = {}
    mark = time.monotonic()
    verify_files(folder, manifest)
    timings["check_files"] = time.monotonic() - mark
    missing = {neo4j_dump.PART, vector_dump.PART, redis_dump.PART} - set(manifest.parts)
    if missing:
        raise BackupError(f"the backup in {folder} has no {', '.join(sorted(missing))} part; nothing was changed")
    if manifest.versions.get("neo4j") != settings.neo4j_version:
        raise BackupError(f"the backup's graph was dumped by Neo4j {manifest.versions.get('neo4j')}; this stack "
                          f"runs {settings.neo4j_version} (WEKADOCS_NEO4J_VERSION). Load it with the same release; "
                          "nothing was changed")
    if not neo4j_dump.is_running(settings):
        raise BackupError("this stack's Neo4j is not running: start the stack first (`wekadocs services up`); "
                          "nothing was changed")
    mark = time.monotonic()
    neo4j_dump.check_archive(settings, folder / neo4j_dump.PART)
    timings["check_archive"] = time.monotonic() - mark
    with closing(_redis(settings)) as client, vector_store_session(settings) as store:
        found = populated(settings, store, client)
        safety = None
        if found and not force:
            raise BackupError("this stack already holds data (" + "; ".join(found) + "). A restore replaces all "
                              "of it: run again with --force (a safety backup of the current data is taken "
                              "first). Nothing was changed")
        if found:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            safety = settings.data_dir / "backups" / f"pre-restore-{stamp}"
            mark = time.monotonic()
            _backup(settings, safety, store, client)
            timings["safety_backup"] = time.monotonic() - mark
        down_at = time.monotonic()
        neo4j_dump.stop(settings)
        try:
            verified = _load_and_verify(settings, folder, manifest, store, client, timings)
        except BackupError as exc:
            kept = f"; the data as it was before is in the safety backup {safety}" if safety else ""
            raise BackupError(f"{exc}\nNeo4j is left stopped, so nothing serves data that failed its check{kept}. "
                              "Fix the cause and restore again (with --force), or start it as it is with "
                              "`wekadocs services up`") from exc
        except (WekadocsError, redis.RedisError, OSError) as exc:
            kept = f"; the data as it was before is in the safety backup {safety}" if safety else ""
            raise BackupError(f"the restore failed after Neo4j stopped ({exc}); Neo4j is left stopped{kept}") from exc
        mark = time.monotonic()
        neo4j_dump.start(settings)
        with GraphStore.connect(settings) as graph:
            neo4j_dump.await_indexes(graph)
        timings["neo4j_start"] = time.monotonic() - mark
        downtime = time.monotonic() - down_at
    return RestoreReport(folder, manifest, downtime, time.monotonic() - started, verified, safety, timings)


def _load_and_verify(settings: Settings, folder: Path, manifest: Manifest, store: VectorStore, client: redis.Redis,
                     timings: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Load every part (Neo4j stopped), verify each against the manifest while
    the graph is reachable on a private port only; the verified content."""
    mark = time.monotonic()
    neo4j_dump.load(settings, folder / neo4j_dump.PART)
    timings["neo4j_load"] = time.monotonic() - mark
    problems: list[str] = []
    verified: dict[str, dict[str, Any]] = {}
    mark = time.monotonic()
    with neo4j_dump.private_graph(settings) as graph:
        timings["neo4j_start_and_indexes"] = time.monotonic() - mark
        mark = time.monotonic()
        graph_part = neo4j_dump.graph_summary(graph)
        problems += compare_summaries(neo4j_dump.PART, manifest.parts[neo4j_dump.PART], graph_part)
        verified[neo4j_dump.PART] = graph_part.content()
        timings["neo4j_verify"] = time.monotonic() - mark
        mark = time.monotonic()
        vector_dump.load(store, folder, manifest.parts[vector_dump.PART])
        timings["vectors_load"] = time.monotonic() - mark
        mark = time.monotonic()
        vectors_part = vector_dump.summary(store)
        problems += compare_summaries(vector_dump.PART, manifest.parts[vector_dump.PART], vectors_part)
        verified[vector_dump.PART] = vectors_part.content()
        timings["vectors_verify"] = time.monotonic() - mark
        mark = time.monotonic()
        redis_dump.load(client, folder)
        redis_part = redis_dump.summary(client)
        problems += compare_summaries(redis_dump.PART, manifest.parts[redis_dump.PART], redis_part)
        verified[redis_dump.PART] = redis_part.content()
        timings["redis_load_and_verify"] = time.monotonic() - mark
    if problems:
        raise BackupError("the restored data does not match the backup's manifest:\n  " + "\n  ".join(problems))
    return verified


def populated(settings: Settings, store: VectorStore, client: redis.Redis) -> list[str]:
    """What this stack holds, in words ([] for an empty stack): graph nodes
    (the schema's version node aside), vector points (the registry aside),
    Redis keys (empty streams aside)."""
    found = []
    with GraphStore.connect(settings) as graph:
        nodes = graph.read("MATCH (n) WHERE NOT n:SchemaVersion RETURN count(n) AS n")[0]["n"]
    if nodes:
        found.append(f"{nodes} graph nodes")
    points = vector_dump.point_count(store)
    if points:
        found.append(f"{points} vectors")
    keys = redis_dump.populated_keys(client)
    if keys:
        found.append(f"{len(keys)} Redis keys under {redis_dump.PREFIX}")
    return found


def _backup(settings: Settings, folder: Path, store: VectorStore, client: redis.Redis) -> BackupReport:
    started = time.monotonic()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    timings: dict[str, float] = {}
    try:
        store.collections()  # the vector store answers, before anything stops
        was_running = neo4j_dump.is_running(settings)
        down_at = time.monotonic()
        if was_running:
            neo4j_dump.stop(settings)
        consistency = time.time()
        timings["neo4j_stop"] = time.monotonic() - down_at
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neo4j-dump") as pool:
                mark = time.monotonic()
                dumped = pool.submit(neo4j_dump.dump, settings, staging / neo4j_dump.PART)
                vectors_part = vector_dump.export(store, staging, settings)
                timings["vectors_export"] = time.monotonic() - mark
                redis_part = redis_dump.export(client, staging)
                timings["redis_export"] = time.monotonic() - mark - timings["vectors_export"]
                dump_path = dumped.result()
                timings["neo4j_dump"] = time.monotonic() - mark
            mark = time.monotonic()
            with neo4j_dump.private_graph(settings) as graph:
                graph_part = neo4j_dump.graph_summary(graph)
                neo4j_server = graph.server_info().get("version", "")
            timings["neo4j_count"] = time.monotonic() - mark
        finally:
            if was_running:
                mark = time.monotonic()
                neo4j_dump.start(settings)
                timings["neo4j_start"] = time.monotonic() - mark
        downtime = time.monotonic() - down_at if was_running else 0.0
        graph_part.files[f"{neo4j_dump.PART}/{dump_path.name}"] = file_entry(dump_path)
        manifest = Manifest(
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            consistency_point=datetime.fromtimestamp(consistency, timezone.utc).isoformat(timespec="milliseconds"),
            consistency_point_unix=consistency,
            versions={"wekadocs": _package_version(), "schema": SCHEMA_VERSION, "neo4j": settings.neo4j_version,
                      "neo4j_server": neo4j_server, "neo4j_database": settings.neo4j_database,
                      "redis": str(client.info("server").get("redis_version", "")), "vector_engine": store.engine},
            parts={neo4j_dump.PART: graph_part, vector_dump.PART: vectors_part, redis_dump.PART: redis_part},
            timings_s={**{k: round(v, 2) for k, v in timings.items()}, "neo4j_downtime": round(downtime, 2)},
            notes=["writes after the consistency point are not in this backup",
                   "not included: the secrets folder, Neo4j's system database (users, passwords), Ray state, "
                   "Prometheus data"],
        )
        manifest.write(staging)
        if folder.exists():
            folder.rmdir()  # checked empty above
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupReport(folder, manifest, downtime, time.monotonic() - started)


def _redis(settings: Settings) -> redis.Redis:
    client = redis_dump.client_for(settings)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise BackupError(f"Redis at {settings.effective_redis_url} does not answer ({exc}): start the stack "
                          "first (`wekadocs services up`); nothing was changed") from exc
    return client


def _package_version() -> str:
    try:
        return metadata.version("wekadocs-graphrag")
    except metadata.PackageNotFoundError:
        return "unknown"
