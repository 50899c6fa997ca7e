"""K-fold cross-validation of retrieval: figures for questions nothing was tuned on.

``wekadocs eval QRELS --folds K`` splits the questions into K folds
(seeded, stratified by the question's ``kind``), and for each fold:

* the baselines (keyword, vector, RRF) have nothing to tune: their scores on
  the fold are their per-question scores averaged over it;
* the hybrid engine's blend weights (``ranking.WEIGHTS``: semantic, keyword,
  heading — the title boost —, coverage, graph, entity) are fitted on the
  other K-1 folds by coordinate ascent on mean nDCG@k (:func:`fit_blend`),
  and the fold is scored with the weights fitted.

Fitting is cheap because the blend is the last stage of a search: the pool
(keyword + vector seeds, one graph hop) and every candidate's features do not
depend on the weights. So each question is searched once, its pool kept
(:class:`Pooled`), and every blend tried re-ranks it offline with
``ranking.blend`` / ``ranking.order_key``, the engine's own arithmetic: the
shipped weights give exactly the engine's ranking. What re-blending cannot
reach without searching again (pool depths, RRF k, seeds, graph fan-out) is
not tuned here.
"""

from __future__ import annotations

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

__all__ = ["Pooled", "STEPS", "PASSES", "START", "assign_folds", "pool_of", "gather_pools", "rerank", "blend_scores",
           "fit_blend", "FoldChoice", "choose_per_fold", "SystemFolds", "CrossValidation", "cross_validate",
           "cross_validate_scores"]

# Coordinate ascent (Metzler and Croft, 2007): one weight at a time is moved
# by each of STEPS times its size (at least MIN_STEP) and kept only if the
# mean nDCG of the training questions rises; PASSES rounds over the weights.
# Its small steps from START are the point: the grid it replaced (each weight
# x0.5 or x2, 665 blends) jumped to whichever corner fit the training folds'
# noise best. On the 174 questions of perf/eval the grid's held-out nDCG was
# 0.009 below START's, coordinate ascent's is 0.005 above (README,
# "Retrieval quality").
STEPS = (-1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 2.0)
# Where every fit starts: the blend set by hand on the 30 dev questions before
# any labelled set existed. Not the shipped weights: those are this very fit
# run on all the labelled questions, so a fold starting there would start
# from its own labels.
START: dict[str, float] = {"semantic": 0.4, "keyword": 0.2, "heading": 0.094737, "coverage": 0.2,
                           "graph": 0.052632, "entity": 0.052632}
MIN_STEP = 0.05
PASSES = 3
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


def blend_scores(pools: Mapping[str, Sequence[Pooled]], questions: Sequence[Question],
                 weights: Mapping[str, float], k: int = 10) -> dict[str, Scores]:
    """Each question's scores when its pool is ranked by ``weights``."""
    return {q.id: score_ranking(rerank(pools[q.id], weights, k), q.relevant, k) for q in questions}


def fit_blend(pools: Mapping[str, Sequence[Pooled]], questions: Sequence[Question], *,
              start: Mapping[str, float] = START, k: int = 10) -> dict[str, float]:
    """The blend with the best mean nDCG@k over ``questions`` that coordinate
    ascent reaches from ``start``, normalised to sum 1 (the order depends on
    the ratios only). A move must raise the mean to be kept, so a blend no
    step improves comes back as ``start``."""
    if set(start) != set(FEATURES):  # a feature missing or one the engine does not have
        raise QueryError(f"a blend needs exactly the ranking features {', '.join(FEATURES)}; "
                         f"got {', '.join(sorted(start))}")
    weights = {name: float(start[name]) for name in FEATURES}

    def mean_ndcg(blend: Mapping[str, float]) -> float:
        return getattr(mean_scores(blend_scores(pools, questions, blend, k).values()), SELECTED_ON)

    best = mean_ndcg(weights)
    for _ in range(PASSES):
        moved = False
        for name in FEATURES:
            size = max(abs(weights[name]), MIN_STEP)
            for step in STEPS:
                trial = {**weights, name: max(0.0, weights[name] + step * size)}
                if not any(trial.values()):
                    continue
                value = mean_ndcg(trial)
                if value > best + 1e-9:
                    best, weights, moved = value, trial, True
        if not moved:
            break
    total = sum(weights.values())
    return {name: round(weight / total, 6) for name, weight in weights.items()}


@dataclass(frozen=True)
class FoldChoice:
    fold: int
    weights: dict[str, float]  # fitted on the other folds
    training: Scores  # their mean on the other folds
    held_out: Scores  # and on this fold


