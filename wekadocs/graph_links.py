"""Links between pages, kept whatever order the pages are written in.

A section's outgoing links are stored durably as ``PageLink`` records (the
linking section, the node the edge starts from, the target document id and
the anchor), whether or not the target page exists yet. Edges are then
*resolved* from those records in the same transaction as every write:

- outgoing: the links of the sections being (re-)written;
- incoming: every record that points at a document being written; its old
  incoming link edges are dropped first, so an anchor that moved or vanished
  never leaves a stale edge.

Ray Data hands pages to the writer in any order and batch by batch, so a
link whose target is written later is resolved then. Deleting a page drops
its sections (and so the edges into them) but not the records that point at
it: adding the page back, or renaming another page to its path, restores the
edges. A link with an anchor resolves to the first section with that anchor,
or to the page itself when no section has it (the link still leads there).
"""

from __future__ import annotations

from typing import Any, LiteralString

from wekadocs.ids import bounded, document_id, stable_id
from wekadocs.model import Extraction, ParsedDocument

__all__ = ["LINK_EDGE_TYPES", "link_rows", "drop_link_records", "write_links"]

Statement = tuple[LiteralString, dict[str, Any]]
# REQUIRES here is a "Prerequisites" section's link: its parent section requires the target.
LINK_EDGE_TYPES: tuple[LiteralString, ...] = ("LINKS_TO", "REQUIRES")


def link_rows(parsed: ParsedDocument, extraction: Extraction, section_ids: set[str]) -> list[dict[str, Any]]:
    """``PageLink`` records for the links of the given sections of one document."""
    doc = parsed.document
    requires = {(r.section_id, r.target_id) for r in extraction.relations
                if r.type == "REQUIRES" and r.target_label == "Link"}
    owners = {r.section_id: r.source_id for r in extraction.relations if r.target_label == "Link"}
    rows: dict[str, dict[str, Any]] = {}
    for section in parsed.sections:
        if section.id not in section_ids:
            continue
        for link in section.links:
            if not link.path:
                continue
            target = document_id(doc.source, link.path, doc.version)
            edges = [("LINKS_TO", section.id)]
            if (section.id, f"{link.path}#{link.anchor}") in requires:
                edges.append(("REQUIRES", owners[section.id]))
            for kind, origin in edges:
                anchor = bounded(link.anchor)
                key = stable_id("page-link", kind, section.id, origin, target, anchor)
                rows[key] = {"id": key, "type": kind, "section_id": section.id, "origin_id": origin,
                             "target_doc": target, "target_path": link.path, "anchor": anchor}
    return list(rows.values())


def drop_link_records(section_ids: list[str]) -> Statement:
    """The records of sections about to be re-written or deleted (their edges
    carry ``derived_from_section_id`` and go with the other derived edges)."""
    return ("UNWIND $ids AS sid MATCH (p:PageLink {section_id: sid}) DELETE p", {"ids": section_ids})


def write_links(records: list[dict[str, Any]], changed_ids: list[str], document_ids: list[str],
                run_id: str) -> list[Statement]:
    """Store the new records, then (re-)resolve every link out of the changed
    sections and into the written documents."""
    statements: list[Statement] = [(
        "UNWIND $rows AS row MERGE (p:PageLink {id: row.id}) SET p += row, p.run_id = $run",
        {"rows": records, "run": run_id},
    ), (
        # incoming edges are rebuilt from the records: the targets' anchors may have changed
        "UNWIND $docs AS doc MATCH (d:Document {id: doc}) "
        "CALL (d) { "
        "  MATCH (d)<-[r:LINKS_TO|REQUIRES]-() WHERE r.anchor IS NOT NULL DELETE r "
        "} "
        "CALL (d) { "
        "  MATCH (d)-[:HAS_SECTION]->(:Section)<-[r:LINKS_TO|REQUIRES]-() WHERE r.anchor IS NOT NULL DELETE r "
        "}",
        {"docs": document_ids},
    )]
    for kind in LINK_EDGE_TYPES:
        statements.append((
            "CALL () { "
            "  UNWIND $sections AS sid MATCH (p:PageLink {section_id: sid}) RETURN p "
            "  UNION "
            "  UNWIND $docs AS doc MATCH (p:PageLink {target_doc: doc}) RETURN p "
            "} "
            "WITH p WHERE p.type = $kind "
            "MATCH (s:Section {id: p.origin_id}) "
            "MATCH (d:Document {id: p.target_doc}) "
            "OPTIONAL CALL (p) { "
            "  MATCH (t:Section {document_id: p.target_doc, anchor: p.anchor}) WHERE p.anchor <> '' "
            "  RETURN t ORDER BY t.order LIMIT 1 "
            "} "
            "WITH s, p, coalesce(t, d) AS target "
            "MERGE (s)-[r:" + kind + " {derived_from_section_id: p.section_id, anchor: p.anchor}]->(target) "
            "SET r.confidence = 1.0, r.run_id = $run, r.created_at = datetime()",
            {"sections": changed_ids, "docs": document_ids, "kind": kind, "run": run_id},
        ))
    return statements
