"""Backup and restore of one stack: the Neo4j graph, the vector collections
with their registry and alias, and our Redis keys, with a manifest that lets a
restore prove it got everything back (see ``operations.py``)."""

from cluster.backup.manifest import Manifest, PartSummary
from cluster.backup.operations import BackupReport, RestoreReport, backup, populated, restore

__all__ = ["BackupReport", "Manifest", "PartSummary", "RestoreReport", "backup", "populated", "restore"]
