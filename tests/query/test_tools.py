"""The query engine and its nine tools, in-process, over a real ingested slice of the docs.

Other modules ingest other sources into the same graph, and a question without
a version covers every source's current version (tests/query/test_scope.py),
so these tests pass the slice's version: each asks about the slice.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from serve_apps.mcp_tools import build_mcp_server
from tests.conftest import SLICE_SOURCE
from tests.conftest import SLICE_VERSION as VERSION
from tests.conftest import graph_fingerprint
from wekadocs.errors import QueryError
from wekadocs.graph_store import GraphStore
from wekadocs.query.answer import Answer
from wekadocs.query.assembly import open_toolbox
from wekadocs.query.ranking import FEATURES
from wekadocs.query.templates import template, template_names
from wekadocs.query.tools import EDGE_TYPES, Toolbox
from wekadocs.settings import Settings

MOUNTD = "Our firewall needs a fixed port for NFS mountd instead of a random one. How do I pin it?"


def well_formed(answer: Answer) -> None:
    assert answer.answer.strip()
    assert 0.0 <= answer.confidence <= 1.0
    for e in answer.evidence:
        assert len(e.section_id) == 64 and len(e.document_id) == 64
        assert e.version == VERSION
        assert not e.path.startswith("/") and e.path.endswith(".md")
        assert e.heading and e.snippet


def test_search_finds_the_section_that_answers(toolbox: Toolbox) -> None:
    answer = toolbox.search_documentation(MOUNTD, version=VERSION, top_k=5)
    well_formed(answer)
    top = [(e.path, e.heading) for e in answer.evidence]
    assert ("additional-protocols/nfs-support/nfs-support-1.md", "Configure the service mountd port") in top[:3]
    assert answer.diagnostics["version"] == VERSION and answer.diagnostics["degraded"] is False
    assert set(answer.diagnostics["stages_ms"]) >= {"keyword", "vector", "expand", "details", "rank"}
    assert len(answer.evidence) == 5


def test_search_is_deterministic(toolbox: Toolbox) -> None:
    first = toolbox.search_documentation("license capacity deactivate", version=VERSION, top_k=10)
    second = toolbox.search_documentation("license capacity deactivate", version=VERSION, top_k=10)
    assert [e.section_id for e in first.evidence] == [e.section_id for e in second.evidence]
    assert [e.score for e in first.evidence] == sorted((e.score for e in first.evidence), reverse=True)


def test_path_prefix_and_version_filters(toolbox: Toolbox) -> None:
    answer = toolbox.search_documentation("license", version=VERSION, path_prefix="licensing/", top_k=10)
    assert answer.evidence and all(e.path.startswith("licensing/") for e in answer.evidence)
    with pytest.raises(QueryError, match="version '0.1' is not ingested"):
        toolbox.search_documentation("license", version="0.1")
    with pytest.raises(QueryError, match="no page of version"):
        toolbox.search_documentation("license", version=VERSION, path_prefix="no-such-folder/")


@pytest.mark.parametrize("bad, message", [
    ("", "query is empty"),
    ("   ", "query is empty"),
    ("x" * 100_000, "at most 2000"),
])
def test_bad_queries_are_refused_clearly(toolbox: Toolbox, bad: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        toolbox.search_documentation(bad)


@pytest.mark.parametrize("top_k", [0, -1, 51, 10**6, True])
def test_top_k_is_bounded(toolbox: Toolbox, top_k: int) -> None:
    with pytest.raises(QueryError, match="top_k must be an integer from 1 to 50"):
        toolbox.search_documentation("license", top_k=top_k)


def test_injection_text_is_just_words(toolbox: Toolbox, graph: GraphStore) -> None:
    before = graph_fingerprint(graph)
    for hostile in ['"}) MATCH (n) DETACH DELETE n //', "CALL apoc.load.json('file:///etc/passwd')",
                    "title:* OR text:*", "') RETURN 1 UNION MATCH (n) SET n.x = 1 //"]:
        answer = toolbox.search_documentation(hostile, version=VERSION)
        well_formed(answer)
    assert graph_fingerprint(graph) == before


def test_explain_ranking_shows_every_feature(toolbox: Toolbox) -> None:
    answer = toolbox.explain_ranking(MOUNTD, version=VERSION, top_k=3)
    results = answer.diagnostics["results"]
    assert len(results) == 3
    for result in results:
        assert set(result["features"]) == set(FEATURES)
        assert all(0.0 <= v <= 1.0 for v in result["features"].values())
        weighted = sum(answer.diagnostics["weights"][k] * v for k, v in result["features"].items())
        assert weighted == pytest.approx(result["score"], abs=1e-3)
    assert "| semantic |" in answer.answer


def test_every_ranking_feature_tells_results_apart(toolbox: Toolbox) -> None:
    """A feature with the same value for every result of every question ranks
    nothing: explain_ranking must not show one (``recency`` was such)."""
    seen: dict[str, set[float]] = {name: set() for name in FEATURES}
    for query in (MOUNTD, "deactivate a license", "how does tiering to the object store work",
                  "ClockSkew alert"):
        for result in toolbox.explain_ranking(query, version=VERSION, top_k=10).diagnostics["results"]:
            for name, value in result["features"].items():
                seen[name].add(round(value, 6))
    constant = sorted(name for name, values in seen.items() if len(values) < 2)
    assert not constant, f"features constant over 40 results: {constant}"


def test_troubleshoot_a_known_alert(toolbox: Toolbox) -> None:
    answer = toolbox.troubleshoot_error("ClockSkew", version=VERSION)
    well_formed(answer)
    assert answer.diagnostics["error_entity"]["name"] == "ClockSkew"
    assert answer.diagnostics["resolving_sections"], "the alerts table resolves ClockSkew"
    assert any("alerts" in e.path for e in answer.evidence)
    assert answer.confidence >= 0.6


@pytest.mark.parametrize("message, alert", [
    ("Clock skew on server", "ClockSkew"),  # an alert's message, as `weka alerts` shows it
    ("CPU starvation detected in the last minute", "CPUStarvation"),  # not CPUFrequentStarvation
    ("Statistics upload failed", "CloudStatsError"),
    ("NUMA balancing is enabled on a backend server node-7", "BackendNumaBalancingEnabled"),
    ("warning: ClockSkew: clock skew on server 10.0.0.3 is 2.1s", "ClockSkew"),
])
def test_troubleshoot_a_pasted_message(toolbox: Toolbox, message: str, alert: str) -> None:
    answer = toolbox.troubleshoot_error(message, version=VERSION)
    well_formed(answer)
    assert answer.diagnostics["error_entity"]["name"] == alert, answer.diagnostics["error_candidates"]
    assert answer.diagnostics["resolving_sections"], f"the alerts table resolves {alert}"
    assert answer.evidence[0].path == "operation-guide/alerts/list-of-alerts.md"
    assert answer.evidence[0].section_id == answer.diagnostics["resolving_sections"][0]
    assert answer.confidence >= 0.5


def test_troubleshoot_an_unknown_message_falls_back_to_search(toolbox: Toolbox) -> None:
    answer = toolbox.troubleshoot_error("the flux capacitor overheated near the licence", version=VERSION)
    assert answer.diagnostics["error_entity"] is None
    assert answer.confidence < 0.5


def test_traverse_from_an_alert(toolbox: Toolbox) -> None:
    answer = toolbox.traverse_relationships("ClockSkew", depth=1, version=VERSION)
    well_formed(answer)
    edges = answer.diagnostics["edges"]
    assert edges and {e["type"] for e in edges} & {"MENTIONS", "RESOLVES"}
    section_ids = {e.section_id for e in answer.evidence}
    assert section_ids and section_ids <= {e["section_id"] for e in edges}
    assert "operation-guide/alerts/list-of-alerts.md" in {e.path for e in answer.evidence}
    with pytest.raises(QueryError, match="unknown edge types"):
        toolbox.traverse_relationships("ClockSkew", edge_types=["DELETE_ALL"])
    with pytest.raises(QueryError, match="depth must be an integer from 1 to 3"):
        toolbox.traverse_relationships("ClockSkew", depth=7)
    with pytest.raises(QueryError, match="nothing in the graph is named like"):
        toolbox.traverse_relationships("zzqx-no-such-thing")


def test_compare_two_commands_and_one_page_across_versions(toolbox: Toolbox) -> None:
    answer = toolbox.compare_systems("weka nfs global-config set", "weka nfs interface-group add", version=VERSION)
    well_formed(answer)
    assert "| parameters |" in answer.answer
    assert {e.path for e in answer.evidence} >= {"additional-protocols/nfs-support/nfs-support-1.md"}
    assert answer.diagnostics["only_first"] and answer.diagnostics["only_second"]
    same = toolbox.compare_systems("licensing/overview.md", "licensing/overview.md",
                                   version=VERSION, second_version=VERSION)
    assert same.diagnostics == {"added": [], "removed": [], "changed": [], "collection": None, "model": None}


def test_explain_architecture(toolbox: Toolbox) -> None:
    answer = toolbox.explain_architecture("tiering to the object store", version=VERSION)
    well_formed(answer)
    assert answer.evidence[0].path.startswith("weka-system-overview/")


def test_disambiguate_lists_candidates(toolbox: Toolbox) -> None:
    answer = toolbox.disambiguate("mountd", version=VERSION)
    well_formed(answer)
    assert answer.diagnostics["candidates"]
    assert all("mountd" in c["name"].lower() for c in answer.diagnostics["candidates"][:1])
    assert answer.evidence and all("mountd" in e.snippet.lower() for e in answer.evidence)


def test_show_path_between_an_alert_and_its_command(toolbox: Toolbox) -> None:
    answer = toolbox.show_path("DriveCriticalWarnings", "weka cluster drive deactivate", version=VERSION)
    well_formed(answer)
    hops = answer.diagnostics["hops"]
    assert 1 <= len(hops) <= 3
    # every hop's section is cited: none lies outside the version
    assert {e.section_id for e in answer.evidence} == {h["section_id"] for h in hops}
    assert "operation-guide/alerts/list-of-alerts.md" in {e.path for e in answer.evidence}
    with pytest.raises(QueryError, match="same node"):
        toolbox.show_path("ClockSkew", "ClockSkew")


def test_configs_affecting_a_command(toolbox: Toolbox) -> None:
    answer = toolbox.list_configs_affecting("weka nfs global-config set", version=VERSION)
    settings = answer.diagnostics["settings"]
    assert settings and any("mountd" in s["name"] for s in settings)
    well_formed(answer)
    assert "additional-protocols/nfs-support/nfs-support-1.md" in {e.path for e in answer.evidence}


def test_answers_name_the_collection_and_model_their_vectors_came_from(toolbox: Toolbox,
                                                                       settings: Settings) -> None:
    searched = toolbox.search_documentation(MOUNTD, version=VERSION).diagnostics
    assert (searched["collection"], searched["model"]) == (settings.vector_collection, settings.embedding_model)
    troubleshoot = toolbox.troubleshoot_error("Clock skew on server", version=VERSION).diagnostics
    assert troubleshoot["collection"] == settings.vector_collection
    graph_only = toolbox.list_configs_affecting("weka nfs global-config set", version=VERSION).diagnostics
    assert (graph_only["collection"], graph_only["model"]) == (None, None)  # no vector search in this tool


def test_without_vectors_answers_are_degraded_not_errors(settings: Settings, graph: GraphStore,
                                                          ingested: dict[str, int]) -> None:
    keyword_only = open_toolbox(settings, None, graph=graph)
    answer = keyword_only.search_documentation(MOUNTD, version=VERSION)
    assert answer.diagnostics["degraded"] is True
    assert "no vector store" in answer.diagnostics["degraded_reason"]
    assert (answer.diagnostics["collection"], answer.diagnostics["model"]) == (None, None)
    top = [(e.path, e.heading) for e in answer.evidence[:5]]
    assert ("additional-protocols/nfs-support/nfs-support-1.md", "Configure the service mountd port") in top


def test_tools_read_and_offer_only_edges_that_ingest_writes(graph: GraphStore, ingested: dict[str, int]) -> None:
    """DEPENDS_ON and AFFECTS were read by explain_architecture and
    list_configs_affecting and offered by traverse_relationships, but nothing
    wrote them: every edge type a tool reads or offers must be in the graph
    after ingesting the slice."""
    derived = graph.read(
        "MATCH (d:Document {source: $source})-[:HAS_SECTION]->(s:Section) WITH collect(s.id) AS ids "
        "MATCH ()-[r]->() WHERE r.derived_from_section_id IN ids RETURN DISTINCT type(r) AS type",
        source=SLICE_SOURCE)
    structure = graph.read(
        "MATCH (:Document {source: $source})-[h:HAS_SECTION]->(:Section)-[r]-() "
        "RETURN DISTINCT type(r) AS type UNION RETURN 'HAS_SECTION' AS type", source=SLICE_SOURCE)
    held = {row["type"] for row in derived + structure}
    assert set(EDGE_TYPES) <= held, f"traverse_relationships offers unwritten {sorted(set(EDGE_TYPES) - held)}"
    read = {name for t in template_names()
            for group in re.findall(r"\[\w*:([A-Z_|]+)", template(t).cypher) for name in group.split("|")}
    assert read <= held, f"templates read edges nothing writes: {sorted(read - held)}"
    tools = asyncio.run(build_mcp_server(lambda: None).list_tools())  # type: ignore[arg-type,return-value]
    offered = " ".join(f"{t.description} {json.dumps(t.input_schema)}" for t in tools)
    for promise in ("DEPENDS_ON", "AFFECTS", "EQUIVALENT_TO", "depends on", "affects"):
        assert promise not in offered, f"a tool description still promises {promise!r}"
