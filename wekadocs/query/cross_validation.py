"""K-fold cross-validation of retrieval: figures for questions nothing was tuned on.

``wekadocs eval QRELS --folds K`` splits the questions into K folds
(seeded, stratified by the question's ``kind``), and for each fold:

* the baselines (keyword, vector, RRF) have nothing to tune: their scores on
  the fold are their per-question scores averaged over it;
* the hybrid engine's blend weights (``ranking.WEIGHTS``: semantic, keyword,
  heading — the title boost —, coverage, graph, entity) are chosen on the
  other K-1 folds, from a small grid, by mean nDCG@k, and the fold is scored
  with the weights chosen.

The grid is cheap because the blend is the last stage of a search: the pool
(keyword + vector seeds, one graph hop) and every candidate's features do not
depend on the weights. So each question is searched once, its pool kept
(:class:`Pooled`), and every grid point re-blends it offline with
``ranking.blend`` / ``ranking.order_key``, the engine's own arithmetic: the
shipped weights give exactly the engine's ranking. What the grid cannot
reach without searching again (pool depths, RRF k, seeds, graph fan-out) is
not tuned here.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wekadocs.errors import QueryError
from wekadocs.query.engine import QueryEngine, SearchResult, evidence_of, heading_key
from wekadocs.query.evaluation import (SYSTEMS, Question, Scores, evaluate_engine, mean_scores, normalize_heading,
                                       score_ranking)
from wekadocs.query.ranking import FEATURES, WEIGHTS, blend, order_key

__all__ = ["Pooled", "DEFAULT_GRID", "weight_grid", "assign_folds", "pool_of", "gather_pools", "rerank",
           "grid_scores", "FoldChoice", "choose_per_fold", "SystemFolds", "CrossValidation", "cross_validate",
           "cross_validate_scores"]

# Multipliers of each shipped weight (3^6 = 729 blends, 0 drops a signal).
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "semantic": (1.0, 0.5, 2.0),
    "keyword": (1.0, 0.5, 2.0),
    "heading": (1.0, 0.0, 2.0),
    "coverage": (1.0, 0.5, 2.0),
    "graph": (1.0, 0.0, 2.0),
    "entity": (1.0, 0.0, 2.0),
}
SELECTED_ON = "ndcg"


@dataclass(frozen=True)
class Pooled:
    """One candidate of a search as the blend sees it.

    Args:
        section_id: breaks ties, as in the engine.
        features: in ``FEATURES`` order.
        part_of: what the parts of a split section share (``engine.heading_key``).
        result: (path, heading) as the evaluator matches it.
    """

    section_id: str
    features: tuple[float, ...]
    part_of: tuple[str, str, str]
    result: tuple[str, str]


def weight_grid(grid: Mapping[str, Sequence[float]] = DEFAULT_GRID,
                base: Mapping[str, float] = WEIGHTS) -> list[dict[str, float]]:
    """Blends to try: each of ``base``'s weights times one of its multipliers,
    normalised to sum 1 (the order only depends on the ratios), duplicates
    dropped. ``base`` itself always comes first, unchanged (so it ranks
    exactly as the engine does), then the blends that change fewer weights,
    so ties go to the blend closest to what ships."""
    unknown = set(grid) - set(FEATURES)
    if unknown:
        raise QueryError(f"no such ranking feature: {', '.join(sorted(unknown))}")
    shipped = tuple(base[name] for name in FEATURES)
    blends: dict[tuple[float, ...], dict[str, float]] = {shipped: dict(zip(FEATURES, shipped, strict=True))}
    choices = [tuple(grid.get(name, (1.0,))) for name in FEATURES]
    for multipliers in sorted(itertools.product(*choices), key=lambda m: sum(1 for x in m if x != 1.0)):
        if all(m == 1.0 for m in multipliers):
            continue
        raw = [weight * m for weight, m in zip(shipped, multipliers, strict=True)]
        total = sum(raw)
        if total <= 0:
            continue
        weights = tuple(round(w / total, 6) for w in raw)
        blends.setdefault(weights, dict(zip(FEATURES, weights, strict=True)))
    return list(blends.values())


def assign_folds(questions: Sequence[Question], folds: int, seed: int = 0) -> dict[str, int]:
    """Each question's fold, 0..folds-1. Deterministic for a seed and
    independent of the file's order; questions of each ``kind`` are spread
    evenly over the folds, and fold sizes differ by one at most."""
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise QueryError(f"question ids must be unique for --folds; repeated: {', '.join(twice[:5])}")
    if not 2 <= folds <= len(ids):
        raise QueryError(f"--folds must be from 2 to the number of questions ({len(ids)}), got {folds}")
    rng = random.Random(seed)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for q in questions:
        by_kind[q.kind].append(q.id)
    fold_of: dict[str, int] = {}
    dealt = 0
    for kind in sorted(by_kind):
        members = sorted(by_kind[kind])
        rng.shuffle(members)
        for qid in members:  # dealing on where the last kind stopped keeps fold sizes even
            fold_of[qid] = dealt % folds
            dealt += 1
    return fold_of


def pool_of(found: SearchResult) -> list[Pooled]:
    """A hybrid search's pool, kept for re-blending."""
    pooled = []
    for c in found.candidates:
        e = evidence_of(c, [])
        pooled.append(Pooled(c.section_id, tuple(c.features[name] for name in FEATURES), heading_key(c),
                             (e.path, e.heading)))
    return pooled


