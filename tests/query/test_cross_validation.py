"""Cross-validation (`wekadocs eval --folds`): fold assignment, fitting the
blend without the held-out fold, and re-blending that ranks as the engine does."""

from __future__ import annotations

import pytest

from tests.conftest import SLICE_VERSION
from wekadocs.errors import QueryError
from wekadocs.query.cross_validation import (START, Pooled, assign_folds, blend_scores, choose_per_fold,
                                             cross_validate_scores, fit_blend, pool_of, rerank)
from wekadocs.query.evaluation import Judgement, Question, Scores, mean_scores, system_ranking
from wekadocs.query.ranking import FEATURES, WEIGHTS
from wekadocs.query.tools import Toolbox

KINDS = ("how-to", "cli", "config", "troubleshoot", "compare", "concept")


def questions(n: int, kinds: tuple[str, ...] = KINDS) -> list[Question]:
    return [Question(id=f"q{i:03}", query=f"question {i}", kind=kinds[i % len(kinds)] if kinds else "",
                     relevant=[Judgement(path="p.md", heading="x", grade=1)]) for i in range(n)]


def test_folds_are_deterministic_disjoint_and_cover_every_question() -> None:
    qs = questions(47)
    fold_of = assign_folds(qs, 5, seed=7)
    assert set(fold_of) == {q.id for q in qs}  # every question, each in exactly one fold
    assert set(fold_of.values()) == set(range(5))
    sizes = [list(fold_of.values()).count(f) for f in range(5)]
    assert max(sizes) - min(sizes) <= 1
    assert assign_folds(qs, 5, seed=7) == fold_of
    assert assign_folds(list(reversed(qs)), 5, seed=7) == fold_of  # the file's order does not matter
    assert assign_folds(qs, 5, seed=8) != fold_of


def test_folds_are_stratified_by_kind() -> None:
    qs = questions(60)
    fold_of = assign_folds(qs, 4)
    for kind in KINDS:
        counts = [sum(1 for q in qs if q.kind == kind and fold_of[q.id] == f) for f in range(4)]
        assert max(counts) - min(counts) <= 1, (kind, counts)
    assert set(assign_folds(questions(10, kinds=()), 3).values()) == {0, 1, 2}  # no kind: one stratum


@pytest.mark.parametrize("folds", [1, 11])
def test_a_fold_count_that_cannot_work_is_refused(folds: int) -> None:
    with pytest.raises(QueryError, match="--folds must be from 2 to the number of questions"):
        assign_folds(questions(10), folds)


def test_repeated_ids_are_refused() -> None:
    qs = questions(4)
    with pytest.raises(QueryError, match="repeated: q000"):
        assign_folds([*qs, qs[0]], 2)


def _one_hot(feature: str) -> tuple[float, ...]:
    return tuple(1.0 if name == feature else 0.0 for name in FEATURES)


def _pool() -> list[Pooled]:
    """Two candidates: one only semantic search likes, one only keyword search."""
    return [Pooled("s", _one_hot("semantic"), ("d", "s", "S"), ("p.md", "S")),
            Pooled("k", _one_hot("keyword"), ("d", "k", "K"), ("p.md", "K"))]


SEMANTIC = {name: 0.9 if name == "semantic" else 0.02 for name in FEATURES}
KEYWORD = {name: 0.9 if name == "keyword" else 0.02 for name in FEATURES}


def _asking_for(qid: str, heading: str) -> Question:
    return Question(id=qid, query=qid, relevant=[Judgement(path="p.md", heading=heading, grade=1)])


def _pools(qs: list[Question]) -> dict[str, list[Pooled]]:
    return {q.id: _pool() for q in qs}


def test_a_blend_is_fitted_towards_what_the_questions_reward() -> None:
    """Starting semantic-heavy, on questions whose answer only keyword search
    likes: the fit must move the weight until that answer comes first."""
    qs = [_asking_for("b1", "K"), _asking_for("b2", "K")]
    assert mean_scores(blend_scores(_pools(qs), qs, SEMANTIC).values()).mrr == 0.5
    fitted = fit_blend(_pools(qs), qs, start=SEMANTIC)
    assert fitted["keyword"] > fitted["semantic"]
    assert abs(sum(fitted.values()) - 1) < 1e-5 and list(fitted) == list(FEATURES)
    assert mean_scores(blend_scores(_pools(qs), qs, fitted).values()).mrr == 1.0


def test_a_blend_nothing_improves_comes_back_unchanged() -> None:
    qs = [_asking_for("a1", "S")]  # the dev-set blend favours semantic: already right
    assert fit_blend(_pools(qs), qs) == START
    with pytest.raises(QueryError, match="needs exactly the ranking features"):
        fit_blend(_pools(qs), qs, start={"semantic": 1.0, "recency": 1.0})


