"""The nine MCP tools, as plain methods over the query engine.

Each returns an :class:`Answer`: Markdown, evidence down to the section, a
confidence and diagnostics. Inputs are checked here (the MCP schema checks
types first, but in-process callers get the same clear errors).

Graph tools start from a *subject*: an entity or section id, or a name that
the entity full-text index resolves (an exact, case-insensitive name match
wins over a partial one). ``troubleshoot_error`` matches a pasted message
against the alert and event rows instead (``error_match.py``).

Every tool answers from one scope (``scope.py``): the version asked for, or
else the current version of each source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wekadocs.errors import QueryError
from wekadocs.graph_schema import DERIVED_EDGE_TYPES, ENTITY_INDEX
from wekadocs.query.answer import Answer, Evidence
from wekadocs.query.engine import QueryEngine, Scope, check_query, check_top_k, evidence_of
from wekadocs.query.error_match import MIN_SCORE, ErrorMatch, match_errors, message_words
from wekadocs.query.query_text import content_terms, lucene_words
from wekadocs.query.ranking import WEIGHTS
from wekadocs.query.retrieval import Candidate

__all__ = ["Toolbox", "EDGE_TYPES", "MAX_DEPTH"]

MAX_DEPTH = 3
EDGE_TYPES: tuple[str, ...] = (*DERIVED_EDGE_TYPES, "MENTIONS", "HAS_SUBSECTION")
_NAMED = ["Command", "Configuration", "Error", "Concept", "Parameter", "Component", "Procedure"]
_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Subject:
    id: str
    label: str
    name: str
    exact: bool


class Toolbox:
    def __init__(self, engine: QueryEngine) -> None:
        self.engine = engine

    # -- retrieval tools -----------------------------------------------------

    def search_documentation(self, query: str, version: str | None = None, path_prefix: str | None = None,
                             top_k: int = 10) -> Answer:
        result = self.engine.search(query, version=version, path_prefix=path_prefix, top_k=top_k)
        evidence = result.evidence(top_k)
        lines = [f"Sections answering **{_md(query)}** ({result.scope.label}):", ""]
        lines += [f"{n}. **{_md(e.heading)}** — `{e.path}#{e.anchor}` (score {e.score:.3f})\n   > {_oneline(e.snippet)}"
                  for n, e in enumerate(evidence, 1)] or ["No section matched."]
        return Answer(answer="\n".join(lines), evidence=evidence, confidence=result.confidence,
                      diagnostics=result.diagnostics)

    def explain_ranking(self, query: str, version: str | None = None, path_prefix: str | None = None,
                        top_k: int = 10) -> Answer:
        result = self.engine.search(query, version=version, path_prefix=path_prefix, top_k=top_k)
        top = result.ranked[:top_k]
        header = "| # | heading | score | " + " | ".join(WEIGHTS) + " | via |"
        rows = [header, "|" + "---|" * (len(WEIGHTS) + 4)]
        for n, c in enumerate(top, 1):
            values = " | ".join(f"{c.features[name]:.2f}" for name in WEIGHTS)
            via = ", ".join(sorted(_sources(c)))
            rows.append(f"| {n} | {_md(str(c.details.get('heading', '')))} | {c.score:.3f} | {values} | {via} |")
        weights = ", ".join(f"{name} {weight:g}" for name, weight in WEIGHTS.items())
        diagnostics = dict(result.diagnostics, weights=WEIGHTS, results=[{
            "section_id": c.section_id, "score": round(c.score, 4), "features": c.features,
            "keyword_rank": c.keyword_rank, "vector_rank": c.vector_rank, "reached_via": sorted(_sources(c)),
        } for c in top])
        text = f"Ranking features for **{_md(query)}** (score = weighted sum: {weights}).\n\n" + "\n".join(rows)
        return Answer(answer=text, evidence=result.evidence(top_k), confidence=result.confidence,
                      diagnostics=diagnostics)

    def troubleshoot_error(self, error: str, version: str | None = None, top_k: int = 5) -> Answer:
        error = check_query(error, what="error")
        top_k = check_top_k(top_k)
        scope = self.engine.scope(version, None)
        search = self.engine.search(error, scope=scope, top_k=top_k)
        matches = self._match_errors(error, scope)
        best = matches[0] if matches and matches[0].score >= MIN_SCORE else None
        candidates = [{"name": m.name, "score": m.score} for m in matches[:5]]
        if best is None:
            evidence = search.evidence(top_k)
            text = (f"No alert or error like **{_md(error)}** is known in {scope.label}; "
                    "the closest sections:\n\n" + _list(evidence))
            return Answer(answer=text, evidence=evidence, confidence=round(search.confidence * 0.5, 3),
                          diagnostics=dict(search.diagnostics, error_entity=None, error_candidates=candidates))
        found = Subject(best.id, "Error", best.name, best.exact)
        paths = self.engine.run("troubleshooting_path", error_id=found.id, doc_ids=list(scope.document_ids),
                                limit=20)
        context = self.engine.run("error_context", error_id=found.id, doc_ids=list(scope.document_ids), limit=10)
        commands = list(context[0]["commands"]) if context else []
        mentioned = list(context[0]["sections"]) if context else []
        resolving = [str(r["section_id"]) for r in paths]
        evidence = self._evidence(resolving + mentioned, scope, content_terms(error), top_k)
        cited = {e.section_id for e in evidence}
        evidence += [e for e in search.evidence(top_k) if e.section_id not in cited]
        lines = [f"**{_md(found.name)}** ({found.label}) in {scope.label}.", ""]
        if not best.exact:
            lines += [f"Matched on: {_md(best.line)}", ""]
        shown = {e.section_id: e for e in evidence}
        for row in paths:
            where = shown.get(str(row["section_id"]))
            if where is not None:
                lines.append(f"- Resolved in **{_md(where.heading)}** (`{where.path}#{where.anchor}`):\n"
                             f"  > {_oneline(where.snippet)}")
            lines += [f"  {s['order']}. {_md(str(s['step']))}" + (f" — runs `{'`, `'.join(s['commands'])}`"
                      if s["commands"] else "") for s in row["steps"]]
        if commands:
            lines.append(f"- Related commands: `{'`, `'.join(commands)}`")
        if not paths:
            lines.append("No procedure is recorded as resolving it; the sections that mention it follow.")
        lines += ["", _list(evidence[:top_k])]
        score = 0.9 if found.exact else 0.9 * best.score
        return Answer(answer="\n".join(lines), evidence=evidence[: top_k * 2],
                      confidence=round(score * (1.0 if paths else 0.7), 3),
                      diagnostics={"error_entity": found.__dict__, "match_score": best.score,
                                   "error_candidates": candidates, "resolving_sections": resolving,
                                   "related_commands": commands, "degraded": search.diagnostics["degraded"],
                                   "scope": scope.as_dict(), "collection": search.diagnostics.get("collection"),
                                   "model": search.diagnostics.get("model")})

    def explain_architecture(self, topic: str, version: str | None = None, top_k: int = 8) -> Answer:
        """Defining sections, and the REQUIRES edges the prerequisites of the
        docs give it (the docs never state "X depends on Y" between entities,
        so no DEPENDS_ON/AFFECTS chain is promised)."""
        topic = check_query(topic, what="topic")
        top_k = check_top_k(top_k)
        scope = self.engine.scope(version, None)
        search = self.engine.search(topic, scope=scope, top_k=top_k)
        found = self._find(topic, ["Concept", "Component", "Configuration", "Command"])
        needs: list[dict[str, Any]] = []
        needed_by: list[dict[str, Any]] = []
        if found is not None:
            docs = list(scope.document_ids)
            needs = self.engine.run("dependency_chain", start_id=found.id, depth=2, doc_ids=docs, limit=50)
            needed_by = self.engine.run("impact_analysis", start_id=found.id, depth=2, doc_ids=docs, limit=50)
        evidence = search.evidence(top_k)
        lines = [f"How **{_md(topic)}** works, from the defining sections of {scope.label}:", "",
                 _list(evidence)]
        if needs:
            lines += ["", "It requires: " + ", ".join(f"{r['name']} ({r['label']})" for r in needs)]
        if needed_by:
            lines += ["", "Required by: " + ", ".join(f"{r['name']} ({r['label']})" for r in needed_by)]
        return Answer(answer="\n".join(lines), evidence=evidence, confidence=search.confidence,
                      diagnostics=dict(search.diagnostics, entity=found.__dict__ if found else None,
                                       requires=needs, required_by=needed_by))

    # -- graph tools ---------------------------------------------------------

    def traverse_relationships(self, start: str, edge_types: Sequence[str] | None = None, depth: int = 1,
                               version: str | None = None, limit: int = 50) -> Answer:
        types = list(edge_types or EDGE_TYPES)
        unknown = sorted(set(types) - set(EDGE_TYPES))
        if unknown:
            raise QueryError(f"unknown edge types {unknown}; choose from {list(EDGE_TYPES)}")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
            raise QueryError(f"depth must be an integer from 1 to {MAX_DEPTH}, got {depth!r}")
        limit = check_top_k(limit)
        scope = self.engine.scope(version, None)
        subject = self._resolve(start, _NAMED + ["Section"])
        rows = self.engine.run("traverse", start_id=subject.id, types=types, depth=depth,
                               doc_ids=list(scope.document_ids), limit=limit)
        evidence = self._evidence([str(r["section_id"]) for r in rows], scope, content_terms(subject.name), limit)
        lines = [f"Neighbourhood of **{_md(subject.name)}** ({subject.label}), depth ≤ {depth}:", ""]
        lines += [f"- hop {r['hop']}: -[{r['type']}]- {r['label']} **{_md(str(r['name']))}**"
                  f" (from section `{str(r['section_id'])[:12]}`)" for r in rows] or ["No edges of those types."]
        return Answer(answer="\n".join(lines), evidence=evidence, confidence=_graph_confidence(subject, rows),
                      diagnostics={"subject": subject.__dict__, "edges": rows, "version": scope.version,
                                   "scope": scope.as_dict()})

    def compare_systems(self, first: str, second: str, version: str | None = None,
                        second_version: str | None = None) -> Answer:
        first, second = check_query(first, what="first"), check_query(second, what="second")
        scope_a = self.engine.scope(version, None)
        scope_b = self.engine.scope(second_version, None) if second_version else scope_a
        if _is_page(first):
            return self._compare_pages(first, second if _is_page(second) else first, scope_a, scope_b)
        facts = [self._facts(name, scope) for name, scope in ((first, scope_a), (second, scope_b))]
        (a, fa), (b, fb) = facts
        only_a = sorted(set(fa["parameters"]) - set(fb["parameters"]))
        only_b = sorted(set(fb["parameters"]) - set(fa["parameters"]))
        lines = [f"| | {_md(a.name)} ({_short(scope_a)}) | {_md(b.name)} ({_short(scope_b)}) |", "|---|---|---|",
                 f"| kind | {a.label} | {b.label} |",
                 f"| sections | {len(fa['sections'])} | {len(fb['sections'])} |",
                 f"| parameters | {', '.join(fa['parameters']) or '—'} | {', '.join(fb['parameters']) or '—'} |",
                 f"| requires | {', '.join(fa['requires']) or '—'} | {', '.join(fb['requires']) or '—'} |", "",
                 f"Only {_md(a.name)}: {', '.join(only_a) or 'nothing'}. Only {_md(b.name)}: {', '.join(only_b) or 'nothing'}."]
        evidence = (self._evidence(fa["sections"], scope_a, content_terms(a.name), 5)
                    + self._evidence(fb["sections"], scope_b, content_terms(b.name), 5))
        return Answer(answer="\n".join(lines), evidence=evidence,
                      confidence=0.85 if a.exact and b.exact else 0.55,
                      diagnostics={"first": a.__dict__, "second": b.__dict__,
                                   "only_first": only_a, "only_second": only_b})

    def disambiguate(self, term: str, version: str | None = None) -> Answer:
        term = check_query(term, what="term")
        scope = self.engine.scope(version, None)
        candidates = self._lookup(term, _NAMED, limit=8)
        if not candidates:
            raise QueryError(f"nothing in the graph is named like {term!r}")
        lines = [f"**{_md(term)}** can mean:", ""]
        evidence: list[Evidence] = []
        for c in candidates:
            facts = self.engine.run("comparison", entity_id=c.id, doc_ids=list(scope.document_ids), limit=3)
            sections = list(facts[0]["sections"]) if facts else []
            shown = self._evidence(sections[:1], scope, content_terms(term), 1)
            where = f" — e.g. “{_md(shown[0].heading)}” in `{shown[0].path}`" if shown else ""
            lines.append(f"- {c.label} **{_md(c.name)}**{where}")
            evidence += shown
        return Answer(answer="\n".join(lines), evidence=evidence,
                      confidence=round(1.0 / len(candidates), 3),
                      diagnostics={"candidates": [c.__dict__ for c in candidates], "version": scope.version,
                                   "scope": scope.as_dict()})

    def show_path(self, source: str, target: str, version: str | None = None) -> Answer:
        scope = self.engine.scope(version, None)
        a = self._resolve(source, _NAMED + ["Section"])
        b = self._resolve(target, _NAMED + ["Section"])
        if a.id == b.id:
            raise QueryError("source and target name the same node")
        rows = self.engine.run("shortest_path", source_id=a.id, target_id=b.id,
                               doc_ids=list(scope.document_ids), limit=10)
        evidence = self._evidence([str(r["section_id"]) for r in rows], scope,
                                  content_terms(f"{a.name} {b.name}"), 10)
        if not rows:
            text = (f"No path of at most {MAX_DEPTH} hops joins **{_md(a.name)}** and **{_md(b.name)}** "
                    f"in {scope.label}.")
        else:
            hops = [f"{n}. {_md(str(r['from_name']))} -[{r['type']}]- {r['label']} **{_md(str(r['name']))}**"
                    for n, r in enumerate(rows, 1)]
            text = f"**{_md(a.name)}** → **{_md(b.name)}** in {len(rows)} hops ({scope.label}):\n\n" + "\n".join(hops)
        return Answer(answer=text, evidence=evidence, confidence=_graph_confidence(a, rows, b),
                      diagnostics={"source": a.__dict__, "target": b.__dict__, "hops": rows,
                                   "scope": scope.as_dict()})

    def list_configs_affecting(self, target: str, version: str | None = None, limit: int = 20) -> Answer:
        """A command's parameters, and the settings documented with the target
        (the docs give no "setting X affects Y" statements to build AFFECTS from)."""
        limit = check_top_k(limit)
        scope = self.engine.scope(version, None)
        subject = self._resolve(target, _NAMED + ["Section"])
        rows = self.engine.run("configs_affecting", target_id=subject.id, doc_ids=list(scope.document_ids),
                               limit=limit)
        how = {1: "its parameter", 2: "set in the same sections"}
        lines = [f"Settings that change **{_md(subject.name)}** ({scope.label}):", ""]
        lines += [f"- {r['label']} `{r['name']}` — {how[int(r['via'])]} ({r['sections']} sections)" for r in rows]
        if not rows:
            lines.append("None recorded.")
        section_ids = [str(s) for r in rows for s in r["evidence"]]
        evidence = self._evidence(section_ids, scope, content_terms(subject.name), limit)
        return Answer(answer="\n".join(lines), evidence=evidence, confidence=_graph_confidence(subject, rows),
                      diagnostics={"subject": subject.__dict__, "settings": rows})

    # -- helpers -------------------------------------------------------------

    def _lookup(self, term: str, labels: list[str], limit: int) -> list[Subject]:
        words = lucene_words(term, keep_stopwords=True)
        if not words:
            return []
        # every word must occur in the name: "zzqx no such thing" must not match "thing"
        required = " ".join(f"+{word}" for word in words.split())
        rows = self.engine.run("entity_lookup", index=ENTITY_INDEX, query=required, labels=labels, limit=limit)
        wanted = term.strip().casefold()
        subjects = [Subject(str(r["id"]), str(r["label"]), str(r["name"]), str(r["name"]).casefold() == wanted)
                    for r in rows]
        return sorted(subjects, key=lambda s: not s.exact)  # stable: exact names first, then by score

    def _match_errors(self, message: str, scope: Scope) -> list[ErrorMatch]:
        """The Errors in scope a message may be about, best first."""
        words = message_words(message)
        if not words:
            return []
        rows = self.engine.run("error_lines", doc_ids=list(scope.document_ids), words=words, eol="\n", limit=200)
        return match_errors(message, rows)

    def _resolve(self, term: str, labels: list[str]) -> Subject:
        found = self._find(term, labels)
        if found is None:
            raise QueryError(f"nothing in the graph is named like {term!r}; try search_documentation")
        return found

    def _find(self, term: str, labels: list[str]) -> Subject | None:
        """An id names its node; a name goes through the entity index."""
        term = check_query(term, what="subject")
        if _ID.match(term):
            rows = self.engine.run("section_details", ids=[term], limit=1)
            name = str(rows[0]["heading"]) if rows else term
            return Subject(term, "Section" if rows else "node", name, True)
        found = self._lookup(term, [label for label in labels if label != "Section"], limit=10)
        return found[0] if found else None

    def _facts(self, name: str, scope: Scope) -> tuple[Subject, dict[str, Any]]:
        subject = self._resolve(name, _NAMED)
        rows = self.engine.run("comparison", entity_id=subject.id, doc_ids=list(scope.document_ids), limit=20)
        facts = rows[0] if rows else {"parameters": [], "sections": [], "requires": []}
        return subject, {k: list(facts[k]) for k in ("parameters", "sections", "requires")}

    def _compare_pages(self, first: str, second: str, a: Scope, b: Scope) -> Answer:
        rows_a, version_a = self._page(first, a)
        rows_b, version_b = self._page(second, b)
        if not rows_a and not rows_b:
            raise QueryError(f"no page {first!r} in {a.label} or {second!r} in {b.label}")
        heads_a = {str(r["heading"]): str(r["checksum"]) for r in rows_a}
        heads_b = {str(r["heading"]): str(r["checksum"]) for r in rows_b}
        added = [h for h in heads_b if h not in heads_a]
        removed = [h for h in heads_a if h not in heads_b]
        changed = [h for h in heads_a if h in heads_b and heads_a[h] != heads_b[h]]
        lines = [f"`{first}` in {version_a} vs `{second}` in {version_b}:", "",
                 f"- only in {version_b}: {', '.join(map(_md, added)) or 'nothing'}",
                 f"- only in {version_a}: {', '.join(map(_md, removed)) or 'nothing'}",
                 f"- changed: {', '.join(map(_md, changed)) or 'nothing'}",
                 f"- unchanged: {len(heads_a) - len(removed) - len(changed)} sections"]
        ids_b = [str(r["section_id"]) for r in rows_b if r["heading"] in added + changed]
        ids_a = [str(r["section_id"]) for r in rows_a if r["heading"] in removed]
        evidence = self._evidence(ids_b, b, [], 20) + self._evidence(ids_a, a, [], 20)
        return Answer(answer="\n".join(lines), evidence=evidence, confidence=1.0,
                      diagnostics={"added": added, "removed": removed, "changed": changed})

    def _page(self, path: str, scope: Scope) -> tuple[list[dict[str, Any]], str]:
        """A page's sections in a scope, and its version ("—" when it has none there)."""
        rows = self.engine.run("as_of_version", path=path, doc_ids=list(scope.document_ids), limit=200)
        documents = {str(r["document_id"]): str(r["version"]) for r in rows}
        if len(documents) > 1:
            raise QueryError(f"{path!r} is a page of several sources in {scope.label}; pass a version")
        return rows, next(iter(documents.values()), "—")

    def _evidence(self, section_ids: Sequence[str], scope: Scope, terms: list[str], limit: int) -> list[Evidence]:
        """Evidence for sections in the order given (each once), inside the scope."""
        ordered = list(dict.fromkeys(section_ids))[:200]
        if not ordered:
            return []
        rows = {str(r["section_id"]): r for r in self.engine.run("section_details", ids=ordered, limit=200)}
        allowed = set(scope.document_ids)
        kept = [sid for sid in ordered if sid in rows and rows[sid]["document_id"] in allowed][:limit]
        return [evidence_of(Candidate(sid, details=rows[sid]), terms, score=1.0 - n / (len(kept) + 1))
                for n, sid in enumerate(kept)]


