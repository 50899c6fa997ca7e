"""Links between pages against the real Neo4j: the same edges whatever order
pages are written in, and edges that come back with their target page."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.extract import extract_document
from pipelines.links import page_links
from pipelines.parse import parse_document
from wekadocs.embedder import TokenCounter
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore
from wekadocs.graph_writer import DocumentWrite, GraphWriter
from wekadocs.model import ParsedDocument

FOLDER = "additional-protocols/s3"  # 19 pages that link to each other a lot
VERSION = "1.0"

Edge = tuple[str, int, str, str]  # source page, section order, target page, anchor


@pytest.fixture(scope="module")
def writer(graph: GraphStore) -> GraphWriter:
    apply_schema(graph)
    return GraphWriter(graph)


@pytest.fixture(scope="module")
def count_tokens() -> TokenCounter:
    return TokenCounter("all-MiniLM-L6-v2")


def parse(count_tokens: TokenCounter, source: str, path: str, raw: bytes) -> DocumentWrite:
    parsed = parse_document(raw, path=path, source=source, version=VERSION, source_uri="",
                            count_tokens=count_tokens, token_budget=256, max_bytes=5_000_000)
    return DocumentWrite(parsed, extract_document(parsed))


def write_one_by_one(writer: GraphWriter, writes: list[DocumentWrite]) -> None:
    """One document per transaction, like Ray Data's batches at their smallest."""
    for item in writes:
        writer.write([item], writer.section_states([item.parsed.document.id]), "test")


def link_edges(graph: GraphStore, source: str) -> set[Edge]:
    rows = graph.read(
        "MATCH (d:Document {source: $source})-[:HAS_SECTION]->(s:Section)-[r:LINKS_TO]->(t) "
        "WITH d, s, r, CASE WHEN t:Document THEN t.id ELSE t.document_id END AS target "
        "MATCH (td:Document {id: target}) WHERE td.path <> d.path "
        "RETURN d.path AS page, s.order AS order, td.path AS target, r.anchor AS anchor",
        source=source,
    )
    return {(r["page"], r["order"], r["target"], r["anchor"]) for r in rows}


def expected_edges(parsed: list[ParsedDocument]) -> set[Edge]:
    """The tree's resolvable page->page links, from the parser itself."""
    pages = {p.document.path for p in parsed}
    edges: set[Edge] = set()
    for page in parsed:
        order = {s.id: s.order for s in page.sections}
        edges |= {(page.document.path, order[sid], target, anchor)
                  for sid, target, anchor in page_links(page, pages)}
    return edges


def test_links_are_the_same_in_any_write_order(writer: GraphWriter, graph: GraphStore,
                                               count_tokens: TokenCounter, corpus_root: Path) -> None:
    root = corpus_root / "4.4"
    files = sorted(root.joinpath(FOLDER).rglob("*.md"))
    raw = {f.relative_to(root).as_posix(): f.read_bytes() for f in files}
    orders = {"links-forward": sorted(raw), "links-reverse": sorted(raw, reverse=True)}
    found = {}
    for source, paths in orders.items():
        writes = [parse(count_tokens, source, path, raw[path]) for path in paths]
        write_one_by_one(writer, writes)
        found[source] = link_edges(graph, source)
    expected = expected_edges([w.parsed for w in writes])
    assert len(expected) >= 20, f"the slice should have page->page links to test, has {len(expected)}"
    assert found["links-forward"] == found["links-reverse"], (
        f"forward only: {sorted(found['links-forward'] - found['links-reverse'])[:5]}, "
        f"reverse only: {sorted(found['links-reverse'] - found['links-forward'])[:5]}")
    missing = expected - found["links-forward"]
    assert not missing, f"{len(missing)} of {len(expected)} resolvable links missing, e.g. {sorted(missing)[:5]}"
    assert found["links-forward"] == expected


PAGES = {
    "index.md": "# Start\n\nSee [setup](setup.md#install-it), [old](old.md) and [the new one](new.md).\n",
    "setup.md": "# Setup\n\nIntro.\n\n## Install it\n\nRun the installer.\n",
    "old.md": "# A page about to be renamed\n\nSome text.\n",
}


def test_a_removed_target_added_back_or_renamed_gets_its_links(writer: GraphWriter, graph: GraphStore,
                                                               count_tokens: TokenCounter) -> None:
    source = "links-lifecycle"
    writes = {path: parse(count_tokens, source, path, text.encode()) for path, text in PAGES.items()}
    write_one_by_one(writer, [writes["index.md"], writes["setup.md"], writes["old.md"]])
    links = {("index.md", 0, "setup.md", "install-it"), ("index.md", 0, "old.md", "")}
    assert link_edges(graph, source) == links

    writer.delete_documents([writes["setup.md"].parsed.document.id])
    assert link_edges(graph, source) == {("index.md", 0, "old.md", "")}
    write_one_by_one(writer, [writes["setup.md"]])
    assert link_edges(graph, source) == links, "a page added back gets the links into it again"

    # a rename: the old path goes, the new path comes; index.md itself is not re-written
    renamed = parse(count_tokens, source, "new.md", PAGES["old.md"].encode())
    writer.delete_documents([writes["old.md"].parsed.document.id])
    write_one_by_one(writer, [renamed])
    assert link_edges(graph, source) == {("index.md", 0, "setup.md", "install-it"), ("index.md", 0, "new.md", "")}
    target = graph.read(
        "MATCH (:Document {source: $source, path: 'index.md'})-[:HAS_SECTION]->(:Section)"
        "-[r:LINKS_TO {anchor: 'install-it'}]->(t:Section) RETURN t.title AS title", source=source)
    assert target == [{"title": "Install it"}], "an anchored link leads to the section with that anchor"


def test_a_graph_written_before_link_records_gains_its_links_on_the_next_ingest(
        writer: GraphWriter, graph: GraphStore, count_tokens: TokenCounter) -> None:
    source = "links-upgrade"
    writes = [parse(count_tokens, source, path, text.encode()) for path, text in PAGES.items()]
    write_one_by_one(writer, writes)
    links = link_edges(graph, source)
    assert links
    # What an older writer left: no link records, the edges of a lucky order only, no format.
    graph.write_all([
        ("MATCH (l:PageLink) WHERE l.section_id IN $ids DETACH DELETE l", {"ids": _section_ids(graph, source)}),
        ("MATCH (:Document {source: $source})-[:HAS_SECTION]->(:Section)-[r:LINKS_TO]->() DELETE r",
         {"source": source}),
        ("MATCH (d:Document {source: $source}) REMOVE d.write_format "
         "WITH d MATCH (d)-[:HAS_SECTION]->(s:Section) SET s.state = 'older writer'", {"source": source}),
    ])
    assert link_edges(graph, source) == set()
    stored = writer.documents(source, VERSION)
    assert {checksum for _, checksum in stored.values()} == {""}, "an older page must count as changed"
    write_one_by_one(writer, writes)  # what the next ingest does with pages it counts as changed
    assert link_edges(graph, source) == links
    assert all(checksum for _, checksum in writer.documents(source, VERSION).values())


def _section_ids(graph: GraphStore, source: str) -> list[str]:
    rows = graph.read("MATCH (:Document {source: $source})-[:HAS_SECTION]->(s:Section) RETURN s.id AS id",
                      source=source)
    return [row["id"] for row in rows]