def test_a_folds_blend_is_fitted_without_its_own_questions() -> None:
    """Fold 0's questions want the semantic-heavy blend and fold 1's the
    keyword-heavy one. Each fold must get the blend the *other* fold rewards
    (and score badly with it): had its own labels been read, it would get its own."""
    qs = [_asking_for("a1", "S"), _asking_for("a2", "S"), _asking_for("b1", "K"), _asking_for("b2", "K"),
          _asking_for("b3", "K")]
    fold_of = {"a1": 0, "a2": 0, "b1": 1, "b2": 1, "b3": 1}
    choices = choose_per_fold(_pools(qs), qs, fold_of, 2, start=SEMANTIC)
    assert choices[0].weights["keyword"] > choices[0].weights["semantic"]  # fitted on fold 1's K questions
    assert choices[1].weights["semantic"] > choices[1].weights["keyword"]
    assert [c.training.ndcg for c in choices] == [1.0, 1.0]
    assert all(c.held_out.mrr == 0.5 for c in choices)  # the right answer second: the other fold's blend

    # Whatever fold 0's labels say, its blend stays the one fold 1's questions give.
    flipped = [_asking_for("a1", "K"), _asking_for("a2", "K"), *qs[2:]]
    again = choose_per_fold(_pools(flipped), flipped, fold_of, 2, start=SEMANTIC)
    assert again[0].weights == choices[0].weights
    assert again[0].held_out.mrr == 1.0


def test_the_report_holds_every_system_per_fold_and_the_blend_each_fold_got() -> None:
    qs = [_asking_for("a1", "S"), _asking_for("a2", "S"), _asking_for("b1", "K"), _asking_for("b2", "K")]
    fold_of = {"a1": 0, "a2": 0, "b1": 1, "b2": 1}
    perfect = {q.id: Scores(1.0, 1.0, 1.0) for q in qs}
    report = cross_validate_scores(qs, fold_of, 2, 0, _pools(qs), {"keyword": (Scores(1.0, 1.0, 1.0), perfect)},
                                   start=KEYWORD, shipped_weights=SEMANTIC)
    shown = report.as_dict()
    assert shown["sizes"] == [2, 2] and shown["stratified_by"] is None
    assert shown["tuning"]["method"] == "coordinate ascent" and shown["tuning"]["start"] == KEYWORD
    assert set(shown["systems"]) == {"hybrid", "hybrid_shipped", "keyword"}
    assert shown["systems"]["keyword"]["mean"] == {"ndcg": 1.0, "recall": 1.0, "mrr": 1.0}
    assert shown["systems"]["keyword"]["spread"] == {"ndcg": 0.0, "recall": 0.0, "mrr": 0.0}
    fold0, fold1 = (p["weights"] for p in shown["parameters"])
    assert fold0["keyword"] > fold0["semantic"] and fold1["semantic"] > fold1["keyword"]
    hybrid = shown["systems"]["hybrid"]
    assert [f["mrr"] for f in hybrid["per_fold"]] == [0.5, 0.5] and hybrid["spread"]["mrr"] == 0.0
    shipped = shown["systems"]["hybrid_shipped"]["per_fold"]  # shipped favours semantic: fold 0 right
    assert [f["mrr"] for f in shipped] == [1.0, 0.5]
    assert report.full["hybrid"][0].mrr == 0.75
    # fitted on all four questions: two want S, two K; either way, a blend that sums to 1
    assert abs(sum(shown["fitted_on_all"].values()) - 1) < 1e-5


def test_rerank_keeps_a_split_sections_best_part_and_stops_at_k() -> None:
    parts = [Pooled("p1", _one_hot("keyword"), ("d", "a", "A"), ("p.md", "A")),
             Pooled("p2", _one_hot("semantic"), ("d", "a", "A"), ("p.md", "A"))]
    others = [Pooled(f"o{i}", tuple(0.01 * i for _ in FEATURES), ("d", str(i), str(i)), ("p.md", str(i)))
              for i in range(20)]
    ranked = rerank([*parts, *others], SEMANTIC, k=5)
    assert ranked[0] == ("p.md", "A") and ranked.count(("p.md", "A")) == 1 and len(ranked) == 5


@pytest.mark.parametrize("query", [
    "Our firewall needs a fixed port for NFS mountd instead of a random one. How do I pin it?",
    "license capacity deactivate",
    "background tasks are eating cpu during the day, can i cap them",
])
def test_re_blending_with_the_shipped_weights_ranks_exactly_as_the_engine(toolbox: Toolbox, query: str) -> None:
    found = toolbox.engine.search(query, version=SLICE_VERSION, top_k=10)
    assert len(found.candidates) >= len(found.ranked) > 10
    assert rerank(pool_of(found), WEIGHTS, k=10**6) == system_ranking("hybrid", found)
