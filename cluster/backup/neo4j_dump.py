"""The graph part: ``neo4j-admin database dump``/``load`` of the same release,
and the graph's content summary.

Neo4j Community cannot dump a database that is online, so our own server is
stopped for the dump. Counting the graph for the manifest needs a running
server, but on its usual port writers (ingest, the change consumer) could
change the graph between the count and the stop. So the count is taken on a
*private* start: the server is started again on a free port nobody else
knows, counted, and stopped, before it comes back on its own port. The dump
and the counts therefore describe the same frozen graph: the one at the
moment the server stopped (the backup's consistency point). A restore does
the same in reverse: load, count on a private port, and only when the counts
and checksums match does the server come back where clients find it.

An external Neo4j (``NEO4J_URI``) is not ours to stop: both commands refuse
it (back it up with that server's own tools).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cluster import services
from cluster.neo4j_server import Neo4jServer
from cluster.backup.manifest import PartSummary, canonical, digest_lines
from cluster.processes import free_port
from wekadocs.errors import BackupError
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings

__all__ = ["PART", "refuse_external", "graph_summary", "dump", "check_archive", "load", "private_graph",
           "is_running", "stop", "start", "await_indexes"]

PART = "neo4j"
INDEX_WAIT_S = 600


def refuse_external(settings: Settings, action: str) -> None:
    if not settings.manages_neo4j:
        raise BackupError(
            f"{action} covers the Neo4j server this stack runs itself; NEO4J_URI points at an external one "
            f"({settings.bolt_uri}), which `wekadocs {action}` cannot stop, dump or load. Use that server's own "
            "backup (`neo4j-admin database dump` on its host, or the provider's snapshots, e.g. Aura's); "
            "nothing was changed")


def graph_summary(graph: GraphStore) -> PartSummary:
    """Counts and order-free checksums of the whole graph: documents (id,
    checksum), sections (id, document, checksum), every node (labels,
    properties) and every relationship (ends, type, properties)."""
    documents = graph.read("MATCH (d:Document) RETURN d.id AS id, d.checksum AS checksum")
    sections = graph.read("MATCH (s:Section) RETURN s.id AS id, s.document_id AS doc, s.checksum AS checksum")
    nodes = graph.read("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
    relationships = graph.read(
        "MATCH (a)-[r]->(b) RETURN coalesce(a.id, '') AS a, labels(a) AS al, type(r) AS type, "
        "properties(r) AS props, coalesce(b.id, '') AS b, labels(b) AS bl")
    labels: dict[str, int] = {}
    for node in nodes:
        for label in node["labels"]:
            labels[label] = labels.get(label, 0) + 1
    types: dict[str, int] = {}
    for rel in relationships:
        types[rel["type"]] = types.get(rel["type"], 0) + 1
    return PartSummary(
        counts={"documents": len(documents), "sections": len(sections), "nodes": len(nodes),
                "relationships": len(relationships)},
        checksums={
            "documents": digest_lines(f"{d['id']}\0{d['checksum']}" for d in documents),
            "sections": digest_lines(f"{s['id']}\0{s['doc']}\0{s['checksum']}" for s in sections),
            "nodes": digest_lines(canonical([sorted(n["labels"]), n["props"]]) for n in nodes),
            "relationships": digest_lines(canonical([sorted(r["al"]), r["a"], r["type"], r["props"],
                                                     sorted(r["bl"]), r["b"]]) for r in relationships),
        },
        details={"labels": dict(sorted(labels.items())), "relationship_types": dict(sorted(types.items()))},
    )


def is_running(settings: Settings) -> bool:
    return services.status_one(settings, Neo4jServer(settings)).state in ("running", "unreachable")


def stop(settings: Settings) -> None:
    services.stop_one(settings, Neo4jServer(settings))


def start(settings: Settings) -> None:
    services.start_one(settings, Neo4jServer(settings))


def dump(settings: Settings, folder: Path) -> Path:
    """``neo4j-admin database dump`` of the (stopped) database into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    database = settings.neo4j_database
    _admin(settings, "dump", "database", "dump", database, f"--to-path={folder}", "--overwrite-destination=true")
    path = folder / f"{database}.dump"
    if not path.is_file():
        raise BackupError(f"neo4j-admin reported success but wrote no {path.name} in {folder}")
    return path


def check_archive(settings: Settings, folder: Path) -> str:
    """``neo4j-admin database load --info``: the archive reads as a dump of this
    release (file count, bytes, format), checked before the server stops."""
    return _admin(settings, "load --info", "database", "load", "--info", settings.neo4j_database,
                  f"--from-path={folder}")


def load(settings: Settings, folder: Path) -> None:
    """``neo4j-admin database load --overwrite-destination`` of ``folder``'s dump
    into the (stopped) database."""
    _admin(settings, "load", "database", "load", settings.neo4j_database, f"--from-path={folder}",
           "--overwrite-destination=true")


@contextmanager
def private_graph(settings: Settings) -> Iterator[GraphStore]:
    """Our server, started on a free port only this process knows, with its
    indexes online; stopped again on the way out."""
    quiet = settings.model_copy(update={"neo4j_port": free_port(avoid=[settings.neo4j_port])})
    services.start_one(quiet, Neo4jServer(quiet))
    try:
        with GraphStore.connect(quiet) as graph:
            await_indexes(graph)
            yield graph
    finally:
        services.stop_one(quiet, Neo4jServer(quiet))


def await_indexes(graph: GraphStore, timeout_s: float = INDEX_WAIT_S) -> float:
    """Wait until every index is online (a loaded store may rebuild them, and
    keyword search needs the full-text one); the seconds waited."""
    started = time.monotonic()
    while True:
        rows = graph.read("SHOW INDEXES YIELD name, state WHERE state <> 'ONLINE' RETURN name, state")
        if not rows:
            return time.monotonic() - started
        failed = [r["name"] for r in rows if r["state"] == "FAILED"]
        if failed:
            raise BackupError(f"Neo4j indexes failed to build after the load: {', '.join(failed)}")
        if time.monotonic() - started > timeout_s:
            raise BackupError(f"Neo4j indexes still not online after {timeout_s:g}s: "
                              + ", ".join(f"{r['name']} ({r['state']})" for r in rows))
        time.sleep(0.5)


def _admin(settings: Settings, what: str, *args: str) -> str:
    server = Neo4jServer(settings)
    server.prepare()  # the jars and the config the tool reads (data folder location)
    result = subprocess.run(server.admin_command(*args), env={**os.environ, **server.env()}, cwd=server.home,
                            capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BackupError(f"neo4j-admin database {what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout
