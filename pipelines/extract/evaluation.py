"""Precision and recall of the extractor against the hand-labelled sample.

A sample (``tests/data/extraction_labels.jsonl``, and the held-out one) lists,
for line ranges of corpus files labelled exhaustively (``*_scope.json``), one
record per distinct (type, name). We parse and extract each whole page, keep
the mentions whose text lies inside the labelled range, and compare the sets
of (file, type, normalized name).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.extract import extract_document
from pipelines.parse import parse_document
from wekadocs.model import Entity, ParsedDocument

__all__ = ["TypeScore", "evaluate", "LABELLED_TYPES"]

LABELLED_TYPES = ("Command", "Parameter", "Configuration", "Procedure", "Step", "Error")
_CASELESS = {"Procedure", "Step"}
# Only real HTML tags are markup: ``<username>`` in a usage line is text.
_HTML_TAG = re.compile(
    r"</?(?:table|thead|tbody|tr|th|td|code|pre|p|br|ul|ol|li|strong|em|b|i|a|figure|img|figcaption"
    r"|details|summary|mark|span|div|sup|sub|h[1-6])\b[^>]*>", re.I)


@dataclass(frozen=True)
class TypeScore:
    label: str
    gold: int
    predicted: int
    correct: int
    false_positives: tuple[str, ...]
    missed: tuple[str, ...]

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 1.0


def _weka_cli(entity: Entity) -> bool:
    props = dict(entity.props)
    if entity.label == "Command":
        return entity.name.startswith("weka ")
    if entity.label == "Parameter":
        return str(props.get("command", "")).startswith("weka ")
    if entity.label == "Configuration":
        # it took only `key=value` shapes: lower-case keys, never YAML's `key: value`
        kind = props.get("kind")
        return kind != "yaml-key" and (kind != "ini-key" or bool(_OLD_KEY.match(entity.name)))
    return True


_OLD_KEY = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$")
_DEFINITIONS: dict[str, Callable[[Entity], bool]] = {"broad": lambda entity: True, "weka-cli": _weka_cli}


def _key(label: str, name: str) -> str:
    name = re.sub(r"\s+", " ", name).strip()
    if label in _CASELESS:
        name = name.casefold().rstrip(".:;!? ")
    return name


def _squash(text: str) -> str:
    """Markup- and space-insensitive form, to find rendered text in the raw file."""
    text = re.sub(r"\\|\*\*|`", "", text)
    text = _HTML_TAG.sub(" ", text)
    text = re.sub(r"&#x20;|\{%[^%]*%\}", " ", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


def _sections_in_range(parsed: ParsedDocument, first: int, last: int) -> set[str]:
    """Sections whose source lines (heading to the next heading) overlap [first, last]."""
    found = set()
    sections = parsed.sections
    for index, section in enumerate(sections):
        following = [s.line for s in sections[index + 1:] if s.line > section.line]
        end = (following[0] - 1) if following else 10**9
        if section.line <= last and end >= first:
            found.add(section.id)
    return found


def evaluate(
    corpus_root: Path,
    labels: Path,
    scope_file: Path,
    count_tokens: Callable[[str], int],
    part: str = "files",
    definition: str = "broad",
) -> dict[str, TypeScore]:
    """Scores per type; ``part`` names the list of ranges in the scope file
    (``files``, or ``tuning``/``heldout`` in ``recall_sections.json``).

    ``definition`` is the rule set the sample was labelled under: ``broad``
    (``docs/extraction.md`` today: every program's commands, config-file keys)
    or ``weka-cli``, the earlier one of the first three samples, which left out
    other programs' commands and parameters and keys of configuration files;
    predictions outside a sample's definition are not held against it."""
    if definition not in _DEFINITIONS:
        raise ValueError(f"unknown definition {definition!r}; expected one of {sorted(_DEFINITIONS)}")
    scope = json.loads(scope_file.read_text())
    gold: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for line in labels.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            gold[record["type"]].add((record["path"], _key(record["type"], record["name"])))
    predicted: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for item in scope[part]:
        raw = (corpus_root / item["path"]).read_bytes()
        parsed = parse_document(raw, path=item["path"], source="eval", version=scope["version"],
                                source_uri="", count_tokens=count_tokens, token_budget=256,
                                max_bytes=10_000_000)
        lines = raw.decode("utf-8").split("\n")[item["first_line"] - 1: item["last_line"]]
        in_range = _squash("\n".join(lines))
        sections = {s.id: s for s in parsed.sections}
        overlapping = _sections_in_range(parsed, item["first_line"], item["last_line"])
        extraction = extract_document(parsed)
        entities = {e.id: e for e in extraction.entities}
        for mention in extraction.mentions:
            entity = entities[mention.entity_id]
            if entity.label not in LABELLED_TYPES or not _DEFINITIONS[definition](entity):
                continue
            if mention.section_id not in overlapping:
                continue
            section = sections[mention.section_id]
            # Whole pages are parsed (tables keep their headers, usage lines
            # their context); a mention counts when its text lies in the range.
            surface = section.title if entity.label == "Procedure" else section.text[mention.start:mention.end]
            if _squash(surface)[:60] in in_range:
                predicted[entity.label].add((item["path"], _key(entity.label, entity.name)))
    scores = {}
    for label in LABELLED_TYPES:
        g, p = gold[label], predicted[label]
        scores[label] = TypeScore(
            label, len(g), len(p), len(g & p),
            tuple(sorted(f"{path}: {name}" for path, name in p - g)),
            tuple(sorted(f"{path}: {name}" for path, name in g - p)),
        )
    return scores
