"""The retrieval metrics and the qrels format, on small cases worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from wekadocs.errors import QueryError
from wekadocs.query.engine import SearchResult, one_per_heading
from wekadocs.query.evaluation import SYSTEMS, Judgement, load_qrels, normalize_heading, score_ranking, system_ranking
from wekadocs.query.retrieval import Candidate
from wekadocs.query.scope import Scope

J = [Judgement(path="a.md", heading="Configure the *mountd* port", grade=2),
     Judgement(path="b.md", heading="Required ports", grade=1)]


def test_headings_match_after_markdown_html_and_escapes_are_stripped() -> None:
    assert normalize_heading("Configure the **mountd**  <code>port</code>") == "configure the mountd port"
    assert normalize_heading(r"Set up \_weka\_ [CLI](cli.md)") == "set up weka cli"
    assert normalize_heading("Required ports") != normalize_heading("Required port")


def test_perfect_ranking_scores_one() -> None:
    s = score_ranking([("a.md", "Configure the mountd port"), ("b.md", "required ports")], J)
    assert (s.ndcg, s.recall, s.mrr) == (1.0, 1.0, 1.0)


def test_swapped_ranking_is_scored_by_hand() -> None:
    s = score_ranking([("x.md", "Other"), ("b.md", "Required ports"), ("a.md", "Configure the mountd port")], J)
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert s.ndcg == pytest.approx(dcg / idcg)
    assert s.recall == 1.0
    assert s.mrr == pytest.approx(0.5)


def test_cut_off_and_duplicates() -> None:
    results = [("a.md", "Configure the mountd port")] * 3 + [("x.md", str(i)) for i in range(10)]
    results.append(("b.md", "Required ports"))
    s = score_ranking(results, J, k=10)
    assert s.recall == 0.5  # b.md is 12th once the duplicates collapse: outside the cut-off
    assert s.mrr == 1.0


def test_wrong_path_does_not_count() -> None:
    assert score_ranking([("c.md", "Required ports")], J).recall == 0.0


def test_a_bad_qrels_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "q1", "query": "x", "relevant": []}\n{"id": "q2", "query": 3}\n')
    with pytest.raises(QueryError, match=r"q\.jsonl:2: not a qrels line"):
        load_qrels(path)


def test_the_dev_set_loads() -> None:
    dev = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "dev-4.4.jsonl"
    if not dev.exists():
        pytest.fail(f"the dev qrels are missing at {dev}")
    questions = load_qrels(dev)
    assert len(questions) == 30
    assert all(q.relevant for q in questions)


def _part(section_id: str, heading: str, score: float, keyword_rank: int) -> Candidate:
    details = {"document_id": "d-" + heading, "anchor": heading.lower(), "heading": heading, "path": "p.md"}
    return Candidate(section_id, bm25=100.0 - keyword_rank, keyword_rank=keyword_rank, rrf=1 / (61 + keyword_rank),
                     details=details, score=score)


def test_a_baseline_picks_a_split_sections_part_by_its_own_score_not_the_blend() -> None:
    """Section "Split" has two parts: the keyword retriever ranks part one
    first, the blend prefers part two, which BM25 ranks 16th. Ordering the
    engine's answer (one part per section, picked by the blend) by BM25 put
    "Split" 16th, out of the top ten; the keyword baseline must put it first."""
    split_one, split_two = _part("s1", "Split", 0.1, 0), _part("s2", "Split", 0.9, 15)
    others = [_part(f"o{rank:02}", f"Other {rank}", 0.5, rank) for rank in range(1, 15)]
    candidates = sorted([split_one, split_two, *others], key=lambda c: (-c.score, c.section_id))
    found = SearchResult(one_per_heading(candidates), Scope(None, (), "", ()), {}, 0.0, [], candidates)
    label = [Judgement(path="p.md", heading="Split", grade=2)]

    old = [(c.details["path"], c.details["heading"]) for c in sorted(found.ranked, key=SYSTEMS["keyword"]["order"])]
    assert score_ranking(old, label).recall == 0.0  # the unfair ranking this replaces

    keyword = system_ranking("keyword", found)
    assert keyword[0] == ("p.md", "Split") and keyword.count(("p.md", "Split")) == 1
    assert score_ranking(keyword, label).mrr == 1.0
    assert system_ranking("rrf", found)[0] == ("p.md", "Split")
    assert system_ranking("hybrid", found)[0] == ("p.md", "Split")  # the engine's own pick: part two, first
