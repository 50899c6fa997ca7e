"""Retrieval quality against graded judgements: nDCG@k, Recall@k, MRR@k.

A qrels file has one question per line, with the relevant sections named by
page path and heading text (as a person reads them, not by our ids), so a
result counts when its path matches and its heading matches after both are
normalised: Markdown emphasis, links, HTML tags and escapes stripped,
whitespace collapsed, case folded, HTML entities decoded.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from wekadocs.errors import QueryError
from wekadocs.query.engine import QueryEngine, SearchResult, evidence_of, one_per_heading

__all__ = ["Judgement", "Question", "load_qrels", "normalize_heading", "score_ranking", "evaluate", "Scores",
           "mean_scores", "SYSTEMS", "BASELINES", "system_ranking", "evaluate_engine"]


class Judgement(BaseModel):
    path: str
    heading: str
    grade: int = Field(ge=0)


class Question(BaseModel):
    id: str
    query: str
    relevant: list[Judgement]
    kind: str = ""


_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"<[^>]+>")
_ESCAPE = re.compile(r"\\(.)")
_EMPHASIS = re.compile(r"[*_`~]+")


def normalize_heading(text: str) -> str:
    text = html.unescape(text)  # GitBook writes a trailing space as &#x20;
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _ESCAPE.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    return " ".join(text.split()).casefold()


def load_qrels(path: Path) -> list[Question]:
    """Questions from a JSON-lines file; a bad line is an error naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QueryError(f"cannot read qrels {path}: {exc}") from exc
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            questions.append(Question.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise QueryError(f"{path}:{number}: not a qrels line: {exc}") from exc
    if not questions:
        raise QueryError(f"{path} holds no questions")
    return questions


@dataclass(frozen=True)
class Scores:
    ndcg: float
    recall: float
    mrr: float


def score_ranking(results: Sequence[tuple[str, str]], relevant: Sequence[Judgement], k: int = 10) -> Scores:
    """Scores of one ranked list of (path, heading) against the judgements.

    Gains are the grades (linear, as trec_eval's ndcg); a section listed twice
    counts once, at its first place.
    """
    grades = {(j.path, normalize_heading(j.heading)): j.grade for j in relevant if j.grade > 0}
    seen: dict[tuple[str, str], None] = {}
    for path, heading in results:
        seen.setdefault((path, normalize_heading(heading)))
        if len(seen) == k:
            break
    top = list(seen)
    dcg = sum(grades.get(key, 0) / math.log2(rank + 2) for rank, key in enumerate(top))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    found = sum(1 for key in top if key in grades)
    first = next((rank for rank, key in enumerate(top) if key in grades), None)
    return Scores(
        ndcg=dcg / idcg if idcg else 0.0,
        recall=found / len(grades) if grades else 0.0,
        mrr=1.0 / (first + 1) if first is not None else 0.0,
    )


def evaluate(questions: Iterable[Question], rank: Callable[[str], Sequence[tuple[str, str]]],
             k: int = 10) -> tuple[Scores, dict[str, Scores]]:
    """Mean scores of a ranking function over the questions, and each question's."""
    per_question = {q.id: score_ranking(rank(q.query), q.relevant, k) for q in questions}
    return mean_scores(per_question.values()), per_question


def mean_scores(scores: Iterable[Scores]) -> Scores:
    held = list(scores)
    n = len(held) or 1
    return Scores(ndcg=sum(s.ndcg for s in held) / n, recall=sum(s.recall for s in held) / n,
                  mrr=sum(s.mrr for s in held) / n)


# How each system is searched and how it orders what it found: the hybrid
# engine by its blended score; each baseline by its one raw signal, with no
# graph stage. A baseline orders the whole pool (every part of a split
# section) by its own signal and only then keeps each section's best part, as
# the engine does by its blend: ordering the engine's answer instead would let
# the blend pick which part of a section a baseline shows.
SYSTEMS: dict[str, dict[str, Any]] = {
    "hybrid": {"search": {}, "order": None},
    "rrf": {"search": {"use_graph": False}, "order": lambda c: (-c.rrf, c.section_id)},
    "keyword": {"search": {"use_vector": False, "use_graph": False},
                "order": lambda c: (c.keyword_rank if c.keyword_rank is not None else 10**9, c.section_id)},
    "vector": {"search": {"use_keyword": False, "use_graph": False},
               "order": lambda c: (c.vector_rank if c.vector_rank is not None else 10**9, c.section_id)},
}
BASELINES = ("keyword", "vector")


def system_ranking(name: str, found: SearchResult) -> list[tuple[str, str]]:
    """The (path, heading) list system ``name`` answers with, from a search
    run with that system's switches (``SYSTEMS[name]["search"]``)."""
    order = SYSTEMS[name]["order"]
    ranked = one_per_heading(sorted(found.candidates, key=order)) if order else found.ranked
    return [(e.path, e.heading) for e in (evidence_of(c, []) for c in ranked)]


def evaluate_engine(engine: QueryEngine, questions: Sequence[Question], *, version: str | None = None,
                    k: int = 10, systems: Sequence[str] = tuple(SYSTEMS)) -> dict[str, tuple[Scores, dict[str, Scores]]]:
    """Each system's mean and per-question scores over the same questions."""
    results = {}
    for name in systems:
        def rank(query: str, name: str = name) -> list[tuple[str, str]]:
            return system_ranking(name, engine.search(query, version=version, top_k=k, **SYSTEMS[name]["search"]))

        results[name] = evaluate(questions, rank, k)
    return results
