"""Procedures (sections that are numbered lists of actions) and their Steps."""

from __future__ import annotations

import re

from pipelines.extract.collector import Collector
from pipelines.extract.text_scan import ordered_items, plain
from wekadocs.model import Entity, Section

__all__ = ["extract_procedure"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_MAX_STEP_NAME = 120


_BOLD_LEAD = re.compile(r"^\*\*([^*]+)\*\*")
_GENERIC_TITLES = {"procedure", "steps", "workflow", "how to"}


def step_name(text: str) -> str:
    """A bold-led item is named by its bold title; otherwise the first
    sentence, markup removed, at most 120 characters."""
    bold = _BOLD_LEAD.match(text.strip())
    if bold:
        return plain(bold.group(1))[:_MAX_STEP_NAME]
    text = plain(text)
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return first[:_MAX_STEP_NAME].strip()


def extract_procedure(
    parts: list[Section], commands: dict[str, list[tuple[int, Entity]]], out: Collector
) -> Entity | None:
    """A section (all its parts, when it was split) with a top-level numbered
    list of two or more items is a Procedure; each item is a Step
    (CONTAINS_STEP {order}); a Step that invokes a command EXECUTES it.

    ``commands`` maps each part's id to the commands found in it.
    """
    items = [(part, *item) for part in parts for item in ordered_items(part.text)]
    if len(items) < 2:
        return None
    # A numbered list of states or names ("1. Healthy") is not a procedure.
    if sum(len(plain(text).split()) >= 3 for _, _, text, _ in items) * 2 < len(items):
        return None
    first = parts[0]
    title = first.title
    if title.strip(" :").lower() in _GENERIC_TITLES and len(first.trail) > 1:
        title = first.trail[-2]  # "#### Procedure" names nothing; its parent does
    procedure = out.entity("Procedure", title, first.id, scope=first.id)
    for part in parts:
        spans = [(start, start + len(text)) for p, _, text, start in items if p is part]
        if spans:
            out.mention(part.id, procedure, spans[0][0], spans[-1][1], 0.85)
    for part, number, text, start in items:
        name = step_name(text)
        if not name:
            continue
        step = out.entity("Step", name, procedure.id, number, scope=part.id, order=number)
        end = start + len(text)
        out.mention(part.id, step, start, end, 0.85)
        out.relate("CONTAINS_STEP", ("Procedure", procedure.id), ("Step", step.id), part.id, 0.9, order=number)
        for offset, command in commands.get(part.id, []):
            if start <= offset < end:
                out.relate("EXECUTES", ("Step", step.id), ("Command", command.id), part.id, 0.9)
    return procedure
