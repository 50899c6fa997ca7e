"""The candidate pool: keyword and vector seeds, fused, then grown over the graph.

Each stage only adds evidence to :class:`Candidate` records; ranking happens
later (``ranking.py``) so ``explain_ranking`` can show every feature.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Candidate", "Pool", "RRF_K", "VIA_NAMES"]

# Reciprocal-rank fusion constant: the usual 60 keeps one list's top hit from
# drowning the other's (Cormack et al., 2009).
RRF_K = 60
# Edge families of neighbours.cypher, and how much a hop over each says.
VIA_NAMES = {1: "parent/child section", 2: "link", 3: "shared command/error/setting"}
VIA_WEIGHT = {1: 1.0, 2: 0.8, 3: 0.5}


@dataclass
class Candidate:
    section_id: str
    bm25: float = 0.0
    keyword_rank: int | None = None
    cosine: float | None = None
    vector_rank: int | None = None
    rrf: float = 0.0
    graph: float = 0.0
    reached_via: set[str] = field(default_factory=set)
    details: dict[str, object] = field(default_factory=dict)
    entity_names: list[str] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


class Pool:
    """Candidates by section id, in the order they were first seen."""

    def __init__(self) -> None:
        self.by_id: dict[str, Candidate] = {}

    def get(self, section_id: str) -> Candidate:
        return self.by_id.setdefault(section_id, Candidate(section_id))

    def add_keyword(self, hits: Sequence[tuple[str, float]]) -> None:
        for rank, (section_id, score) in enumerate(hits):
            candidate = self.get(section_id)
            candidate.bm25, candidate.keyword_rank = score, rank
            candidate.rrf += 1.0 / (RRF_K + rank + 1)

    def add_vector(self, hits: Sequence[tuple[str, float]]) -> None:
        for rank, (section_id, score) in enumerate(hits):
            candidate = self.get(section_id)
            candidate.cosine, candidate.vector_rank = score, rank
            candidate.rrf += 1.0 / (RRF_K + rank + 1)

    def seeds(self, count: int) -> list[str]:
        """The best fused candidates, ties broken by id so runs agree."""
        ranked = sorted(self.by_id.values(), key=lambda c: (-c.rrf, c.section_id))
        return [c.section_id for c in ranked[:count]]

    def add_neighbours(self, rows: Iterable[dict[str, object]], seeds: list[str]) -> None:
        """A neighbour earns graph proximity from each seed that reaches it,
        more from better seeds and closer edge families."""
        seed_rank = {section_id: rank for rank, section_id in enumerate(seeds)}
        for row in rows:
            seed, section_id, via = str(row["seed"]), str(row["section_id"]), int(row["via"])  # type: ignore[call-overload]
            candidate = self.get(section_id)
            candidate.graph += VIA_WEIGHT[via] / (1 + seed_rank.get(seed, len(seeds)))
            candidate.reached_via.add(VIA_NAMES[via])

    def __len__(self) -> int:
        return len(self.by_id)

    def ids(self) -> list[str]:
        return list(self.by_id)
