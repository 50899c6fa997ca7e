"""What `wekadocs sources …` does: configure sources, show their state, and
remove one together with everything ingested from it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis

from cluster.freshness import freshness_status
from cluster.ray_runtime import connect
from cluster.vector_owner import vector_store_for
from wekadocs.change_queue import ChangeQueue
from wekadocs.errors import ServiceError
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import GraphWriter
from wekadocs.secrets import SecretStore
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig, SourceRegistry
from wekadocs.source_state import SourceState
from wekadocs.vectors.registry import ensure_serving

__all__ = ["SourceAdmin", "RemoveReport"]

_REMOVE_PASSES = 3  # a consumer mid-batch may write a page after the first pass


@dataclass
class RemoveReport:
    source: str
    documents_deleted: int = 0
    sections_deleted: int = 0
    vectors_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SourceAdmin:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = redis.Redis.from_url(settings.effective_redis_url, decode_responses=True,
                                           socket_timeout=10, socket_connect_timeout=5)
        self.registry = SourceRegistry(self.client)
        self.state = SourceState(self.client)

    def add(self, config: SourceConfig, environ: Mapping[str, str] | None = None) -> list[str]:
        """Register the source; first the secrets it names that are set in
        ``environ`` (the adding shell's) go to the secrets folder, so a running
        service checks its webhooks and reads its API at once. The names saved."""
        names = (config.webhook_secret_env, config.token_env, config.user_env)
        saved = SecretStore(self.settings.effective_secrets_dir).save_from(
            names, os.environ if environ is None else environ)
        self.registry.add(config)
        self.state.trigger(config.name)  # a running supervisor polls it at once
        return saved

    def list(self) -> list[SourceConfig]:
        return self.registry.list()

    def poll_now(self, name: str) -> None:
        self.registry.get(name)  # unknown names are an error, not a silent no-op
        self.state.trigger(name)

    def status(self) -> dict[str, Any]:
        """Per source: its stored status and cursor; the queue; and, when the
        freshness actors run, what they report live (breakers, consumer)."""
        sources = {c.name: {"kind": c.kind, "status": self.state.status(c.name), "cursor": self.state.cursor(c.name)}
                   for c in self.registry.list()}
        stats = ChangeQueue(self.client, capacity=self.settings.queue_capacity).stats()
        live: dict[str, Any] = {}
        try:
            connect(self.settings, allow_in_process=False)
            live = freshness_status(self.settings)
        except ServiceError as exc:
            live = {"error": str(exc)}
        return {"sources": sources, "queue": {**asdict(stats), "fill": round(stats.fill, 3)}, "actors": live}

    def remove(self, name: str) -> RemoveReport:
        """The registry entry first (pollers stop, queued events for it are
        dropped), then its documents from the graph and their vectors."""
        self.registry.remove(name)
        self.state.forget(name)
        report = RemoveReport(name)
        connect(self.settings, allow_in_process=False)
        vectors = vector_store_for(self.settings)
        targets = ensure_serving(self.settings, vectors).write_targets()
        with GraphStore.connect(self.settings) as graph:
            writer = GraphWriter(graph)
            for _ in range(_REMOVE_PASSES):
                ids = writer.source_documents(name)
                if not ids:
                    break
                stats = writer.delete_documents(ids)
                for record in targets:
                    for start in range(0, len(stats.deleted_section_ids), 512):
                        vectors.delete(record.name, stats.deleted_section_ids[start:start + 512])
                report.documents_deleted += stats.documents_deleted
                report.sections_deleted += stats.sections_deleted
                report.vectors_deleted += len(stats.deleted_section_ids)
                time.sleep(1)
            writer.delete_orphan_entities()
        return report
