"""Disaster-recovery drill: back up a populated stack, destroy its data, restore,
prove nothing in the backup was lost, and measure how long it took.

1. Starts a private stack (Neo4j, Redis, Ray head on free ports in a temporary
   folder) and ingests a slice of the WEKA 4.4 docs (``--folders``, from
   ``WEKADOCS_CORPUS``, default ``../shared/corpus/weka-docs``).
2. Fills Redis as a running service would: a source, its cursor, an API token
   and ``--events`` change events waiting in the queue.
3. Runs the held queries (``search_documentation``'s engine, version 4.4)
   and keeps their section ids in order.
4. ``wekadocs backup`` (the library call), then one more change event: a
   write after the backup, which the restore must *not* bring back.
5. Destroys the data: ``services down``, then deletes ``neo4j/data``,
   ``vectors/`` and ``redis/`` of the data dir ("destroyed" is stamped here).
6. Recovers: ``services up`` on the empty folders, ``wekadocs restore``
   (files checked, then every part loaded and verified against the
   manifest), and the held queries again ("answering" is stamped at the
   first answer).
7. Prints the counts and checksums per part before and after, whether the
   held queries gave identical ids in identical order, the RTO (destroyed →
   verified and answering) with its stages, and the data-loss window (the
   backup's consistency point → destroyed: every write in it is lost, as the
   post-backup event shows).

Nothing is asserted about time; the exit status is 1 when a check differs.

    .venv/bin/python perf/dr_drill.py [--folders licensing operation-guide/alerts] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "token")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from cluster import services  # noqa: E402
from cluster.backup import Manifest, backup, restore  # noqa: E402
from cluster.ray_runtime import connect, disconnect  # noqa: E402
from cluster.vector_owner import vector_store_for  # noqa: E402
from perf.private_stack import corpus_version, private_settings  # noqa: E402
from pipelines.ingest import Ingestor  # noqa: E402
from wekadocs.auth.api_tokens import ApiTokenStore  # noqa: E402
from wekadocs.change_event import ChangeEvent  # noqa: E402
from wekadocs.change_queue import ChangeQueue  # noqa: E402
from wekadocs.graph_schema import apply_schema  # noqa: E402
from wekadocs.graph_store import GraphStore  # noqa: E402
from wekadocs.query.assembly import open_toolbox  # noqa: E402
from wekadocs.settings import Settings  # noqa: E402
from wekadocs.source_registry import SourceConfig, SourceRegistry  # noqa: E402
from wekadocs.source_state import SourceState  # noqa: E402

VERSION = "4.4"
SOURCE = "weka-docs"
QUESTIONS = ["how do I deactivate a license", "what does the NodeNotResponding alert mean",
             "how do I add a license to the cluster", "list the active alerts", "which events raise an alert",
             "what is a license entitlement", "mute an alert type"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--folders", nargs="*", default=["licensing", "operation-guide/alerts"],
                        help="folders of the 4.4 corpus to ingest")
    parser.add_argument("--events", type=int, default=5, help="change events left in the queue")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (stack is stopped)")
    args = parser.parse_args()
    corpus = corpus_version(VERSION)
    work = Path(tempfile.mkdtemp(prefix="wdd-"))
    settings = private_settings(work)
    print(f"private stack in {work}")
    try:
        return drill(settings, corpus, args.folders, args.events, work)
    finally:
        disconnect()
        services.down(settings)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def drill(settings: Settings, corpus: Path, folders: list[str], events: int, work: Path) -> int:
    started = time.perf_counter()
    services.up(settings)
    print(f"stack up in {time.perf_counter() - started:.1f} s")
    connect(settings, log_to_driver=False)
    slice_root = work / "corpus"
    for folder in folders:
        shutil.copytree(corpus / folder, slice_root / folder)
    with GraphStore.connect(settings) as graph:
        apply_schema(graph)
        mark = time.perf_counter()
        report = Ingestor(settings, graph, vector_store_for(settings), progress=False).run(
            slice_root, source=SOURCE, version=VERSION)
        print(f"ingested {report.documents_changed} documents, {report.sections_written} sections, "
              f"{report.vectors_upserted} vectors in {time.perf_counter() - mark:.1f} s"
              + (f" ({len(report.errors)} errors)" if report.errors else ""))
        client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
        fill_redis(settings, client, slice_root, events)
        held = ask(settings, graph)
    print(f"held queries: {len(held)}, {sum(len(v) for v in held.values())} section ids kept")

    taken = backup(settings, work / "backup")
    manifest = taken.manifest
    print(f"\nbackup: {taken.seconds:.1f} s, Neo4j down {taken.neo4j_downtime_s:.1f} s "
          f"(stages: {', '.join(f'{k} {v:.1f}' for k, v in manifest.timings_s.items())}); "
          f"consistency point {manifest.consistency_point}")
    show(manifest)
    late = ChangeQueue(client, capacity=settings.queue_capacity).enqueue(ChangeEvent(
        source=SOURCE, path="licensing/after-backup.md", change="added", delivery_id="drill-after-backup"))
    print(f"a write after the backup: change event {late.entry_id} (it will be lost)")
    time.sleep(1.0)

    print("\ndestroying the data: services down, then neo4j/data, vectors/, redis/ deleted")
    disconnect()
    services.down(settings)
    destroyed = time.time()
    for part in ("neo4j/data", "vectors", "redis"):
        shutil.rmtree(settings.data_dir / part, ignore_errors=True)

    mark = time.perf_counter()
    services.up(settings)
    up_s = time.perf_counter() - mark
    mark = time.perf_counter()
    restored = restore(settings, work / "backup")
    restore_s = time.perf_counter() - mark
    connect(settings, log_to_driver=False)
    mark = time.perf_counter()
    with GraphStore.connect(settings) as graph:
        again, first_answer = ask(settings, graph, timed=True)
    answering = first_answer
    ask_s = time.perf_counter() - mark
    rto = answering - destroyed

    same_content = restored.verified == manifest.content()
    same_answers = again == held
    back = late.entry_id in queued_ids(client)
    print(f"\nrestore: {restore_s:.1f} s, Neo4j down {restored.neo4j_downtime_s:.1f} s "
          f"(stages: {', '.join(f'{k} {v:.1f}' for k, v in restored.timings_s.items())})")
    table(manifest, restored.verified)
    print(f"counts and checksums of every part equal to the manifest: {same_content}")
    print(f"held queries identical (ids and order): {same_answers} "
          f"({sum(a == b for a, b in zip(again.values(), held.values()))}/{len(held)})")
    print(f"post-backup change event in the queue after restore: {'yes' if back else 'no (lost, as expected)'}")
    print(f"\nRTO (destroyed -> verified and answering): {rto:.1f} s = services up {up_s:.1f} s "
          f"+ restore {restore_s:.1f} s + first answer (Ray connect, model load) "
          f"{answering - destroyed - up_s - restore_s:.1f} s "
          f"(all {len(held)} held queries {ask_s:.1f} s)")
    print(f"data-loss window (consistency point -> destroyed): {destroyed - manifest.consistency_point_unix:.1f} s; "
          "every write in it is lost (here: the one post-backup event)")
    return 0 if same_content and same_answers and not back else 1


def fill_redis(settings: Settings, client: redis.Redis, slice_root: Path, events: int) -> None:
    SourceRegistry(client).add(SourceConfig(name=SOURCE, kind="git", url=str(slice_root), version=VERSION,
                                            interval_s=3600))
    SourceState(client).save_cursor(SOURCE, {"commit": "drill-0001"})
    ApiTokenStore(client).create("drill", ["docs:read"])
    queue = ChangeQueue(client, capacity=settings.queue_capacity)
    queue.enqueue_all([ChangeEvent(source=SOURCE, path=f"licensing/page-{i}.md", change="modified",
                                   delivery_id=f"drill-{i}", priority="high" if i == 0 else "normal")
                       for i in range(events)])


def ask(settings: Settings, graph: GraphStore, *, timed: bool = False):  # type: ignore[no-untyped-def]
    engine = open_toolbox(settings, vector_store_for(settings), graph=graph).engine
    found: dict[str, list[str]] = {}
    first = 0.0
    for question in QUESTIONS:
        result = engine.search(question, version=VERSION)
        if result.diagnostics.get("degraded"):
            print(f"  degraded answer to {question!r}: {result.diagnostics.get('degraded_reason')}")
        found[question] = [c.section_id for c in result.ranked[:10]]
        first = first or time.time()
    return (found, first) if timed else found


def queued_ids(client: redis.Redis) -> list[str]:
    return [entry_id for stream in ("wekadocs:changes:high", "wekadocs:changes:normal")
            for entry_id, _ in client.xrange(stream)]


def table(manifest: Manifest, verified: dict[str, dict[str, dict[str, object]]]) -> None:
    """Each count and checksum: in the backup, after the restore."""
    print(f"  {'part':<7} {'what':<34} {'backup':>18} {'restored':>18}  equal")
    for name, part in sorted(manifest.parts.items()):
        for kind, values in (("counts", part.counts), ("checksums", part.checksums)):
            for key, value in values.items():
                got = verified.get(name, {}).get(kind, {}).get(key)
                shown = (str(value)[:16], str(got)[:16]) if kind == "checksums" else (str(value), str(got))
                print(f"  {name:<7} {(key if kind == 'counts' else 'sha256 ' + key):<34.34} {shown[0]:>18} "
                      f"{shown[1]:>18}  {'yes' if got == value else 'NO'}")


def show(manifest: Manifest) -> None:
    for name, part in sorted(manifest.parts.items()):
        print(f"  backed up {name:<8} " + ", ".join(f"{k} {v}" for k, v in part.counts.items()))


if __name__ == "__main__":
    sys.exit(main())
