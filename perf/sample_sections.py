"""Draw the sections of the entity-recall sample (tests/data/recall_*).

Sections are heading-delimited line ranges of the raw Markdown (a heading
line up to the line before the next heading, fences respected). Sections are
drawn stratified over the corpus's top-level folders (proportional to their
section count, at least one each) with a fixed seed, at most one section per
file, among sections that hold code or a table and are under 120 lines,
and split alternately into a tuning and a held-out part. The drawing
reads only headings, never the extractor.

    .venv/bin/python perf/sample_sections.py > tests/data/recall_sections.json
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 13
TOTAL = 40
_MAX_LINES = 120
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


def sections(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, heading) per section, 1-based, ``\\n`` lines."""
    lines = text.split("\n")
    starts: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            starts.append((number, match.group(2)))
    if not starts or starts[0][0] > 1:
        starts.insert(0, (1, "(front matter)"))
    found = []
    for index, (first, title) in enumerate(starts):
        last = starts[index + 1][0] - 1 if index + 1 < len(starts) else len(lines)
        body = "\n".join(lines[first:last]).strip()
        # The four types live in code and tables: a section without either
        # holds nothing to label. Over-long sections are left out so that each
        # can be read whole.
        if ("`" in body or re.search(r"^\|", body, re.M)) and last - first < _MAX_LINES:
            found.append((first, last, title))
    return found


def main() -> None:
    corpus = Path(os.environ.get("WEKADOCS_CORPUS", ROOT.parent / "shared" / "corpus" / "weka-docs")) / "4.4"
    by_folder: dict[str, list[tuple[str, int, int, str]]] = defaultdict(list)
    for path in sorted(corpus.rglob("*.md")):
        rel = path.relative_to(corpus).as_posix()
        if rel == "SUMMARY.md":
            continue
        folder = rel.split("/")[0] if "/" in rel else "(root)"
        for first, last, title in sections(path.read_text(encoding="utf-8")):
            by_folder[folder].append((rel, first, last, title))
    rng = random.Random(SEED)
    total = sum(len(v) for v in by_folder.values())
    chosen = []
    for folder in sorted(by_folder):
        pool = by_folder[folder]
        quota = max(1, round(TOTAL * len(pool) / total))
        files_used: set[str] = set()
        for item in rng.sample(pool, len(pool)):
            if len([c for c in chosen if c[0].split("/")[0] == item[0].split("/")[0]]) >= quota:
                break
            if item[0] in files_used:
                continue
            files_used.add(item[0])
            chosen.append(item)
    rng.shuffle(chosen)
    out = {"version": "4.4", "seed": SEED, "tuning": [], "heldout": []}
    for index, (rel, first, last, title) in enumerate(chosen):
        part = "tuning" if index % 2 == 0 else "heldout"
        out[part].append({"path": rel, "first_line": first, "last_line": last, "heading": title})
    for part in ("tuning", "heldout"):
        out[part].sort(key=lambda s: (s["path"], s["first_line"]))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