def gather_pools(engine: QueryEngine, questions: Sequence[Question], *, version: str | None = None,
                 k: int = 10) -> dict[str, list[Pooled]]:
    """Search each question once with the hybrid engine and keep its pool."""
    return {q.id: pool_of(engine.search(q.query, version=version, top_k=k, **SYSTEMS["hybrid"]["search"]))
            for q in questions}


def rerank(pool: Sequence[Pooled], weights: Mapping[str, float], k: int = 10) -> list[tuple[str, str]]:
    """The engine's ranking of ``pool`` under ``weights``: blended, ordered,
    one part per split section; cut once ``k`` distinct results are in."""
    shares = [weights[name] for name in FEATURES]
    ordered = sorted(pool, key=lambda p: order_key(blend(p.features, shares), p.section_id))
    parts: set[tuple[str, str, str]] = set()
    distinct: set[tuple[str, str]] = set()
    out = []
    for p in ordered:
        if p.part_of in parts:
            continue
        parts.add(p.part_of)
        out.append(p.result)
        distinct.add((p.result[0], normalize_heading(p.result[1])))
        if len(distinct) == k:
            break
    return out


def grid_scores(pools: Mapping[str, Sequence[Pooled]], questions: Sequence[Question],
                grid: Sequence[Mapping[str, float]], k: int = 10) -> list[dict[str, Scores]]:
    """Every grid point's per-question scores."""
    return [{q.id: score_ranking(rerank(pools[q.id], weights, k), q.relevant, k) for q in questions}
            for weights in grid]


@dataclass(frozen=True)
class FoldChoice:
    fold: int
    point: int  # index into the grid
    training: Scores  # the chosen blend's mean on the other folds
    held_out: Scores  # and on this fold


def choose_per_fold(per_point: Sequence[Mapping[str, Scores]], fold_of: Mapping[str, int],
                    folds: int) -> list[FoldChoice]:
    """For each fold, the grid point with the best mean nDCG over the
    questions of the other folds (the first such point on ties), and its
    scores there and on the fold. This fold's questions are never read
    before its point is chosen."""
    choices = []
    for fold in range(folds):
        training = [qid for qid, f in fold_of.items() if f != fold]
        held_out = [qid for qid, f in fold_of.items() if f == fold]
        means = [mean_scores(scores[qid] for qid in training) for scores in per_point]
        best = max(range(len(per_point)), key=lambda i: (getattr(means[i], SELECTED_ON), -i))
        choices.append(FoldChoice(fold, best, means[best], mean_scores(per_point[best][qid] for qid in held_out)))
    return choices


