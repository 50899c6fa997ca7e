"""Finding code, table rows and list items in a section's rendered text.

Everything returns character offsets into ``Section.text`` so mentions can
carry exact spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Run", "code_runs", "table_rows", "ordered_items", "plain"]

_FENCE = re.compile(r"```([^\n]*)\n(.*?)\n?```", re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_CONTINUATION = re.compile(r"^\s+(?:\[|<|--?[A-Za-z])")
_ROW = re.compile(r"^\|(.*)\|[ \t]*$", re.M)
_ITEM = re.compile(r"^(\d{1,3})\. (.+)$", re.M)
_MARKUP = re.compile(r"\*\*|__|`|\\(?=[^\w\s])")


@dataclass(frozen=True)
class Run:
    text: str
    start: int  # offset of text[0] in the section text
    fenced: bool
    lang: str = ""  # a fenced block's info string (``bash``, ``yaml``), lower case


def code_runs(text: str) -> list[Run]:
    """Code blocks (each line a run) and inline code spans outside them."""
    runs: list[Run] = []
    fenced: list[tuple[int, int]] = []
    for match in _FENCE.finditer(text):
        fenced.append(match.span())
        offset = match.start(2)
        lang = match.group(1).strip().lower()
        block_runs: list[Run] = []
        for line in match.group(2).split("\n"):
            if _CONTINUATION.match(line) and block_runs:
                # a usage line wrapped over several lines: one run, newlines as
                # spaces so offsets still index the section text
                first = block_runs.pop()
                joined = text[first.start: offset + len(line)].replace("\n", " ")
                block_runs.append(Run(joined, first.start, True, lang))
            elif line.strip():
                block_runs.append(Run(line, offset, True, lang))
            offset += len(line) + 1
        runs.extend(block_runs)
    for match in _SPAN.finditer(text):
        if not any(a <= match.start() < b for a, b in fenced):
            runs.append(Run(match.group(1), match.start(1), False))
    return sorted(runs, key=lambda r: r.start)


def table_rows(text: str) -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """(row start, [(cell text, cell start)]) for each ``| a | b |`` row,
    separator rows skipped."""
    for match in _ROW.finditer(text):
        body = match.group(1)
        if set(body.replace("|", "").strip()) <= {"-", " ", ":"}:
            continue
        cells: list[tuple[str, int]] = []
        offset = match.start(1)
        for cell in re.split(r"(?<!\\)\|", body):
            stripped = cell.strip()
            cells.append((stripped, offset + cell.find(stripped) if stripped else offset))
            offset += len(cell) + 1
        yield match.start(), cells


def ordered_items(text: str) -> list[tuple[int, str, int]]:
    """Top-level numbered items: (number, item text, offset of the text)."""
    return [(int(m.group(1)), m.group(2), m.start(2)) for m in _ITEM.finditer(text)]


def plain(text: str) -> str:
    """Markup removed (emphasis, backticks, escapes), whitespace collapsed."""
    return re.sub(r"\s+", " ", _MARKUP.sub("", text)).strip()
