from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.extract import extract_document
from pipelines.extract.evaluation import evaluate
from wekadocs.embedder import TokenCounter
from wekadocs.model import Extraction, ParsedDocument

Parse = Callable[..., ParsedDocument]
DATA = Path(__file__).resolve().parents[1] / "data"

CLI_PAGE = """# Manage widgets

## Create a widget

**Command:** `weka widget create`

`weka widget create <name> <size> [--color color] [--owner=<owner>] [--shared]`

**Parameters**

| Name | Value |
| --- | --- |
| `name`* | Widget name |
| `size`* | Size in GB |
| `color` | Its color |

Example:

```
$ weka widget create big 100 --shared
# output mentions weka agent status but is not a command
Commands related to weka agent
```

## Before you begin

Set `WEKA_TOKEN` and `widget.max_count=10` in `/etc/widgets.conf`, then run `weka status`.

## Add a widget with the GUI

1. From the menu, select **Manage > Widgets**.
2. Run `weka widget create demo 10` to check.
3. **Save the form:** the widget appears.

## Alerts

| Alert name | Description | Corrective actions |
| --- | --- | --- |
| WidgetDown | A widget is down | Run `weka widget restart` on the host. |
| CPUWidgetStarvation | Starved | Contact support. |
"""


def _by_label(extraction: Extraction) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for entity in extraction.entities:
        found.setdefault(entity.label, set()).add(entity.name)
    return found


def test_commands_are_cut_before_arguments(parse: Parse) -> None:
    found = _by_label(extract_document(parse(CLI_PAGE)))
    assert found["Command"] == {"weka widget create", "weka status", "weka widget restart"}


def test_parameters_from_usage_and_table(parse: Parse) -> None:
    extraction = extract_document(parse(CLI_PAGE))
    params = {e.name for e in extraction.entities if e.label == "Parameter"}
    assert params == {"name", "size", "color", "owner", "shared"}
    has = {r for r in extraction.relations if r.type == "HAS_PARAMETER"}
    assert {r.source_label for r in has} == {"Command"} and len({r.target_id for r in has}) == 5


def test_configuration_shapes(parse: Parse) -> None:
    found = _by_label(extract_document(parse(CLI_PAGE)))
    assert found["Configuration"] == {"WEKA_TOKEN", "widget.max_count"}


def test_procedure_steps_and_executes(parse: Parse) -> None:
    extraction = extract_document(parse(CLI_PAGE))
    procedures = [e for e in extraction.entities if e.label == "Procedure"]
    assert [p.name for p in procedures] == ["Add a widget with the GUI"]
    steps = sorted((dict(e.props)["order"], e.name) for e in extraction.entities if e.label == "Step")
    assert steps == [(1, "From the menu, select Manage > Widgets."),
                     (2, "Run weka widget create demo 10 to check."), (3, "Save the form:")]
    contains = sorted(r.order for r in extraction.relations if r.type == "CONTAINS_STEP")
    assert contains == [1, 2, 3]
    executes = [r for r in extraction.relations if r.type == "EXECUTES" and r.source_label == "Step"]
    assert len(executes) == 1


def test_errors_and_what_resolves_them(parse: Parse) -> None:
    doc = parse(CLI_PAGE)
    extraction = extract_document(doc)
    assert _by_label(extraction)["Error"] == {"WidgetDown", "CPUWidgetStarvation"}
    alerts_section = next(s for s in doc.sections if s.title == "Alerts")
    resolves = [r for r in extraction.relations if r.type == "RESOLVES"]
    assert {r.source_id for r in resolves} == {alerts_section.id} and len(resolves) == 2
    related = [r for r in extraction.relations if r.type == "RELATED_TO"]
    assert len(related) == 1  # WidgetDown -> weka widget restart


def test_prerequisites_become_requires(parse: Parse) -> None:
    doc = parse(CLI_PAGE)
    extraction = extract_document(doc)
    top = doc.sections[0]
    requires = {(r.source_id, r.target_label) for r in extraction.relations if r.type == "REQUIRES"}
    assert (top.id, "Configuration") in requires and (top.id, "Command") in requires


def test_mention_spans_point_at_the_text(parse: Parse) -> None:
    doc = parse(CLI_PAGE)
    extraction = extract_document(doc)
    sections = {s.id: s for s in doc.sections}
    names = {e.id: e for e in extraction.entities}
    for mention in extraction.mentions:
        entity = names[mention.entity_id]
        if entity.label in ("Command", "Parameter", "Configuration", "Error"):
            assert sections[mention.section_id].text[mention.start:mention.end] == entity.name
        assert 0 < mention.confidence <= 1


def test_extraction_is_deterministic(parse: Parse) -> None:
    assert extract_document(parse(CLI_PAGE)) == extract_document(parse(CLI_PAGE))


def test_quality_on_the_labelled_samples(corpus_root: Path, count_tokens: TokenCounter) -> None:
    """A floor under the measured figures (perf/eval_extraction.py prints them)."""
    for labels, scope in (("extraction_labels.jsonl", "extraction_scope.json"),
                          ("extraction_heldout.jsonl", "extraction_heldout_scope.json"),
                          ("extraction_test.jsonl", "extraction_test_scope.json")):
        scores = evaluate(corpus_root / "4.4", DATA / labels, DATA / scope, count_tokens, definition="weka-cli")
        assert scores["Command"].precision >= 0.95, labels
        assert scores["Configuration"].precision >= 0.95, labels
        assert all(s.precision >= 0.85 and s.recall >= 0.75 for s in scores.values()), labels
