"""Hybrid retrieval over the graph and the vectors, behind one object.

A search runs in stages, each timed into ``diagnostics.stages_ms``:
keyword (Neo4j full-text) and vector (Qdrant) seeds → reciprocal-rank fusion →
one typed hop out of the best seeds → details → ranking. Every Cypher
statement is a template from ``cypher/`` and goes through the validator.

When the vector store or the embedding model fails, the search goes on with
keyword + graph and says so (``diagnostics.degraded``); the graph is the
system of record, so its failures are errors.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from wekadocs.cypher_guard import CypherGuard
from wekadocs.errors import QueryError, VectorStoreError
from wekadocs.graph_schema import FULLTEXT_INDEX
from wekadocs.query.answer import Evidence, snippet
from wekadocs.query.query_text import MAX_QUERY_CHARS, content_terms, lucene_query
from wekadocs.query.ranking import confidence, score_candidates, word_set
from wekadocs.query.retrieval import Candidate, Pool
from wekadocs.query.scope import Scope, SourceVersion, current_versions, source_versions, version_key
from wekadocs.query.templates import template
from wekadocs.vectors import VectorStore
from wekadocs.vectors.serving import ServingModel

__all__ = ["QueryEngine", "Scope", "SearchResult", "MAX_TOP_K", "check_query", "check_top_k", "evidence_of",
           "heading_key", "one_per_heading"]

MAX_TOP_K = 50
KEYWORD_DEPTH = 50  # keyword hits taken into the pool
KEYWORD_FETCH_CAP = 5000
VECTOR_DEPTH = 50  # vector hits taken into the pool
SEEDS = 10  # fused candidates whose neighbours join the pool
SCOPE_CACHE_ENTRIES = 256  # version and page lists kept, by source versions and path prefix

@dataclass
class SearchResult:
    """``ranked``: the answer, one part per split section. ``candidates``: the
    whole pool in scope, every part of a split section, in the same order
    (``wekadocs eval`` ranks its baselines from it by their own scores)."""

    ranked: list[Candidate]
    scope: Scope
    diagnostics: dict[str, Any]
    confidence: float
    terms: list[str]
    candidates: list[Candidate] = field(default_factory=list)

    def evidence(self, top_k: int) -> list[Evidence]:
        return [evidence_of(c, self.terms) for c in self.ranked[:top_k]]


def evidence_of(candidate: Candidate, terms: Sequence[str], score: float | None = None) -> Evidence:
    d = candidate.details
    heading = str(d.get("heading") or "") or str(d.get("page_title") or "")
    return Evidence(
        section_id=candidate.section_id, document_id=str(d.get("document_id", "")),
        path=str(d.get("path", "")), heading=heading, anchor=str(d.get("anchor") or ""),
        version=str(d.get("version", "")), score=round(candidate.score if score is None else score, 4),
        # a heading with no text of its own (its subsections hold it) shows its trail
        snippet=snippet(str(d.get("text") or "") or " > ".join(d.get("trail") or [heading]), list(terms)),
    )


class QueryEngine:
    """Args:
        guard: runs the templates (validated, read-only, server-side timeout).
        vectors: the vector store, or None to run keyword + graph only.
        serving: which collection the alias serves and its model's encoder
            (``wekadocs.vectors.serving``); None with ``vectors`` None.
    """

    def __init__(self, guard: CypherGuard, vectors: VectorStore | None, serving: ServingModel | None) -> None:
        self.guard = guard
        self.vectors = vectors
        self.serving = serving
        # why the last vector search failed (None once one succeeds), so the
        # shell that owns this engine can reconnect the store
        self.vector_failure: str | None = None
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query-engine")
        # Versions and page lists, each kept with the catalogue stamp it was
        # read under. A time-to-live here hid every page added or renamed
        # since the list was read: push -> searchable took the full 10 s.
        self._cache: OrderedDict[tuple[str, ...], tuple[Any, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._version_count = 1  # sizes the keyword fetch; the last versions() read
        # Word sets of section texts for the ranking features: a pure function
        # of the text, and popular sections are candidates query after query.
        self._word_set = lru_cache(maxsize=4096)(word_set)

    # -- scope ---------------------------------------------------------------

    def catalog(self) -> tuple[Any, ...]:
        """The stamp of the page catalogue (``catalog.cypher``): one cheap read
        per search, instead of re-reading the page lists."""
        rows = self.run("catalog", limit=1)
        return (int(rows[0]["documents"]), rows[0]["newest"], rows[0]["edited"]) if rows else (0, None, None)

    def versions(self) -> list[str]:
        """Every ingested version label, oldest first."""
        return sorted({v.version for v in self.source_versions()}, key=version_key)

    def source_versions(self, stamp: tuple[Any, ...] | None = None) -> list[SourceVersion]:
        stamp = self.catalog() if stamp is None else stamp
        held = self._cached(("sources",), stamp,
                            lambda: source_versions(self.run("source_versions", limit=200)))
        self._version_count = max(1, len({v.version for v in held}))
        return held

    def scope(self, version: str | None, path_prefix: str | None) -> Scope:
        """The pages a question covers: ``version`` across every source that
        has it, or without one the current version of each source
        (``scope.py`` says which that is)."""
        stamp = self.catalog()
        held = self.source_versions(stamp)
        if not held:
            raise QueryError("nothing is ingested yet: run `wekadocs ingest PATH` first")
        if version:
            pairs = sorted((v.source, v.version) for v in held if v.version == version)
            if not pairs:
                known = ", ".join(self.versions())
                raise QueryError(f"version {version!r} is not ingested; have {known}")
        else:
            pairs = sorted(current_versions(held).items())
        prefix = (path_prefix or "").lstrip("/")
        rows = self._cached(("docs", prefix, *(f"{s}\0{v}" for s, v in pairs)), stamp, lambda: self.run(
            "scope_documents", pairs=[{"source": s, "version": v} for s, v in pairs], path_prefix=prefix,
            limit=1))
        ids = tuple(rows[0]["ids"]) if rows else ()
        labels = {v for _, v in pairs}
        admitted = {(v.source, v.version) for v in held if v.version in labels}
        scope = Scope(version or None, tuple(pairs), prefix, ids,
                      wider_by_version=bool(prefix) or not admitted <= set(pairs))
        if not ids:
            raise QueryError(f"no page of {scope.label} lies under {prefix!r}")
        return scope

    # -- search --------------------------------------------------------------

    def search(self, query: str, *, version: str | None = None, path_prefix: str | None = None,
               scope: Scope | None = None, top_k: int = 10, use_keyword: bool = True,
               use_vector: bool = True, use_graph: bool = True) -> SearchResult:
        """Ranked sections for a question, in ``scope`` when a tool has one
        already, else in ``version`` and ``path_prefix``. The ``use_*``
        switches exist for the baselines ``wekadocs eval`` measures against."""
        query = check_query(query)
        top_k = check_top_k(top_k)
        stages: dict[str, float] = {}
        diagnostics: dict[str, Any] = {"degraded": False, "stages_ms": stages}
        with _timed(stages, "scope"):
            scope = scope or self.scope(version, path_prefix)
        # Keyword and vector retrieval are independent: run them side by side
        # (the model and the drivers release the GIL while they wait or compute).
        keyword = self._workers.submit(_timed_call, stages, "keyword", self._keyword, query, scope) \
            if use_keyword else None
        vector_hits, query_vector, collection = [], None, ""
        if use_vector:
            with _timed(stages, "vector"):
                vector_hits, query_vector, collection = self._vector(query, scope, diagnostics)
        else:
            diagnostics.update(collection=None, model=None)
        pool = Pool()
        pool.add_keyword(keyword.result() if keyword else [])
        pool.add_vector(vector_hits)
        if use_graph and len(pool):
            with _timed(stages, "expand"):
                seeds = pool.seeds(SEEDS)
                pool.add_neighbours(self.run("neighbours", seeds=seeds, max_fanout=30, per_seed=6,
                                             limit=200), seeds)
        with _timed(stages, "details"):
            # The store scores the candidates vector search did not return
            # while their details are fetched.
            unscored = [c.section_id for c in pool.by_id.values() if c.cosine is None]
            scoring = self._workers.submit(self._similarities, collection, unscored, query_vector, diagnostics) \
                if query_vector is not None and unscored else None
            candidates = self._details(pool, scope)
            for section_id, score in (scoring.result() if scoring else {}).items():
                pool.by_id[section_id].cosine = score
        with _timed(stages, "rank"):
            terms = content_terms(query)
            scored = score_candidates(candidates, terms, query, self._word_set)
            ranked = one_per_heading(scored)
        diagnostics.update(version=scope.version, scope=scope.as_dict(), candidates=len(pool), seeds_keyword=sum(
            1 for c in pool.by_id.values() if c.keyword_rank is not None), seeds_vector=sum(
            1 for c in pool.by_id.values() if c.vector_rank is not None))
        return SearchResult(ranked, scope, diagnostics, confidence(ranked), terms, scored)

    def _keyword(self, query: str, scope: Scope) -> list[tuple[str, float]]:
        lucene = lucene_query(query)
        if not lucene:
            return []
        # The index spans every version and source; fetch enough hits that the
        # best KEYWORD_DEPTH of this scope are among them (a page repeated in
        # 22 versions scores the same in each).
        fetch = min(KEYWORD_FETCH_CAP, KEYWORD_DEPTH * 2 * self._version_count)
        rows = self.run("keyword_sections", index=FULLTEXT_INDEX, query=lucene, fetch=fetch,
                        doc_ids=list(scope.document_ids), limit=KEYWORD_DEPTH)
        return [(str(r["section_id"]), float(r["score"])) for r in rows]

    def _vector(self, query: str, scope: Scope,
                diagnostics: dict[str, Any]) -> tuple[list[tuple[str, float]], np.ndarray | None, str]:
        """Vector hits, the query's vector and the collection searched; the
        answer's diagnostics name the collection and model (None: not used)."""
        diagnostics.update(collection=None, model=None)
        if self.vectors is None or self.serving is None:
            diagnostics.update(degraded=True, degraded_reason="no vector store configured")
            return [], None, ""
        # A version asked for is one filter value; the current versions of
        # several sources are any of theirs, and the pages in scope decide.
        # Where the filter admits pages out of scope, search deeper.
        versions = scope.versions
        where: dict[str, Any] = {"version": versions[0] if len(versions) == 1 else versions}
        try:
            serving = self.serving.current(self.vectors)
            vector = serving.encode_queries([query])[0]
            depth = VECTOR_DEPTH * (4 if scope.wider_by_version else 1)
            hits = self.vectors.search(serving.collection, vector.tolist(), depth, where)
        except (VectorStoreError, OSError, RuntimeError) as exc:
            self.vector_failure = f"vector search failed: {exc}"
            diagnostics.update(degraded=True, degraded_reason=self.vector_failure)
            return [], None, ""
        self.vector_failure = None
        diagnostics.update(collection=serving.collection, model=serving.model.name, dims=serving.model.dims)
        allowed = set(scope.document_ids)
        kept = [(h.id, h.score) for h in hits if h.payload.get("document_id") in allowed]
        return kept[:VECTOR_DEPTH], vector, serving.collection

    def _details(self, pool: Pool, scope: Scope) -> list[Candidate]:
        ids = pool.ids()
        for start in range(0, len(ids), 200):
            chunk = ids[start:start + 200]
            for row in self.run("section_details", ids=chunk, limit=200):
                candidate = pool.by_id[str(row["section_id"])]
                candidate.entity_names = list(row.pop("entity_names"))
                candidate.details = row
        allowed = set(scope.document_ids)
        return [c for c in pool.by_id.values() if c.details.get("document_id") in allowed]

    def _similarities(self, collection: str, ids: list[str], query_vector: np.ndarray,
                      diagnostics: dict[str, Any]) -> dict[str, float]:
        """Semantic scores of candidates found by keyword or graph retrieval,
        from the collection the query vector was searched in."""
        if self.vectors is None:
            return {}
        try:
            return self.vectors.similarities(collection, query_vector.tolist(), ids)
        except VectorStoreError as exc:
            diagnostics.update(degraded=True, degraded_reason=f"vector scoring failed: {exc}")
            return {}

    # -- plumbing ------------------------------------------------------------

    def run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run one template through the validator."""
        return self.guard.run(template(name).cypher, **params)

    def _cached(self, key: tuple[str, ...], stamp: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        """``load()``'s value, read again only when the catalogue changed. The
        keys include a caller's ``path_prefix``: the least recently used go
        past SCOPE_CACHE_ENTRIES, so distinct prefixes cannot grow memory."""
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                self._cache.move_to_end(key)
                return hit[1]
        value = load()
        with self._cache_lock:
            self._cache[key] = (stamp, value)
            self._cache.move_to_end(key)
            while len(self._cache) > SCOPE_CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return value


def check_query(query: str, *, what: str = "query") -> str:
    if not isinstance(query, str):
        raise QueryError(f"{what} must be a string")
    query = query.strip()
    if not query:
        raise QueryError(f"{what} is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"{what} has {len(query)} characters; at most {MAX_QUERY_CHARS} are allowed")
    return query


def check_top_k(top_k: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise QueryError(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
    return top_k


def heading_key(candidate: Candidate) -> tuple[str, str, str]:
    """What the parts of one split section share."""
    d = candidate.details
    return (str(d.get("document_id")), str(d.get("anchor")), str(d.get("heading")))


def one_per_heading(ranked: list[Candidate]) -> list[Candidate]:
    """A long section split into parts shows once, as its best part in
    ``ranked``'s order (whichever order that is)."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for c in ranked:
        key = heading_key(c)
        if key not in seen:
            seen.add(key)
            kept.append(c)
    return kept


def _timed_call(stages: dict[str, float], name: str, work: Callable[..., Any], *args: Any) -> Any:
    with _timed(stages, name):
        return work(*args)


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = round((time.perf_counter() - started) * 1000, 2)
