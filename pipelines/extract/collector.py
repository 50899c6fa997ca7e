"""Accumulates one document's entities, mentions and relations, without duplicates."""

from __future__ import annotations

from wekadocs.ids import bounded, stable_id
from wekadocs.model import Entity, Extraction, Mention, Relation

__all__ = ["Collector", "entity_id"]

# Labels whose entities are shared across pages and versions, keyed by name.
# Procedure, Step and Example belong to the section they were found in.
_CASE_INSENSITIVE = {"Concept", "Component"}


def entity_id(label: str, *key: object) -> str:
    parts = [str(k).casefold() if label in _CASE_INSENSITIVE else k for k in key]
    return stable_id("entity", label, *parts)


class Collector:
    def __init__(self) -> None:
        self._entities: dict[str, Entity] = {}
        self._mentions: dict[tuple[str, str, int], Mention] = {}
        self._relations: dict[tuple[str, str, str, str], Relation] = {}

    def entity(
        self,
        label: str,
        name: str,
        *key: object,
        scope: str | None = None,
        **props: str | int,
    ) -> Entity:
        """Register an entity; ``key`` defaults to its name (the whole name:
        the stored one is bounded for the name index)."""
        ident = entity_id(label, *(key or (name,)))
        if ident not in self._entities:
            self._entities[ident] = Entity(
                id=ident, label=label, name=bounded(name), scope_section_id=scope,
                props=tuple(sorted(props.items())),
            )
        return self._entities[ident]

    def mention(self, section_id: str, entity: Entity, start: int, end: int, confidence: float) -> None:
        key = (section_id, entity.id, start)
        if key not in self._mentions:
            self._mentions[key] = Mention(section_id, entity.id, start, end, confidence)

    def relate(
        self,
        kind: str,
        source: tuple[str, str],
        target: tuple[str, str],
        section_id: str,
        confidence: float,
        order: int | None = None,
    ) -> None:
        """``source``/``target`` are (label, id); one edge per pair and section."""
        key = (kind, source[1], target[1], section_id)
        if key not in self._relations and source[1] != target[1]:
            self._relations[key] = Relation(
                kind, source[0], source[1], target[0], target[1], section_id, confidence, order
            )

    def result(self) -> Extraction:
        return Extraction(
            entities=tuple(self._entities.values()),
            mentions=tuple(self._mentions.values()),
            relations=tuple(self._relations.values()),
        )
