"""The labelled question set (perf/eval/questions-4.4.jsonl) stays valid against the 4.4 corpus."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from wekadocs.query.evaluation import load_qrels, normalize_heading

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "perf" / "eval" / "check_labels.py"


def _checker():
    spec = importlib.util.spec_from_file_location("check_labels", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checker(corpus_root: Path):
    return _checker()


def test_the_question_set_is_valid(checker, corpus_root: Path) -> None:
    problems, rows = checker.validate(checker.QUESTIONS, corpus_root / "4.4")
    assert not problems, "\n".join(problems)
    assert len(rows) >= checker.MIN_QUESTIONS


def test_the_evaluator_loads_it() -> None:
    questions = load_qrels(_checker().QUESTIONS)
    assert all(any(j.grade == 2 for j in q.relevant) for q in questions)


def test_heading_normalisation_matches_the_evaluator(checker, corpus_root: Path) -> None:
    for path in sorted((corpus_root / "4.4").rglob("*.md")):
        for heading in checker.page_headings(path.read_text(encoding="utf-8")):
            assert checker.normalize_heading(heading) == normalize_heading(heading), (path, heading)


def test_the_checker_catches_bad_labels(checker, corpus_root: Path, tmp_path: Path) -> None:
    rows = [
        {"id": "q001", "query": "where do the drives go", "kind": "concept", "notes": "",
         "relevant": [{"path": "no/such/page.md", "heading": "x", "grade": 2}]},
        {"id": "q001", "query": "what does this page say", "kind": "opinion", "notes": "",
         "relevant": [{"path": "licensing/overview.md", "heading": "No such heading here", "grade": 1}]},
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems, _ = checker.validate(bad, corpus_root / "4.4", min_questions=0, min_per_kind=0)
    text = "\n".join(problems)
    for expected in ("no page no/such/page.md", "used twice", "kind 'opinion'", "has no heading",
                     "no grade-2 label"):
        assert expected in text


def test_the_checker_rejects_copied_wording(checker, corpus_root: Path) -> None:
    page = (corpus_root / "4.4" / "licensing" / "overview.md").read_text(encoding="utf-8")
    lifted = " ".join(checker.words(page)[40:52])
    assert checker.copied_run(lifted, checker.Corpus(corpus_root / "4.4"))
    quoted = f'we get "{lifted}" in the log'
    assert checker.copied_run(quoted, checker.Corpus(corpus_root / "4.4"))
    assert checker.copied_run(quoted, checker.Corpus(corpus_root / "4.4"), quotes_allowed=True) is None
    assert checker.copied_run("zebra quantum pickle weka lunar banjo spoon", checker.Corpus(corpus_root / "4.4")) is None
