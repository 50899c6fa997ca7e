"""The records that flow from parsers to the stores.

Frozen dataclasses: they cross process boundaries (Ray pickles them) and are
compared for change detection, so they must be plain, hashable-free values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "embed_text",
    "Link",
    "Document",
    "Section",
    "ParsedDocument",
    "Entity",
    "Mention",
    "Relation",
    "Extraction",
]


def embed_text(trail: tuple[str, ...] | list[str], text: str) -> str:
    """What the embedding model sees (and what a section's checksum covers):
    the heading trail, then the text."""
    return " > ".join(trail) + "\n\n" + text


@dataclass(frozen=True)
class Link:
    """A link out of a section. ``path`` is relative to the ingested root."""

    text: str
    path: str  # target page ("" for a link within the same page)
    anchor: str  # "" when the link has no fragment
    url: str  # as written (for external links)

    @property
    def external(self) -> bool:
        return not self.path and not self.anchor


@dataclass(frozen=True)
class Document:
    id: str
    source: str
    path: str  # relative to the ingested root, '/'-separated
    version: str
    title: str
    description: str
    source_type: str  # markdown | html
    source_uri: str
    checksum: str  # of the file's bytes


@dataclass(frozen=True)
class Section:
    id: str
    document_id: str
    level: int  # heading level 1-6; 0 for text before the first heading
    title: str
    anchor: str
    order: int  # position in the document, from 0
    parent_id: str | None
    trail: tuple[str, ...]  # titles from the top heading down to this one
    text: str  # Markdown-ish: code fences, tables as pipe rows, list markers kept
    tokens: int
    checksum: str  # of embed_text(); equal checksums share one embedding
    part: int = 0  # >0 when a long section was split
    line: int = 0  # 1-based line of the heading in the source file; 0 if unknown
    links: tuple[Link, ...] = ()

    def embed_text(self) -> str:
        return embed_text(self.trail, self.text)


@dataclass(frozen=True)
class ParsedDocument:
    document: Document
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Entity:
    id: str
    label: str  # one of wekadocs.graph_schema.ENTITY_LABELS
    name: str
    # Entities scoped to one section (Procedure, Step, Example) die with it.
    scope_section_id: str | None = None
    props: tuple[tuple[str, str | int], ...] = ()


@dataclass(frozen=True)
class Mention:
    section_id: str
    entity_id: str
    start: int  # character span in Section.text
    end: int
    confidence: float


@dataclass(frozen=True)
class Relation:
    """A derived edge; either end may be an entity or a Section (by label)."""

    type: str  # CONTAINS_STEP, HAS_PARAMETER, EXECUTES, RESOLVES, REQUIRES, RELATED_TO
    source_label: str
    source_id: str
    target_label: str
    target_id: str
    section_id: str  # derived_from_section_id
    confidence: float
    order: int | None = None


@dataclass(frozen=True)
class Extraction:
    entities: tuple[Entity, ...] = ()
    mentions: tuple[Mention, ...] = ()
    relations: tuple[Relation, ...] = ()
    warnings: tuple[str, ...] = field(default=())