def choose_per_fold(pools: Mapping[str, Sequence[Pooled]], questions: Sequence[Question],
                    fold_of: Mapping[str, int], folds: int, *, start: Mapping[str, float] = START,
                    k: int = 10) -> list[FoldChoice]:
    """For each fold, the blend fitted on the questions of the other folds,
    and its scores there and on the fold. This fold's questions are never
    read before its blend is fitted."""
    choices = []
    for fold in range(folds):
        training = [q for q in questions if fold_of[q.id] != fold]
        held_out = [q for q in questions if fold_of[q.id] == fold]
        weights = fit_blend(pools, training, start=start, k=k)
        choices.append(FoldChoice(fold, weights, mean_scores(blend_scores(pools, training, weights, k).values()),
                                  mean_scores(blend_scores(pools, held_out, weights, k).values())))
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
    """``fitted``: the blend fitted on every question, what the engine ships
    when it is tuned on this set (``ranking.WEIGHTS`` is this, on
    ``perf/eval/questions-4.4.jsonl``). Its scores there are in-sample, and
    so are ``hybrid_shipped``'s once the engine ships it: the held-out
    figures are the ``hybrid`` system's."""

    folds: int
    seed: int
    stratified_by: str | None
    fold_of: dict[str, int]
    choices: list[FoldChoice]
    systems: dict[str, SystemFolds]
    start: dict[str, float]
    fitted: dict[str, float]
    # every system on all the questions, as plain `wekadocs eval` reports it
    full: dict[str, tuple[Scores, dict[str, Scores]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def rounded(s: Scores) -> dict[str, float]:
            return {"ndcg": round(s.ndcg, 4), "recall": round(s.recall, 4), "mrr": round(s.mrr, 4)}
        sizes = [sum(1 for f in self.fold_of.values() if f == fold) for fold in range(self.folds)]
        return {
            "k": self.folds, "seed": self.seed, "stratified_by": self.stratified_by, "sizes": sizes,
            "tuning": {"method": "coordinate ascent", "start": self.start, "steps": list(STEPS),
                       "min_step": MIN_STEP, "passes": PASSES},
            "selected_on": SELECTED_ON, "tuned": "hybrid", "shipped": "hybrid_shipped",
            "systems": {name: {"per_fold": [rounded(s) for s in sf.per_fold], "mean": rounded(sf.mean()),
                               "spread": rounded(sf.spread())} for name, sf in self.systems.items()},
            "parameters": [{"fold": c.fold, "weights": c.weights, "training": rounded(c.training)}
                           for c in self.choices],
            "fitted_on_all": self.fitted,
        }


def fold_means(per_question: Mapping[str, Scores], fold_of: Mapping[str, int], folds: int) -> SystemFolds:
    return SystemFolds([mean_scores(s for qid, s in per_question.items() if fold_of[qid] == fold)
                        for fold in range(folds)])


def cross_validate(engine: QueryEngine, questions: Sequence[Question], folds: int, *, version: str | None = None,
                   k: int = 10, seed: int = 0) -> CrossValidation:
    """Every system per fold; the hybrid blend fitted on the other folds.

    Each question is searched once per system: the baselines through
    ``evaluate_engine``, the hybrid engine once, its pool re-blended by every
    blend the fitting tries. ``full`` holds what plain ``wekadocs eval``
    reports (the hybrid at the shipped weights: the engine's own ranking)."""
    fold_of = assign_folds(questions, folds, seed)
    full = evaluate_engine(engine, questions, version=version, k=k,
                           systems=[name for name in SYSTEMS if name != "hybrid"])
    pools = gather_pools(engine, questions, version=version, k=k)
    return cross_validate_scores(questions, fold_of, folds, seed, pools, full, k=k)


def cross_validate_scores(questions: Sequence[Question], fold_of: dict[str, int], folds: int, seed: int,
                          pools: Mapping[str, Sequence[Pooled]],
                          baselines: Mapping[str, tuple[Scores, dict[str, Scores]]], *,
                          start: Mapping[str, float] = START, shipped_weights: Mapping[str, float] = WEIGHTS,
                          k: int = 10) -> CrossValidation:
    """The part of :func:`cross_validate` after the searches: plain data in,
    plain data out. ``start``: where every fit begins; ``shipped_weights``:
    the blend ``hybrid_shipped`` is scored with (the engine's)."""
    choices = choose_per_fold(pools, questions, fold_of, folds, start=start, k=k)
    tuned = SystemFolds([c.held_out for c in choices])
    shipped = blend_scores(pools, questions, shipped_weights, k)
    systems = {"hybrid": tuned, "hybrid_shipped": fold_means(shipped, fold_of, folds)}
    systems |= {name: fold_means(per_question, fold_of, folds) for name, (_, per_question) in baselines.items()}
    full = {"hybrid": (mean_scores(shipped.values()), shipped), **baselines}
    stratified = "kind" if any(q.kind for q in questions) else None
    fitted = fit_blend(pools, questions, start=start, k=k)
    return CrossValidation(folds, seed, stratified, fold_of, choices, systems, dict(start), fitted, full)
