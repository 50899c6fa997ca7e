"""How many of a tree's resolvable page->page links the graph holds as LINKS_TO.

The resolvable links come from the tree's own files through the project's
parser (relative links with or without an anchor, folder links resolved to
the folder's README.md, links within a page left out), counted as distinct
(page, target page) pairs and as (section, target, anchor) occurrences. The
graph side reads the LINKS_TO edges of the ingested source and version.

    python perf/check_links.py /path/to/weka-docs/4.4 --version 4.4 --source weka-docs

Prints figures; never passes or fails on them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.links import page_links
from pipelines.parse import PARSERS, parse_document
from wekadocs.embedder import TokenCounter
from wekadocs.errors import WekadocsError
from wekadocs.graph_store import GraphStore
from wekadocs.settings import load_settings

_EDGES = (
    "MATCH (d:Document {source: $source, version: $version})-[:HAS_SECTION]->(s:Section)-[r:LINKS_TO]->(t) "
    "WITH d, s, r, CASE WHEN t:Document THEN t.id ELSE t.document_id END AS target "
    "MATCH (td:Document {id: target}) WHERE td.path <> d.path "
    "RETURN d.path AS page, s.id AS section, td.path AS target, r.anchor AS anchor"
)


def corpus_links(root: Path, source: str, version: str) -> set[tuple[str, str, str, str]]:
    """(page, section id, target page, anchor) for every resolvable link in the tree."""
    settings = load_settings()
    count_tokens = TokenCounter()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PARSERS)
    pages = {p.relative_to(root).as_posix() for p in files}
    links: set[tuple[str, str, str, str]] = set()
    for file in files:
        path = file.relative_to(root).as_posix()
        try:
            parsed = parse_document(file.read_bytes(), path=path, source=source, version=version, source_uri="",
                                    count_tokens=count_tokens, token_budget=settings.section_token_budget,
                                    max_bytes=int(settings.max_file_mb * 1_000_000))
        except WekadocsError:
            continue  # the ingest reports and skips it too
        links |= {(path, sid, target, anchor) for sid, target, anchor in page_links(parsed, pages)}
    return links


def report(name: str, expected: set[tuple[str, ...]], found: set[tuple[str, ...]]) -> None:
    held = len(expected & found)
    share = held / len(expected) if expected else 1.0
    print(f"{name}: {held} of {len(expected)} in the graph ({share:.0%}); "
          f"{len(found - expected)} graph edges not among them")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--version", required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    expected = corpus_links(args.root, args.source, args.version)
    with GraphStore.connect(load_settings()) as graph:
        rows = graph.read(_EDGES, source=args.source, version=args.version)
    found = {(r["page"], r["section"], r["target"], r["anchor"]) for r in rows}
    for name, keep in (("all pages", lambda page: True), ("without SUMMARY.md", lambda page: page != "SUMMARY.md")):
        exp = {link for link in expected if keep(link[0])}
        got = {link for link in found if keep(link[0])}
        report(f"{name}, page pairs", {(p, t) for p, _, t, _ in exp}, {(p, t) for p, _, t, _ in got})
        report(f"{name}, links (section, target, anchor)", exp, got)


if __name__ == "__main__":
    main()
