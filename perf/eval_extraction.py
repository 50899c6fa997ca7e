"""Extraction precision/recall per type on the hand-labelled samples.

The rules were tuned on the first sample ("tuning"), then adjusted once more
after a first look at the second ("held-out"); the third ("test") was labelled
last, on other files, and no rule was changed after it: its figures are the
unbiased ones. Those three follow the earlier ``weka-cli`` definition. The two
recall samples (issue 13) follow today's broader one: sections drawn at random,
a tuning part and a held-out part scored once.

    .venv/bin/python perf/eval_extraction.py [--show-errors]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipelines.extract.evaluation import evaluate
from wekadocs.embedder import TokenCounter

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--show-errors", action="store_true", help="list false positives and misses")
    args = parser.parse_args()
    corpus = Path(os.environ.get("WEKADOCS_CORPUS", ROOT.parent / "shared" / "corpus" / "weka-docs")) / "4.4"
    if not corpus.is_dir():
        raise SystemExit(f"corpus not found at {corpus} (set WEKADOCS_CORPUS)")
    data = ROOT / "tests" / "data"
    counter = TokenCounter("all-MiniLM-L6-v2")
    for sample, labels, scope, part, definition in (
        ("tuning", "extraction_labels.jsonl", "extraction_scope.json", "files", "weka-cli"),
        ("held-out", "extraction_heldout.jsonl", "extraction_heldout_scope.json", "files", "weka-cli"),
        ("test", "extraction_test.jsonl", "extraction_test_scope.json", "files", "weka-cli"),
        ("recall tuning", "recall_tuning.jsonl", "recall_sections.json", "tuning", "broad"),
        ("recall held-out", "recall_heldout.jsonl", "recall_sections.json", "heldout", "broad"),
    ):
        if not (data / labels).exists():
            print(f"({sample} sample missing: {data / labels})")
            continue
        print(f"\n{sample} sample ({definition} definition)")
        scores = evaluate(corpus, data / labels, data / scope, counter, part=part, definition=definition)
        if part != "files":  # the recall samples label the four entity types only
            scores = {k: v for k, v in scores.items() if k in ("Command", "Parameter", "Configuration", "Error")}
        _report(scores, args.show_errors)


def _report(scores: dict, show_errors: bool) -> None:
    print(f"{'type':<15}{'gold':>6}{'pred':>6}{'hit':>6}{'precision':>11}{'recall':>8}")
    for s in scores.values():
        print(f"{s.label:<15}{s.gold:>6}{s.predicted:>6}{s.correct:>6}{s.precision:>11.3f}{s.recall:>8.3f}")
    total_gold = sum(s.gold for s in scores.values())
    total_hit = sum(s.correct for s in scores.values())
    total_pred = sum(s.predicted for s in scores.values())
    print(f"{'all':<15}{total_gold:>6}{total_pred:>6}{total_hit:>6}"
          f"{total_hit / max(total_pred, 1):>11.3f}{total_hit / max(total_gold, 1):>8.3f}")
    if show_errors:
        for s in scores.values():
            for item in s.false_positives:
                print(f"FP {s.label}: {item}")
            for item in s.missed:
                print(f"FN {s.label}: {item}")


if __name__ == "__main__":
    main()
