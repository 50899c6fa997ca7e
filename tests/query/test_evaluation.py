"""The retrieval metrics and the qrels format, on small cases worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from wekadocs.errors import QueryError
from wekadocs.query.evaluation import Judgement, load_qrels, normalize_heading, score_ranking

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