def _sources(c: Candidate) -> set[str]:
    found = set(c.reached_via)
    if c.keyword_rank is not None:
        found.add("keyword")
    if c.vector_rank is not None:
        found.add("vector")
    return found


def _graph_confidence(subject: Subject, rows: Sequence[Any], other: Subject | None = None) -> float:
    """Exact names and found edges make a graph answer trustworthy; a partial
    name match or an empty neighbourhood does not."""
    exact = subject.exact and (other is None or other.exact)
    return round((0.9 if exact else 0.6) * (1.0 if rows else 0.5), 3)


def _short(scope: Scope) -> str:
    """A scope in a table header: its version, or "current"."""
    return scope.version or "current"


def _is_page(text: str) -> bool:
    return text.endswith((".md", ".html", ".htm"))


def _list(evidence: Sequence[Evidence]) -> str:
    return "\n".join(f"- **{_md(e.heading)}** — `{e.path}#{e.anchor}`" for e in evidence) or "- (none)"


def _oneline(text: str) -> str:
    """A quote from the docs: their own Markdown kept, on one line."""
    return " ".join(text.split())


def _md(text: str) -> str:
    """Text from the docs, made safe to embed in our Markdown (no stray tables or emphasis)."""
    return " ".join(text.split()).replace("|", "\\|").replace("*", "\\*")
