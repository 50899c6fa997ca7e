"""The graph's constraints, indexes and ``SchemaVersion`` singleton.

Every statement uses ``IF NOT EXISTS`` so ``apply`` can run at every start:
a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import LiteralString

from wekadocs.graph_store import GraphStore
from wekadocs.settings import SCHEMA_VERSION

__all__ = [
    "ENTITY_LABELS",
    "NODE_LABELS",
    "DERIVED_EDGE_TYPES",
    "SCOPED_LABELS",
    "FULLTEXT_INDEX",
    "ENTITY_INDEX",
    "SchemaStatus",
    "apply_schema",
    "schema_status",
]

# Domain entities extracted from sections; each is keyed by a deterministic id.
ENTITY_LABELS: tuple[LiteralString, ...] = (
    "Command",
    "Configuration",
    "Procedure",
    "Error",
    "Concept",
    "Example",
    "Step",
    "Parameter",
    "Component",
)
NODE_LABELS: tuple[LiteralString, ...] = ("Document", "Section", *ENTITY_LABELS)
# PageLink: a link as written (section -> target page), kept so that links
# resolve whatever order pages are written in (see ``graph_links``).
_UNIQUE_ID_LABELS: tuple[LiteralString, ...] = (*NODE_LABELS, "SchemaVersion", "PageLink")

# Edges derived from a section's text; each carries derived_from_section_id,
# indexed so re-writing a section can drop exactly the edges it produced.
# Only what extraction and the writer actually produce: the 4.4 docs state
# "X depends on Y" / "X affects Y" about a handful of quantities, never
# between entities, so no DEPENDS_ON, AFFECTS or EQUIVALENT_TO is promised.
DERIVED_EDGE_TYPES: tuple[LiteralString, ...] = (
    "CONTAINS_STEP",
    "HAS_PARAMETER",
    "EXECUTES",
    "RESOLVES",
    "REQUIRES",
    "RELATED_TO",
    "LINKS_TO",
)
# Entities that belong to one section and are deleted with it.
SCOPED_LABELS: tuple[LiteralString, ...] = ("Procedure", "Step", "Example")

FULLTEXT_INDEX = "section_text"
# Lucene's English analyzer stems ("tiers" finds "tiered") and drops stop words;
# on the dev questions it lifted keyword nDCG@10 from 0.595 to 0.641 over the
# default standard-no-stop-words analyzer.
FULLTEXT_ANALYZER = "english"
# Entity names, so a tool can find "snapshot create" or an alert name without a label scan.
ENTITY_INDEX = "entity_name"
_NAMED_LABELS: tuple[LiteralString, ...] = (
    "Command", "Configuration", "Error", "Concept", "Parameter", "Component", "Procedure",
)

# (index name, label, property) for the lookups queries and ingestion make.
_PROPERTY_INDEXES: tuple[tuple[LiteralString, LiteralString, LiteralString], ...] = (
    ("document_source_uri", "Document", "source_uri"),
    ("document_version", "Document", "version"),
    ("section_document_id", "Section", "document_id"),
    ("section_checksum", "Section", "checksum"),
    ("section_anchor", "Section", "anchor"),
    *((f"{label.lower()}_name", label, "name") for label in ENTITY_LABELS),
    *((f"{label.lower()}_scope", label, "scope_section_id") for label in SCOPED_LABELS),
    ("pagelink_section", "PageLink", "section_id"),
    ("pagelink_target", "PageLink", "target_doc"),
)


def _statements() -> list[LiteralString]:
    statements: list[LiteralString] = []
    for label in _UNIQUE_ID_LABELS:
        statements.append(
            "CREATE CONSTRAINT " + label.lower() + "_id IF NOT EXISTS "
            "FOR (n:" + label + ") REQUIRE n.id IS UNIQUE"
        )
    for name, label, prop in _PROPERTY_INDEXES:
        statements.append(
            "CREATE INDEX " + name + " IF NOT EXISTS FOR (n:" + label + ") ON (n." + prop + ")"
        )
    for edge in DERIVED_EDGE_TYPES:
        statements.append(
            "CREATE INDEX " + edge.lower() + "_derived IF NOT EXISTS "
            "FOR ()-[r:" + edge + "]-() ON (r.derived_from_section_id)"
        )
    statements.append(
        "CREATE FULLTEXT INDEX " + FULLTEXT_INDEX + " IF NOT EXISTS "
        "FOR (n:Section) ON EACH [n.title, n.text] "
        "OPTIONS {indexConfig: {`fulltext.analyzer`: '" + FULLTEXT_ANALYZER + "'}}"
    )
    statements.append(
        "CREATE FULLTEXT INDEX " + ENTITY_INDEX + " IF NOT EXISTS "
        "FOR (n:" + "|".join(_NAMED_LABELS) + ") ON EACH [n.name]"
    )
    return statements


@dataclass(frozen=True)
class SchemaStatus:
    """What the database holds now."""

    schema_version: str | None
    constraints: list[dict[str, object]] = field(default_factory=list)
    indexes: list[dict[str, object]] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Names this code expects that the database lacks."""
        present = {str(c["name"]) for c in self.constraints} | {str(i["name"]) for i in self.indexes}
        expected = [f"{label.lower()}_id" for label in _UNIQUE_ID_LABELS]
        expected += [name for name, _, _ in _PROPERTY_INDEXES] + [FULLTEXT_INDEX, ENTITY_INDEX]
        expected += [f"{edge.lower()}_derived" for edge in DERIVED_EDGE_TYPES]
        return [name for name in expected if name not in present]