@dataclass
class SystemFolds:
    per_fold: list[Scores]

    def mean(self) -> Scores:
        return mean_scores(self.per_fold)

    def spread(self) -> Scores:
        """Standard deviation over the folds (sample, n-1)."""
        def sd(values: list[float]) -> float:
            return statistics.stdev(values) if len(values) > 1 else 0.0
        return Scores(ndcg=sd([s.ndcg for s in self.per_fold]), recall=sd([s.recall for s in self.per_fold]),
                      mrr=sd([s.mrr for s in self.per_fold]))


@dataclass
class CrossValidation:
    folds: int
    seed: int
    stratified_by: str | None
    fold_of: dict[str, int]
    grid: list[dict[str, float]]
    choices: list[FoldChoice]
    systems: dict[str, SystemFolds]
    # every system on all the questions, as plain `wekadocs eval` reports it
    full: dict[str, tuple[Scores, dict[str, Scores]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def rounded(s: Scores) -> dict[str, float]:
            return {"ndcg": round(s.ndcg, 4), "recall": round(s.recall, 4), "mrr": round(s.mrr, 4)}
        sizes = [sum(1 for f in self.fold_of.values() if f == fold) for fold in range(self.folds)]
        return {
            "k": self.folds, "seed": self.seed, "stratified_by": self.stratified_by, "sizes": sizes,
            "grid_points": len(self.grid), "selected_on": SELECTED_ON,
            "tuned": "hybrid", "shipped": "hybrid_shipped",
            "systems": {name: {"per_fold": [rounded(s) for s in sf.per_fold], "mean": rounded(sf.mean()),
                               "spread": rounded(sf.spread())} for name, sf in self.systems.items()},
            "parameters": [{"fold": c.fold, "weights": self.grid[c.point], "training": rounded(c.training)}
                           for c in self.choices],
        }


def fold_means(per_question: Mapping[str, Scores], fold_of: Mapping[str, int], folds: int) -> SystemFolds:
    return SystemFolds([mean_scores(s for qid, s in per_question.items() if fold_of[qid] == fold)
                        for fold in range(folds)])


def cross_validate(engine: QueryEngine, questions: Sequence[Question], folds: int, *, version: str | None = None,
                   k: int = 10, seed: int = 0,
                   grid: Mapping[str, Sequence[float]] = DEFAULT_GRID) -> CrossValidation:
    """Every system per fold; the hybrid blend tuned on the other folds.

    Each question is searched once per system: the baselines through
    ``evaluate_engine``, the hybrid engine once, its pool re-blended per grid
    point. ``full`` holds what plain ``wekadocs eval`` reports (the hybrid at
    the shipped weights is the first grid point, the engine's own ranking)."""
    fold_of = assign_folds(questions, folds, seed)
    blends = weight_grid(grid)
    full = evaluate_engine(engine, questions, version=version, k=k,
                           systems=[name for name in SYSTEMS if name != "hybrid"])
    per_point = grid_scores(gather_pools(engine, questions, version=version, k=k), questions, blends, k)
    return cross_validate_scores(questions, fold_of, folds, seed, blends, per_point, full)


def cross_validate_scores(questions: Sequence[Question], fold_of: dict[str, int], folds: int, seed: int,
                          blends: list[dict[str, float]], per_point: Sequence[Mapping[str, Scores]],
                          baselines: Mapping[str, tuple[Scores, dict[str, Scores]]]) -> CrossValidation:
    """The part of :func:`cross_validate` after the searches: plain data in, plain data out."""
    choices = choose_per_fold(per_point, fold_of, folds)
    tuned = SystemFolds([c.held_out for c in choices])
    shipped = dict(per_point[0])
    systems = {"hybrid": tuned, "hybrid_shipped": fold_means(shipped, fold_of, folds)}
    systems |= {name: fold_means(per_question, fold_of, folds) for name, (_, per_question) in baselines.items()}
    full = {"hybrid": (mean_scores(shipped.values()), shipped), **baselines}
    stratified = "kind" if any(q.kind for q in questions) else None
    return CrossValidation(folds, seed, stratified, fold_of, blends, choices, systems, full)
