"""Entity extraction for one parsed document (rules, no model).

What each type means is defined in ``docs/extraction.md``; the labelled sample
in ``tests/data/`` measures how well these rules follow it
(``perf/eval_extraction.py``).
"""

from __future__ import annotations

import re

from pipelines.extract.collector import Collector
from pipelines.extract.commands import extract_commands, find_invocations, learn_paths
from pipelines.extract.concepts import extract_components, extract_concepts, extract_examples
from pipelines.extract.configuration import extract_configuration
from pipelines.extract.errors import extract_errors
from pipelines.extract.procedures import extract_procedure
from pipelines.extract.programs import extract_program_commands
from pipelines.extract.text_scan import code_runs
from wekadocs.model import Entity, Extraction, ParsedDocument, Relation, Section

__all__ = ["extract_document", "known_command_paths", "split_groups"]

_PREREQUISITES = re.compile(r"\b(before you begin|prerequisites?|requirements)\b", re.I)


def known_command_paths(parsed: ParsedDocument) -> dict[tuple[str, ...], str]:
    """Command paths the page states in usage lines (see ``commands``)."""
    runs = [run for section in parsed.sections for run in code_runs(section.text)]
    return learn_paths(find_invocations(runs))


def extract_document(
    parsed: ParsedDocument, known: dict[tuple[str, ...], str] | None = None
) -> Extraction:
    out = Collector()
    paths = known if known is not None else known_command_paths(parsed)
    commands: dict[str, list] = {}
    last_weka: Entity | None = None
    previous: Section | None = None
    for section in parsed.sections:
        continued = previous is not None and section.part > 1 and previous.trail == section.trail
        weka = extract_commands(section, paths, out, last_weka if continued else None)
        last_weka = weka[-1][1] if weka else (last_weka if continued else None)
        previous = section
        found = weka + extract_program_commands(section, out)
        commands[section.id] = found = sorted(found, key=lambda pair: pair[0])
        extract_configuration(section, out)
        extract_errors(section, found, out)
        extract_concepts(section, out)
        extract_components(section, out)
        extract_examples(section, found, out)
    for parts in split_groups(parsed.sections):
        extract_procedure(parts, commands, out)
    result = out.result()
    return _with_prerequisites(parsed, result)


def split_groups(sections: tuple[Section, ...]) -> list[list[Section]]:
    """Sections grouped with the other parts of the same split section."""
    groups: list[list[Section]] = []
    for section in sections:
        previous = groups[-1][-1] if groups else None
        if previous and section.part > 1 and previous.trail == section.trail and previous.part == section.part - 1:
            groups[-1].append(section)
        else:
            groups.append([section])
    return groups


def _with_prerequisites(parsed: ParsedDocument, result: Extraction) -> Extraction:
    """A "Before you begin"/"Prerequisites" section makes its parent REQUIRE
    what it names (commands, settings, components) and what it links to."""
    by_id = {s.id: s for s in parsed.sections}
    labels = {e.id: e.label for e in result.entities}
    extra = []
    for section in parsed.sections:
        if not _PREREQUISITES.search(section.title) or section.parent_id not in by_id:
            continue
        owner = ("Section", section.parent_id)
        for mention in result.mentions:
            label = labels[mention.entity_id]
            if mention.section_id == section.id and label in ("Command", "Configuration", "Component"):
                extra.append(_requires(owner, (label, mention.entity_id), section))
        for link in section.links:
            if link.path:
                extra.append(_requires(owner, ("Link", f"{link.path}#{link.anchor}"), section))
    if not extra:
        return result
    seen = {(r.type, r.source_id, r.target_id, r.section_id) for r in result.relations}
    unique = [r for r in extra if (r.type, r.source_id, r.target_id, r.section_id) not in seen]
    return Extraction(result.entities, result.mentions, result.relations + tuple(dict.fromkeys(unique)))


def _requires(owner: tuple[str, str], target: tuple[str, str], section: Section) -> Relation:
    return Relation("REQUIRES", owner[0], owner[1], target[0], target[1], section.id, 0.7)