def apply_schema(graph: GraphStore) -> SchemaStatus:
    """Create what is missing, wait for indexes to come online, record the version."""
    _drop_stale_fulltext(graph)
    for statement in _statements():
        graph.write(statement)
    graph.write("CALL db.awaitIndexes(300)")
    _migrate_embedding_marks(graph)
    graph.write(
        "MERGE (v:SchemaVersion {id: 'schema'}) "
        "ON CREATE SET v.version = $version, v.created_at = datetime() "
        "WITH v WHERE v.version <> $version "
        "SET v.version = $version, v.migrated_at = datetime()",
        version=SCHEMA_VERSION,
    )
    return schema_status(graph)


def _migrate_embedding_marks(graph: GraphStore) -> None:
    """Sections written before re-embedding existed carry one confirmed
    version (``embedding_version``); now they carry a list (``embedded_in``)."""
    while graph.write(
        "MATCH (s:Section) WHERE s.embedding_version IS NOT NULL WITH s LIMIT 10000 "
        "SET s.embedded_in = [v IN coalesce(s.embedded_in, []) WHERE v <> s.embedding_version] "
        "+ [s.embedding_version] REMOVE s.embedding_version RETURN count(s) AS n"
    )[0]["n"]:
        pass


def _drop_stale_fulltext(graph: GraphStore) -> None:
    """An index built with another analyzer is dropped, so the create below
    rebuilds it (Neo4j keeps one index per label and properties)."""
    rows = graph.read(
        "SHOW INDEXES YIELD name, options WHERE name = $name RETURN options", name=FULLTEXT_INDEX
    )
    if rows and rows[0]["options"]["indexConfig"].get("fulltext.analyzer") != FULLTEXT_ANALYZER:
        graph.write("DROP INDEX " + FULLTEXT_INDEX + " IF EXISTS")


def schema_status(graph: GraphStore) -> SchemaStatus:
    constraints = graph.read(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "
        "RETURN name, type, labelsOrTypes AS labels, properties ORDER BY name"
    )
    indexes = graph.read(
        "SHOW INDEXES YIELD name, type, labelsOrTypes, properties, state, owningConstraint "
        "WHERE owningConstraint IS NULL AND type <> 'LOOKUP' "
        "RETURN name, type, labelsOrTypes AS labels, properties, state ORDER BY name"
    )
    version = graph.read("MATCH (v:SchemaVersion {id: 'schema'}) RETURN v.version AS version")
    return SchemaStatus(
        schema_version=str(version[0]["version"]) if version else None,
        constraints=constraints,
        indexes=indexes,
    )
