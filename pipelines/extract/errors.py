"""Errors: alert and event types, and what resolves them.

The alert and event lists are tables whose first column is the type name
(``DriveDown``); an alert table's corrective-action cell says how to fix it,
so the section RESOLVES the alert, and commands in that cell are RELATED_TO it.
CamelCase names in code elsewhere count only where the sentence talks about
an alert or event.
"""

from __future__ import annotations

import re

from pipelines.extract.collector import Collector
from pipelines.extract.text_scan import code_runs, plain, table_rows
from wekadocs.model import Entity, Section

__all__ = ["extract_errors"]

# CamelCase with at least two capitals and a lower-case letter: DriveDown, CPUStarvation.
_TYPE_NAME = re.compile(r"^(?=[A-Z0-9]*[a-z])(?=(?:[^A-Z]*[A-Z]){2})[A-Z][A-Za-z0-9]+$")
_HEADERS = {"alert name": "alert", "alert": "alert", "alert type": "alert", "type": "event",
            "event type": "event", "event": "event", "event name": "event"}
_CONTEXT = re.compile(r"\b(alert|event)s?\b", re.I)


def extract_errors(section: Section, commands: list[tuple[int, Entity]], out: Collector) -> None:
    kind = ""
    for row_start, cells in table_rows(section.text):
        first = plain(cells[0][0]).lower() if cells else ""
        if first in _HEADERS:
            kind = _HEADERS[first]
            continue
        if not kind:
            continue
        name, start = plain(cells[0][0]), cells[0][1]
        if not _TYPE_NAME.match(name):
            continue
        error = out.entity("Error", name, kind=kind)
        out.mention(section.id, error, start + cells[0][0].find(name), start + len(cells[0][0]), 0.9)
        if kind == "alert" and len(cells) >= 3 and plain(cells[-1][0]):
            out.relate("RESOLVES", ("Section", section.id), ("Error", error.id), section.id, 0.85)
            row_end = cells[-1][1] + len(cells[-1][0])
            for offset, command in commands:
                if row_start <= offset <= row_end:
                    out.relate("RELATED_TO", ("Error", error.id), ("Command", command.id), section.id, 0.7)
    _named_in_code(section, out)


def _named_in_code(section: Section, out: Collector) -> None:
    for run in code_runs(section.text):
        name = run.text.strip()
        if run.fenced or not _TYPE_NAME.match(name):
            continue
        line_start = section.text.rfind("\n", 0, run.start) + 1
        line_end = section.text.find("\n", run.start)
        sentence = section.text[line_start: line_end if line_end >= 0 else None]
        if _CONTEXT.search(sentence.replace(f"`{name}`", "")):
            kind = "event" if re.search(r"\bevents?\b", sentence, re.I) else "alert"
            error = out.entity("Error", name, kind=kind)
            out.mention(section.id, error, run.start, run.start + len(name), 0.7)
