"""A private stack for a drill or benchmark: its own folder and free ports,
so a script never touches the services a user runs on the same machine."""

from __future__ import annotations

import os
from pathlib import Path

from cluster.processes import free_ports
from wekadocs.settings import Settings, load_settings

__all__ = ["PORTS", "corpus_version", "private_settings", "stack_env"]

ROOT = Path(__file__).resolve().parents[1]
PORTS = ("neo4j_port", "redis_port", "ray_port", "ray_dashboard_port", "ray_client_port", "ray_metrics_port",
         "prometheus_port")


def corpus_version(version: str) -> Path:
    """One version's folder of the corpus (``WEKADOCS_CORPUS``, default ``../shared/corpus/weka-docs``)."""
    folder = Path(os.environ.get("WEKADOCS_CORPUS", ROOT.parent / "shared" / "corpus" / "weka-docs")) / version
    if not folder.is_dir():
        raise SystemExit(f"corpus not found at {folder} (set WEKADOCS_CORPUS)")
    return folder


def private_settings(work: Path, **overrides: object) -> Settings:
    """Settings for a stack in ``work``: two CPUs for Ray, a small Neo4j, free ports."""
    defaults: dict[str, object] = {"ray_num_cpus": 2, "ray_object_store_mb": 512, "neo4j_heap": "1g",
                                   "neo4j_pagecache": "256m", "start_timeout_s": 300}
    return load_settings(data_dir=work / "s", **{**defaults, **dict(zip(PORTS, free_ports(len(PORTS)))), **overrides})


def stack_env(settings: Settings) -> dict[str, str]:
    """The environment a ``wekadocs`` subprocess needs to find this stack
    (and import this checkout, as the worker nodes' processes do)."""
    names = ("data_dir", *PORTS, "ray_num_cpus", "ray_object_store_mb")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "RAY_ADDRESS"))}
    return {**clean, **{Settings.env_name(name): str(getattr(settings, name)) for name in names},
            "PYTHONPATH": str(ROOT)}
