"""Which alert or event an error message is about.

Users paste what they see: an alert's name (``ClockSkew``), its message
("Clock skew on server"), or a line of ``weka alerts`` output that carries
both. An Error entity has only its type name, so a message is matched against
the line of text that names the Error: in the alert and event tables, the row
with its description and corrective action; elsewhere, the sentence.

A candidate line scores by how well its name and description words and the
message's words cover each other (an F1, so "CPU starvation detected" picks
``CPUStarvation`` over ``CPUFrequentStarvation``), words of the corrective
action counting for less, blended with the share of the message's word
pairs found side by side. A message that contains the type name itself is an
exact match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wekadocs.query.query_text import content_terms

__all__ = ["ErrorMatch", "MIN_SCORE", "match_errors", "message_words", "stem"]

MIN_SCORE = 0.5  # below it no Error is named; the tool falls back to search
_ACTION_WEIGHT = 0.3  # a word found only in the corrective action
_PAIR_WEIGHT = 0.15  # share of the message's word pairs also side by side in the line
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|\d+")


@dataclass(frozen=True)
class ErrorMatch:
    id: str
    name: str
    score: float
    exact: bool
    line: str


def stem(word: str) -> str:
    """A light suffix strip, so "clocks" meets "clock" and "detected" "detect"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def message_words(text: str) -> list[str]:
    """The message's content words, stemmed, in order, each once."""
    return list(dict.fromkeys(stem(t) for t in content_terms(text)))


def match_errors(message: str, rows: Iterable[Mapping[str, Any]]) -> list[ErrorMatch]:
    """The Errors the message may be about, best first, each once.

    Args:
        message: what the user pasted.
        rows: ``{id, name, line}`` for each mention of an Error in scope.
    """
    wanted = message_words(message)
    tokens = {t.casefold() for t in re.findall(r"[A-Za-z0-9]+", message)}
    best: dict[str, ErrorMatch] = {}
    for row in rows:
        name, line = str(row["name"]), str(row["line"])
        exact = name.casefold() in tokens
        score = 1.0 if exact else _score(wanted, name, line)
        found = ErrorMatch(str(row["id"]), name, round(score, 4), exact, line.strip())
        if found.id not in best or found.score > best[found.id].score:
            best[found.id] = found
    return sorted(best.values(), key=lambda m: (-m.score, m.name, m.id))


def _score(wanted: list[str], name: str, line: str) -> float:
    if not wanted:
        return 0.0
    head, action = _parts(name, line)
    head_words = message_words(" ".join([*_CAMEL.findall(name), head]))
    action_words = set(message_words(action)) - set(head_words)
    in_head = sum(1 for w in wanted if w in head_words)
    in_action = sum(1 for w in wanted if w in action_words)
    recall = (in_head + _ACTION_WEIGHT * in_action) / len(wanted)
    precision = in_head / len(head_words) if head_words else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    pairs = list(zip(wanted, wanted[1:]))
    if not pairs:
        return f1
    beside = set(zip(head_words, head_words[1:]))
    together = sum(1 for p in pairs if p in beside) / len(pairs)
    return (1 - _PAIR_WEIGHT) * f1 + _PAIR_WEIGHT * together


def _parts(name: str, line: str) -> tuple[str, str]:
    """(name and description, corrective action) of a table row; a sentence is all head."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 2 or name not in cells[0]:
        return line, ""
    return " ".join(cells[1:2]), " ".join(cells[2:])
