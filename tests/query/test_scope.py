"""What a question covers: each source's current version by default, one version when asked.

Beside the 4.4 slice (version 9.9 of ``weka-query-slice``) this module ingests
pages of its own: a git-like source ``scope-handbook`` at ``draft`` and then
``main``, and one page as version 9.8 of the slice's source. Their text is
written here, so what each question should find is known.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SLICE_SOURCE
from tests.conftest import SLICE_VERSION as VERSION
from wekadocs.graph_store import GraphStore
from wekadocs.query.engine import QueryEngine
from wekadocs.query.tools import Toolbox
from wekadocs.settings import Settings

HANDBOOK = "scope-handbook"
PAGES = {
    # (source, version): {path: text}, ingested in this order
    (HANDBOOK, "draft"): {"runbook.md": (
        "# Rotating the nebula ingest token\n\n"
        "The nebula ingest token of the handbook expires every thirty days.\n")},
    (HANDBOOK, "main"): {"runbook.md": (
        "# Rotating the quasar ingest token\n\n"
        "The quasar ingest token expires every ninety days. Rotate it before it expires:\n\n"
        "`weka quasar token rotate`\n")},
    (SLICE_SOURCE, "9.8"): {"alerts/clock-and-nfs.md": (
        "# Clock skew and NFS\n\n"
        "When the `ClockSkew` alert is raised, check the NFS settings with `weka nfs global-config set`.\n")},
}


@pytest.fixture(scope="module")
def extra(settings: Settings, graph: GraphStore, ingested: dict[str, int], short_tmp: Path) -> None:
    from cluster.vector_owner import vector_store_for
    from pipelines.ingest import Ingestor

    for (source, version), pages in PAGES.items():
        root = short_tmp / f"scope-{source}-{version}"
        for path, text in pages.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
        report = Ingestor(settings, graph, vector_store_for(settings), progress=False).run(
            root, source=source, version=version)
        assert not report.errors, report.errors


@pytest.fixture(scope="module")
def box(toolbox: Toolbox, extra: None) -> Toolbox:
    """A new engine over the same stores: the session's engine may hold the
    list of versions from before this module's pages (it caches it briefly)."""
    e = toolbox.engine
    return Toolbox(QueryEngine(e.guard, e.vectors, e.serving))


def version_of(graph: GraphStore, section_id: str) -> str:
    rows = graph.read("MATCH (s:Section {id: $id}) MATCH (d:Document {id: s.document_id}) RETURN d.version AS v",
                      id=section_id)
    return str(rows[0]["v"])


def test_a_plain_search_covers_the_current_version_of_every_source(box: Toolbox) -> None:
    answer = box.search_documentation("rotate the quasar ingest token", top_k=5)
    assert [(e.path, e.version) for e in answer.evidence[:1]] == [("runbook.md", "main")], answer.answer
    sources = answer.diagnostics["scope"]["sources"]
    assert sources[HANDBOOK] == "main" and sources[SLICE_SOURCE] == VERSION
    assert answer.diagnostics["scope"]["version"] is None
    # the release docs are in the same default scope, at their highest version
    mountd = box.search_documentation("fixed port for NFS mountd", top_k=5)
    assert ("additional-protocols/nfs-support/nfs-support-1.md", VERSION) in [
        (e.path, e.version) for e in mountd.evidence]
    # a caller can still ask for one version
    only_slice = box.search_documentation("rotate the quasar ingest token", version=VERSION, top_k=10)
    assert only_slice.evidence and all(e.version == VERSION for e in only_slice.evidence)
    only_main = box.search_documentation("rotate the quasar ingest token", version="main", top_k=10)
    assert [(e.path, e.version) for e in only_main.evidence] == [("runbook.md", "main")]


def test_a_source_with_names_only_is_current_at_its_last_ingested_version(box: Toolbox) -> None:
    """``draft`` was ingested before ``main``: by default only main's page is in scope."""
    answer = box.search_documentation("the handbook runbook: rotating the ingest token", top_k=10)
    handbook = [e.version for e in answer.evidence if e.path == "runbook.md"]
    assert handbook == ["main"], answer.answer
    asked = box.search_documentation("nebula ingest token", version="draft", top_k=3)
    assert [(e.path, e.version) for e in asked.evidence] == [("runbook.md", "draft")]
    # 9.8 of the slice's source is older than 9.9: not current either
    scope = box.engine.scope(None, None)
    assert (SLICE_SOURCE, "9.8") not in scope.sources and (SLICE_SOURCE, VERSION) in scope.sources


def test_every_tool_defaults_to_the_current_versions(box: Toolbox) -> None:
    traverse = box.traverse_relationships("weka quasar token rotate")
    assert [(e.path, e.version) for e in traverse.evidence] == [("runbook.md", "main")], traverse.answer
    architecture = box.explain_architecture("quasar ingest token")
    assert ("runbook.md", "main") in [(e.path, e.version) for e in architecture.evidence]
    assert "scope-handbook main" in architecture.answer


def test_show_path_stays_in_its_version(box: Toolbox, graph: GraphStore) -> None:
    """In 9.8 one section names both ClockSkew and the command: a 2-hop path.
    Asked for 9.9, the path must not borrow that 9.8 section."""
    older = box.show_path("ClockSkew", "weka nfs global-config set", version="9.8")
    assert [h["type"] for h in older.diagnostics["hops"]] == ["MENTIONS", "MENTIONS"]
    assert [(e.path, e.version) for e in older.evidence] == [("alerts/clock-and-nfs.md", "9.8")]
    answer = box.show_path("ClockSkew", "weka nfs global-config set", version=VERSION)
    hops = answer.diagnostics["hops"]
    assert {version_of(graph, h["section_id"]) for h in hops} <= {VERSION}, hops
    assert {e.section_id for e in answer.evidence} == {h["section_id"] for h in hops}


def test_a_named_version_written_again_becomes_current_at_once(box: Toolbox, settings: Settings,
                                                              graph: GraphStore, short_tmp: Path) -> None:
    """No page is added: only a write to ``draft`` makes it the last ingested,
    and an engine that already holds its lists must see that."""
    from cluster.vector_owner import vector_store_for
    from pipelines.ingest import Ingestor

    assert box.engine.scope(None, None).as_dict()["sources"][HANDBOOK] == "main"
    ingest = Ingestor(settings, graph, vector_store_for(settings), progress=False)
    root = short_tmp / f"scope-{HANDBOOK}-draft"
    (root / "runbook.md").write_text(PAGES[(HANDBOOK, "draft")]["runbook.md"] + "\nReviewed again.\n",
                                     encoding="utf-8")
    try:
        assert ingest.run(root, source=HANDBOOK, version="draft").documents_changed == 1
        assert box.engine.scope(None, None).as_dict()["sources"][HANDBOOK] == "draft"
    finally:  # main current again, as the other modules' default searches expect
        main = short_tmp / f"scope-{HANDBOOK}-main"
        (main / "runbook.md").write_text(PAGES[(HANDBOOK, "main")]["runbook.md"] + "\nReviewed.\n",
                                         encoding="utf-8")
        ingest.run(main, source=HANDBOOK, version="main")
    assert box.engine.scope(None, None).as_dict()["sources"][HANDBOOK] == "main"
