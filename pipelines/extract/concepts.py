"""Concepts, Components and Examples: lower-confidence, recall-oriented."""

from __future__ import annotations

import re

from pipelines.extract.collector import Collector
from wekadocs.model import Entity, Section

__all__ = ["extract_concepts", "extract_components", "extract_examples"]

# `**Term:** definition` or `**Term**: definition` at the start of a line or item.
_DEFINITION = re.compile(r"^(?:\s*(?:-|\d+\.)\s+)?\*\*([^*\n]{2,60}?)(?::\*\*|\*\*:)\s+(\S.{20,})$", re.M)
_NOT_TERMS = {
    "note", "notes", "command", "commands", "parameters", "example", "examples", "workflow",
    "procedure", "related information", "before you begin", "tip", "warning", "important",
    "default", "result", "results", "output", "prerequisites", "steps", "value", "values",
}
# Parts of a WEKA system, as the docs name them.
_COMPONENTS = {
    "backend server": "backend server",
    "backend servers": "backend server",
    "client": "client",
    "clients": "client",
    "compute process": "compute process",
    "compute processes": "compute process",
    "compute container": "compute container",
    "drive container": "drive container",
    "frontend container": "frontend container",
    "frontend process": "frontend process",
    "drive process": "drive process",
    "object store": "object store",
    "object stores": "object store",
    "data services container": "data services container",
    "protocol container": "protocol container",
    "weka agent": "weka agent",
    "management process": "management process",
}
_COMPONENT = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _COMPONENTS), key=len, reverse=True)) + r")\b", re.I)
_EXAMPLE_TITLE = re.compile(r"\bexamples?\b", re.I)
_FENCE = re.compile(r"```[^\n]*\n(.*?)\n?```", re.S)


def extract_concepts(section: Section, out: Collector) -> None:
    for match in _DEFINITION.finditer(section.text):
        term = match.group(1).strip().rstrip(":").strip()
        if term.lower() in _NOT_TERMS or "`" in term or len(term.split()) > 5:
            continue
        concept = out.entity("Concept", term)
        out.mention(section.id, concept, match.start(1), match.end(1), 0.6)


def extract_components(section: Section, out: Collector) -> None:
    seen: set[str] = set()
    for match in _COMPONENT.finditer(section.text):
        name = _COMPONENTS[match.group(1).lower()]
        if name in seen:
            continue  # one mention per component per section is enough evidence
        seen.add(name)
        component = out.entity("Component", name)
        out.mention(section.id, component, match.start(), match.end(), 0.5)


def extract_examples(section: Section, commands: list[tuple[int, Entity]], out: Collector) -> None:
    """Code blocks under an "Example" heading or after a line that says example."""
    titled = bool(_EXAMPLE_TITLE.search(section.title))
    for index, match in enumerate(_FENCE.finditer(section.text)):
        before = section.text[max(0, match.start() - 200): match.start()].lower()
        if not (titled or "example" in before):
            continue
        first_line = next((line.strip() for line in match.group(1).split("\n") if line.strip()), "")
        if not first_line:
            continue
        example = out.entity("Example", first_line[:80], section.id, index, scope=section.id)
        out.mention(section.id, example, match.start(1), match.end(1), 0.6)
        for offset, command in commands:
            if match.start() <= offset < match.end():
                out.relate("EXECUTES", ("Example", example.id), ("Command", command.id), section.id, 0.8)
