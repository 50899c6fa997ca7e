"""Blending a candidate's evidence into one score, and the confidence of an answer.

Every feature lies in [0, 1] and the weights sum to 1, so they read as
shares. The weights are the blend ``wekadocs eval perf/eval/questions-4.4.jsonl
--folds 5`` fits on all 174 labelled questions (coordinate ascent from the
weights set earlier on the dev questions; ``cross_validation.py``). The
figures to quote for them are the held-out ones of that run, and the dev
questions, which they were not fitted on (README, "Retrieval quality").
Ties break on section id, so the same graph gives the same order.

There is no recency feature: a search covers one version per source, so a
version's rank was the same for every result, and when a page was last
ingested says when we read it, not how current its text is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from wekadocs.query.retrieval import Candidate

__all__ = ["WEIGHTS", "FEATURES", "blend", "order_key", "score_candidates", "confidence", "word_set"]

WEIGHTS: dict[str, float] = {"semantic": 0.538461, "keyword": 0.153846, "heading": 0.072875, "coverage": 0.153846,
                             "graph": 0.040486, "entity": 0.040486}
FEATURES = tuple(WEIGHTS)

_WORD = re.compile(r"[a-z0-9]+")


def word_set(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _share(terms: Sequence[str], words: frozenset[str]) -> float:
    if not terms:
        return 0.0
    return sum(1 for t in terms if t in words) / len(terms)


def blend(features: Sequence[float], weights: Sequence[float]) -> float:
    """The score of one candidate: its features (in FEATURES order) weighted.
    The engine and the offline re-blending of ``wekadocs eval --folds`` share
    it, so both give the very same floats, hence the same order."""
    return sum(weight * value for weight, value in zip(weights, features, strict=True))


def order_key(score: float, section_id: str) -> tuple[float, str]:
    """Best first; ties break on section id."""
    return (-round(score, 9), section_id)


def score_candidates(candidates: list[Candidate], terms: Sequence[str], query: str,
                     words: Callable[[str], frozenset[str]] = word_set,
                     weights: Mapping[str, float] = WEIGHTS) -> list[Candidate]:
    """Fill each candidate's features and score; return them best first.

    ``words`` splits a text into its word set; the engine passes a memoized
    one, since the same sections come back query after query."""
    shares = [weights[name] for name in FEATURES]
    top_bm25 = max((c.bm25 for c in candidates), default=0.0) or 1.0
    # Cosines of MiniLM bunch up (0.4-0.7 for most of a pool): spread them over
    # [0, 1] within the pool, or the semantic feature barely separates anything.
    cosines = [c.cosine for c in candidates if c.cosine is not None]
    low, high = (min(cosines), max(cosines)) if cosines else (0.0, 1.0)
    top_graph = max((c.graph for c in candidates), default=0.0) or 1.0
    lowered = query.lower()
    for c in candidates:
        trail = " ".join(str(t) for t in c.details.get("trail") or [])  # type: ignore[union-attr]
        heading = words(f"{c.details.get('heading', '')} {trail}")
        body = heading | words(str(c.details.get("text", "")))
        c.features = {
            "semantic": (c.cosine - low) / (high - low or 1.0) if c.cosine is not None else 0.0,
            "keyword": c.bm25 / top_bm25,
            "heading": _share(terms, heading),
            "coverage": _share(terms, body),
            "graph": c.graph / top_graph,
            "entity": 1.0 if any(len(n) >= 4 and n in lowered for n in c.entity_names) else 0.0,
        }
        c.score = blend([c.features[name] for name in FEATURES], shares)
    return sorted(candidates, key=lambda c: order_key(c.score, c.section_id))


def confidence(ranked: Sequence[Candidate]) -> float:
    """How far to trust the top answer: its own score, and whether keyword and
    vector retrieval agree on it (both ranked it in their top ten)."""
    if not ranked:
        return 0.0
    top = ranked[0]
    agree = (top.keyword_rank is not None and top.keyword_rank < 10
             and top.vector_rank is not None and top.vector_rank < 10)
    lead = top.score - ranked[1].score if len(ranked) > 1 else top.score
    value = 0.6 * top.score + 0.25 * (1.0 if agree else 0.0) + 0.15 * min(1.0, lead * 10)
    return round(max(0.0, min(1.0, value)), 3)
