"""Writing parsed, extracted documents into Neo4j, incrementally.

A batch of documents is written in one transaction: a crash leaves either the
old or the new state of those documents, never half of one. Within a
document only sections whose content or place changed are re-written (the
section's ``state`` hash says so); their mentions, derived edges and scoped
entities are replaced, everything else is left alone. Every node and edge
carries provenance (``source``, ``derived_from_section_id``) and timestamps.
Links between pages are resolved in ``graph_links``, in any write order.

All Cypher is parameterized; labels and relationship types come from the
fixed sets in ``graph_schema``, never from input.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, LiteralString

from wekadocs.graph_links import drop_link_records, link_rows, write_links
from wekadocs.graph_schema import DERIVED_EDGE_TYPES, ENTITY_LABELS, SCOPED_LABELS
from wekadocs.graph_store import GraphStore
from wekadocs.ids import checksum
from wekadocs.model import Extraction, ParsedDocument, Section

__all__ = ["DocumentWrite", "WriteStats", "GraphWriter", "section_state", "WRITE_FORMAT"]

Statement = tuple[LiteralString, dict[str, Any]]
_LABELS = set(ENTITY_LABELS) | {"Section", "Document"}
_RELATIONS = set(DERIVED_EDGE_TYPES)


@dataclass(frozen=True)
class DocumentWrite:
    parsed: ParsedDocument
    extraction: Extraction


@dataclass
class WriteStats:
    documents_written: int = 0
    documents_deleted: int = 0
    sections_written: int = 0
    sections_deleted: int = 0
    entities_written: int = 0
    mentions_written: int = 0
    relations_written: int = 0
    deleted_section_ids: list[str] = field(default_factory=list)

    def add(self, other: WriteStats) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.deleted_section_ids.extend(other.deleted_section_ids)


# What the writer stores beyond the text: bumped when that changes, so the first
# ingest after an upgrade re-writes every page (graph only: vectors are reused
# by text checksum). 2: each section's links kept as PageLink records, without
# which a graph written before could never gain the links it had lost.
WRITE_FORMAT = 2


def section_state(section: Section) -> str:
    """Changes when anything we store about the section changes."""
    links = [(link.path, link.anchor) for link in section.links]
    shape = [section.checksum, section.level, section.title, section.anchor, section.order,
             section.parent_id, section.part, section.line, links, WRITE_FORMAT]
    return checksum(json.dumps(shape))


class GraphWriter:
    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    # --- reading what is there ---------------------------------------------------

    def documents(self, source: str, version: str, paths: list[str] | None = None) -> dict[str, tuple[str, str]]:
        """path -> (document id, checksum) of what is stored for source+version
        (only ``paths``, when given: a change consumer's few pages). A page
        written in an older WRITE_FORMAT has no checksum, so it is re-written."""
        rows = self.graph.read(
            "MATCH (d:Document {source: $source, version: $version}) "
            "WHERE $paths IS NULL OR d.path IN $paths "
            "RETURN d.path AS path, d.id AS id, "
            "CASE WHEN d.write_format = $format THEN d.checksum ELSE '' END AS checksum",
            source=source, version=version, paths=paths, format=WRITE_FORMAT,
        )
        return {row["path"]: (row["id"], row["checksum"]) for row in rows}

    def source_documents(self, source: str) -> list[str]:
        """Ids of every document of a source, in all its versions."""
        rows = self.graph.read("MATCH (d:Document {source: $source}) RETURN d.id AS id", source=source)
        return [row["id"] for row in rows]

    def section_states(self, document_ids: list[str]) -> dict[str, str]:
        """section id -> stored state, for the given documents."""
        rows = self.graph.read(
            "UNWIND $ids AS doc MATCH (s:Section {document_id: doc}) RETURN s.id AS id, s.state AS state",
            ids=document_ids,
        )
        return {row["id"]: row["state"] for row in rows}

    # --- writing -----------------------------------------------------------------

    def write(self, batch: list[DocumentWrite], stored: dict[str, str], run_id: str) -> WriteStats:
        """Write a batch of documents in one transaction.

        ``stored`` maps section id -> state for what the graph holds now (see
        ``section_states``); sections whose state is unchanged are skipped.
        """
        stats = WriteStats()
        statements: list[Statement] = []
        changed: list[Section] = []
        kept_ids: set[str] = set()
        doc_ids = [item.parsed.document.id for item in batch]
        for item in batch:
            sections = item.parsed.sections
            dirty = {s.id for s in sections if stored.get(s.id) != section_state(s)}
            # Parts of a split section share a Procedure and its Steps: when one
            # part changes, all of them are re-written together.
            dirty_trails = {s.trail for s in sections if s.id in dirty and s.part}
            for section in sections:
                kept_ids.add(section.id)
                if section.id in dirty or (section.part and section.trail in dirty_trails):
                    changed.append(section)
        removed = [sid for sid in stored if sid not in kept_ids]
        changed_ids = {s.id for s in changed}
        statements += _drop_sections_output([s.id for s in changed] + removed)
        statements.append((
            "UNWIND $ids AS sid MATCH (s:Section {id: sid}) DETACH DELETE s",
            {"ids": removed},
        ))
        statements += _documents(batch, run_id)
        statements += _sections(batch, changed, run_id)
        statements.append(_structure(doc_ids))
        entities, mentions, relations = _extraction_rows(batch, changed_ids)
        statements += _entities(entities, run_id)
        statements += _mentions(mentions, run_id)
        statements += _relations(relations, run_id)
        links = [row for item in batch for row in link_rows(item.parsed, item.extraction, changed_ids)]
        statements += write_links(links, sorted(changed_ids), doc_ids, run_id)
        self.graph.write_all(statements)
        stats.documents_written = len(batch)
        stats.sections_written = len(changed)
        stats.sections_deleted = len(removed)
        stats.deleted_section_ids = removed
        stats.entities_written = len(entities)
        stats.mentions_written = len(mentions)
        stats.relations_written = len(relations)
        return stats

    def delete_documents(self, document_ids: list[str]) -> WriteStats:
        """Remove documents, their sections and everything derived from them."""
        stats = WriteStats()
        if not document_ids:
            return stats
        section_ids = list(self.section_states(document_ids))
        statements = _drop_sections_output(section_ids)
        statements.append((
            "UNWIND $ids AS sid MATCH (s:Section {id: sid}) DETACH DELETE s", {"ids": section_ids}
        ))
        statements.append((
            "UNWIND $ids AS did MATCH (d:Document {id: did}) DETACH DELETE d", {"ids": document_ids}
        ))
        self.graph.write_all(statements)
        stats.documents_deleted = len(document_ids)
        stats.sections_deleted = len(section_ids)
        stats.deleted_section_ids = section_ids
        return stats

    def delete_orphan_entities(self) -> int:
        """Shared entities no section mentions any more."""
        labels = [label for label in ENTITY_LABELS if label not in SCOPED_LABELS]
        total = 0
        for label in labels:
            rows = self.graph.write(
                "MATCH (e:" + label + ") WHERE NOT ()-[:MENTIONS]->(e) "
                "WITH e LIMIT 100000 DETACH DELETE e RETURN count(*) AS n"
            )
            total += int(rows[0]["n"]) if rows else 0
        return total

    # --- embeddings bookkeeping ------------------------------------------------
    # ``s.embedded_in`` lists the embedding versions whose collection holds a
    # vector of the section's current text: one collection serves while a
    # re-embed fills the next, and each is kept current on its own.

    def sections_needing_vectors(self, embedding_version: str, document_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Sections whose vector for ``embedding_version`` is not confirmed."""
        query: LiteralString = (
            "MATCH (s:Section) WHERE ($docs IS NULL OR s.document_id IN $docs) "
            "AND NOT $version IN coalesce(s.embedded_in, []) "
            "MATCH (d:Document {id: s.document_id}) "
            "RETURN s.id AS id, s.checksum AS checksum, s.trail AS trail, s.text AS text, "
            "d.id AS document_id, d.version AS version, d.source AS source, d.path AS path "
            "ORDER BY s.id"
        )
        return self.graph.read(query, docs=document_ids, version=embedding_version)

    def mark_embedded(self, section_ids: list[str], embedding_version: str) -> None:
        self._set_marks(section_ids, embedding_version, add=True)

    def unmark_embedded(self, section_ids: list[str], embedding_version: str) -> None:
        """Forget that these sections have a vector for this version, so the
        embed stage redoes them."""
        self._set_marks(section_ids, embedding_version, add=False)

    def forget_embedding_version(self, embedding_version: str) -> None:
        """No section has a vector for this version any more (its collection is gone)."""
        while self.graph.write(
            "MATCH (s:Section) WHERE $version IN s.embedded_in WITH s LIMIT 10000 "
            "SET s.embedded_in = [v IN s.embedded_in WHERE v <> $version] RETURN count(s) AS n",
            version=embedding_version,
        )[0]["n"]:
            pass

    def _set_marks(self, section_ids: list[str], embedding_version: str, *, add: bool) -> None:
        for start in range(0, len(section_ids), 5000):
            self.graph.write(
                "UNWIND $ids AS sid MATCH (s:Section {id: sid}) "
                "SET s.embedded_in = [v IN coalesce(s.embedded_in, []) WHERE v <> $version] "
                "+ CASE WHEN $add THEN [$version] ELSE [] END",
                ids=section_ids[start:start + 5000], version=embedding_version, add=add,
            )

    def all_sections(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """section id -> (checksum, embedding versions with a confirmed vector)."""
        rows = self.graph.read(
            "MATCH (s:Section) RETURN s.id AS id, s.checksum AS checksum, "
            "coalesce(s.embedded_in, []) AS versions"
        )
        return {row["id"]: (row["checksum"], tuple(row["versions"])) for row in rows}


# --- statement builders ----------------------------------------------------------


def _drop_sections_output(section_ids: list[str]) -> list[Statement]:
    """Mentions, derived edges and scoped entities of sections about to be
    re-written or deleted."""
    params = {"ids": section_ids}
    statements: list[Statement] = [
        ("UNWIND $ids AS sid MATCH (:Section {id: sid})-[m:MENTIONS]->() DELETE m", params),
        drop_link_records(section_ids),
    ]
    for edge in DERIVED_EDGE_TYPES:
        statements.append((
            "UNWIND $ids AS sid MATCH ()-[r:" + edge + " {derived_from_section_id: sid}]->() DELETE r",
            params,
        ))
    for label in SCOPED_LABELS:
        statements.append((
            "UNWIND $ids AS sid MATCH (e:" + label + " {scope_section_id: sid}) DETACH DELETE e", params
        ))
    return statements


def _documents(batch: list[DocumentWrite], run_id: str) -> list[Statement]:
    rows = []
    for item in batch:
        d = item.parsed.document
        rows.append({
            "id": d.id,
            "props": {
                "source": d.source, "path": d.path, "version": d.version, "title": d.title,
                "description": d.description, "source_type": d.source_type,
                "source_uri": d.source_uri, "checksum": d.checksum, "run_id": run_id,
                "write_format": WRITE_FORMAT,
            },
        })
    return [(
        "UNWIND $rows AS row MERGE (d:Document {id: row.id}) "
        "ON CREATE SET d.created_at = datetime() "
        "SET d += row.props, d.last_edited = datetime()",
        {"rows": rows},
    )]


def _sections(batch: list[DocumentWrite], changed: list[Section], run_id: str) -> list[Statement]:
    sources = {item.parsed.document.id: item.parsed.document.source for item in batch}
    rows = [{
        "id": s.id,
        "document_id": s.document_id,
        "checksum": s.checksum,
        "props": {
            "document_id": s.document_id, "level": s.level, "title": s.title, "anchor": s.anchor,
            "order": s.order, "trail": list(s.trail), "text": s.text, "tokens": s.tokens,
            "part": s.part, "line": s.line, "parent_id": s.parent_id, "state": section_state(s),
            "source": sources[s.document_id], "run_id": run_id,
        },
    } for s in changed]
    return [(
        "UNWIND $rows AS row "
        "MERGE (s:Section {id: row.id}) ON CREATE SET s.created_at = datetime() "
        # a vector is valid only for the text it was computed from
        "SET s.embedded_in = CASE WHEN s.checksum = row.checksum THEN s.embedded_in END, "
        "s.checksum = row.checksum, s += row.props, s.updated_at = datetime() "
        "WITH s, row MATCH (d:Document {id: row.document_id}) "
        "MERGE (d)-[h:HAS_SECTION]->(s) SET h.order = row.props.order",
        {"rows": rows},
    )]


def _structure(document_ids: list[str]) -> Statement:
    """Parent/child and next edges, rebuilt from the sections' stored order."""
    return (
        "UNWIND $docs AS doc "
        "CALL (doc) { "
        "  MATCH (s:Section {document_id: doc}) OPTIONAL MATCH (s)-[r:HAS_SUBSECTION|NEXT]->() DELETE r "
        "} "
        "CALL (doc) { "
        "  MATCH (s:Section {document_id: doc}) WITH s ORDER BY s.order "
        "  WITH collect(s) AS ordered "
        "  UNWIND range(0, size(ordered) - 2) AS i "
        "  WITH ordered[i] AS a, ordered[i + 1] AS b MERGE (a)-[:NEXT]->(b) "
        "} "
        "CALL (doc) { "
        "  MATCH (c:Section {document_id: doc}) WHERE c.parent_id IS NOT NULL "
        "  MATCH (p:Section {id: c.parent_id}) MERGE (p)-[:HAS_SUBSECTION {order: c.order}]->(c) "
        "}",
        {"docs": document_ids},
    )


def _extraction_rows(
    batch: list[DocumentWrite], changed_ids: set[str]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Entities, mentions and relations that come from changed sections."""
    entities: dict[str, dict[str, Any]] = {}
    mentions: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []
    for item in batch:
        by_id = {e.id: e for e in item.extraction.entities}
        for m in item.extraction.mentions:
            if m.section_id not in changed_ids:
                continue
            entity = by_id[m.entity_id]
            entities[entity.id] = {
                "id": entity.id, "label": entity.label,
                "props": {"name": entity.name, "scope_section_id": entity.scope_section_id,
                          **dict(entity.props)},
            }
            mentions.append({"section": m.section_id, "entity": m.entity_id, "label": entity.label,
                             "start": m.start, "end": m.end, "confidence": m.confidence})
        for r in item.extraction.relations:
            if r.section_id in changed_ids and r.target_label != "Link":
                relations.append({"type": r.type, "source_label": r.source_label, "source": r.source_id,
                                  "target_label": r.target_label, "target": r.target_id,
                                  "section": r.section_id, "confidence": r.confidence, "order": r.order})
    return entities, mentions, relations


def _entities(entities: dict[str, dict[str, Any]], run_id: str) -> list[Statement]:
    return [(
        "UNWIND $rows AS row MERGE (e:" + label + " {id: row.id}) "
        "ON CREATE SET e.created_at = datetime() "
        "SET e += row.props, e.updated_at = datetime(), e.run_id = $run",
        {"rows": rows, "run": run_id},
    ) for label, rows in _by_label(entities.values())]


def _mentions(mentions: list[dict[str, Any]], run_id: str) -> list[Statement]:
    return [(
        "UNWIND $rows AS row MATCH (s:Section {id: row.section}) MATCH (e:" + label + " {id: row.entity}) "
        "MERGE (s)-[m:MENTIONS {start: row.start}]->(e) "
        "SET m.end = row.end, m.confidence = row.confidence, m.run_id = $run, m.created_at = datetime()",
        {"rows": rows, "run": run_id},
    ) for label, rows in _by_label(mentions)]


def _relations(relations: list[dict[str, Any]], run_id: str) -> list[Statement]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in relations:
        key = (_checked_relation(row["type"]), _checked_label(row["source_label"]),
               _checked_label(row["target_label"]))
        groups[key].append(row)
    statements: list[Statement] = []
    for (kind, source, target), rows in groups.items():
        statements.append((
            "UNWIND $rows AS row MATCH (a:" + _literal(source) + " {id: row.source}) "  # type: ignore[operator]
            "MATCH (b:" + _literal(target) + " {id: row.target}) "
            "MERGE (a)-[r:" + _literal(kind) + " {derived_from_section_id: row.section}]->(b) "
            "SET r.confidence = row.confidence, r.order = row.order, r.run_id = $run, "
            "r.created_at = datetime()",
            {"rows": rows, "run": run_id},
        ))
    return statements


def _checked_label(label: str) -> str:
    if label not in _LABELS:
        raise ValueError(f"unknown node label {label!r}")
    return label


def _checked_relation(kind: str) -> str:
    if kind not in _RELATIONS:
        raise ValueError(f"unknown relationship type {kind!r}")
    return kind


def _literal(name: str) -> LiteralString:
    """Labels and types were checked against our fixed sets above."""
    return name  # type: ignore[return-value]


def _by_label(rows: Iterable[dict[str, Any]]) -> Iterable[tuple[LiteralString, list[dict[str, Any]]]]:
    """Rows grouped by their (checked) node label: one statement per label."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_checked_label(row["label"])].append(row)
    for label, members in groups.items():
        yield _literal(label), members
