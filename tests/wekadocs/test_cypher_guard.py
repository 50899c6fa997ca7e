"""The Cypher guard against a real Neo4j: hostile statements never run, good ones do.

Every hostile statement is checked twice: the guard raises ``CypherRejected``
with a message naming the rule, and a snapshot of the database taken before
and after is unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, LiteralString, NamedTuple

import pytest

from wekadocs.cypher_guard import DEFAULT_LIMITS, CypherGuard, GuardLimits, check_plan, check_statement
from wekadocs.errors import CypherRejected, GraphStoreError
from wekadocs.graph_schema import apply_schema
from wekadocs.graph_store import GraphStore

MARKER = "GuardPwned"  # the label every hostile write tries to create

SEEDS = [
    {"id": "guard-s1", "title": "Quokkaguard cluster setup", "text": "Install the quokkaguard cluster."},
    {"id": "guard-s2", "title": "Mounting filesystems", "text": "Mount a filesystem on each client."},
    {"id": "guard-s3", "title": "Tiering", "text": "Attach an object store bucket."},
]


class Attack(NamedTuple):
    id: str
    cypher: LiteralString
    params: dict[str, Any]
    reason: str  # a regex the rejection message must match
    layer: str = "static"  # "plan": only EXPLAIN can tell
    limits: GuardLimits = DEFAULT_LIMITS


ATTACKS = [
    # Write clauses, in every case.
    Attack("create", "CREATE (n:GuardPwned {id: $id}) RETURN n LIMIT 5", {"id": "x"}, "'CREATE'"),
    Attack("create-lower", "create (n:GuardPwned) return n limit 5", {}, "'create'"),
    Attack("create-mixed", "MATCH (s:Section) WITH s CrEaTe (n:GuardPwned) RETURN n LIMIT 5", {}, "'CrEaTe'"),
    Attack("merge", "MERGE (n:GuardPwned {id: $id}) RETURN n LIMIT 5", {"id": "x"}, "'MERGE'"),
    Attack("set-label", "MATCH (s:Section {id: $id}) SET s:GuardPwned RETURN s LIMIT 5", {"id": "guard-s1"}, "'SET'"),
    Attack("set-map", "MATCH (s:Section {id: $id}) set s += $props RETURN s LIMIT 5",
           {"id": "guard-s1", "props": {"title": "x"}}, "'set'"),
    Attack("remove", "MATCH (s:Section {id: $id}) REMOVE s.title RETURN s LIMIT 5", {"id": "guard-s1"}, "'REMOVE'"),
    Attack("delete", "MATCH (s:Section {id: $id}) DELETE s RETURN count(*) AS n LIMIT 5", {"id": "guard-s3"}, "'DELETE'"),
    Attack("detach-delete", "MATCH (n) DETACH DELETE n RETURN count(*) AS n LIMIT 1", {}, "'DETACH'"),
    Attack("detach-delete-lower", "match (n) detach delete n return count(*) as n limit 1", {}, "'detach'"),
    Attack("drop-index", "DROP INDEX section_text", {}, "'DROP'"),
    Attack("foreach", "MATCH (s:Section) FOREACH (x IN [1] | CREATE (:GuardPwned)) RETURN s LIMIT 5", {}, "'FOREACH'"),
    Attack("load-csv", "LOAD CSV FROM $url AS row RETURN row LIMIT 5", {"url": "file:///etc/passwd"}, "'LOAD'"),
    Attack("in-transactions", "MATCH (s:Section) CALL { CREATE (n:GuardPwned) } IN TRANSACTIONS RETURN s LIMIT 5",
           {}, "'CREATE'"),
    Attack("in-transactions-read", "MATCH (s:Section) CALL { WITH s RETURN s AS t } IN TRANSACTIONS RETURN s LIMIT 5",
           {}, "'TRANSACTIONS'"),
    Attack("subquery-write", "CALL { CREATE (n:GuardPwned) RETURN n } RETURN n LIMIT 5", {}, "'CREATE'"),
    Attack("scoped-subquery-write", "MATCH (s:Section) CALL (s) { SET s.title = $t } RETURN s LIMIT 5", {"t": "x"}, "'SET'"),
    Attack("use-system", "USE system SHOW USERS YIELD user RETURN user LIMIT 5", {}, "'USE'"),
    Attack("use-neo4j", "USE neo4j MATCH (s:Section) RETURN s LIMIT 5", {}, "'USE'"),
    Attack("profile-runs-it", "PROFILE MATCH (s:Section) RETURN s LIMIT 5", {}, "'PROFILE'"),
    Attack("cypher-options", "CYPHER runtime=slotted MATCH (s:Section) RETURN s LIMIT 5", {}, "'CYPHER'"),
    Attack("insert-gql", "INSERT (n:GuardPwned) RETURN n LIMIT 5", {}, "'INSERT'"),
    # Text spliced into the statement: quotes of any kind never pass.
    Attack("string-splice",
           'MATCH (s:Section) WHERE s.title = "x"}) MATCH (n) DETACH DELETE n //" RETURN s LIMIT 5',
           {}, "string literals"),
    Attack("single-quoted", "MATCH (s:Section) WHERE s.title = 'x' RETURN s LIMIT 5", {}, "string literals"),
    Attack("backtick-procedure", "CALL `apoc`.`load`.`json`($u) YIELD value RETURN value LIMIT 5",
           {"u": "file:///etc/passwd"}, "backtick"),
    Attack("unicode-escape", "MATCH (s:Section) RETURN s LIMIT 5 \\u003B DETACH DELETE s", {}, "unexpected character"),
    # Procedures and functions outside the allowlist.
    Attack("apoc-load-json", "CALL apoc.load.json('file:///etc/passwd') YIELD value RETURN value LIMIT 5",
           {}, "string literals"),
    Attack("apoc-load-json-param", "CALL apoc.load.json($url) YIELD value RETURN value LIMIT 5",
           {"url": "file:///etc/passwd"}, "procedure 'apoc.load.json' is not allowed"),
    Attack("dbms-procedures", "CALL dbms.procedures() YIELD name RETURN name LIMIT 5", {}, "'dbms.procedures'"),
    Attack("dbms-components", "call dbms.components() yield name return name limit 5", {}, "'dbms.components'"),
    Attack("db-labels", "CALL db.labels() YIELD label RETURN label LIMIT 5", {}, "'db.labels'"),
    Attack("fulltext-drop", "CALL db.index.fulltext.drop($i) RETURN 1 AS x LIMIT 1", {"i": "section_text"},
           "'db.index.fulltext.drop'"),
    Attack("fulltext-case-variant", "CALL DB.INDEX.FULLTEXT.QUERYNODES($i, $q) YIELD node RETURN node LIMIT 5",
           {"i": "section_text", "q": "x"}, "not allowed"),
    Attack("tx-metadata", "CALL tx.setMetaData($m) RETURN 1 AS x LIMIT 1", {"m": {}}, "'tx.setMetaData'"),
    Attack("apoc-function", "MATCH (s:Section) RETURN apoc.text.join([s.id], $sep) AS x LIMIT 5", {"sep": ","},
           "'apoc.text.join'"),
    Attack("db-function", "RETURN db.nameFromElementId($e) AS x LIMIT 1", {"e": "x"}, "'db.nameFromElementId'"),
    Attack("optional-call", "OPTIONAL CALL db.index.fulltext.queryNodes($i, $q) YIELD node RETURN node LIMIT 5",
           {"i": "section_text", "q": "x"}, "OPTIONAL"),
    # Unbounded or too deep traversals.
    Attack("star", "MATCH (s:Section {id: $id})-[*]->(m) RETURN m LIMIT 5", {"id": "guard-s1"}, "upper bound"),
    Attack("open-upper", "MATCH (s:Section {id: $id})-[*2..]->(m) RETURN m LIMIT 5", {"id": "guard-s1"}, "upper bound"),
    Attack("upper-9", "MATCH (s:Section {id: $id})-[:LINKS_TO*..9]->(m) RETURN m LIMIT 5", {"id": "guard-s1"},
           "depth 9"),
    Attack("depth-20", "MATCH (s:Section {id: $id})<-[*1..20]-(m) RETURN m LIMIT 5", {"id": "guard-s1"}, "depth 20"),
    Attack("shortest-unbounded",
           "MATCH (a:Section {id: $a}), (b:Section {id: $b}) MATCH p = shortestPath((a)-[*]-(b)) RETURN p LIMIT 5",
           {"a": "guard-s1", "b": "guard-s3"}, "upper bound"),
    Attack("all-shortest-deep",
           "MATCH (a:Section {id: $a}), (b:Section {id: $b}) "
           "MATCH p = allShortestPaths((a)-[*..10]-(b)) RETURN p LIMIT 5",
           {"a": "guard-s1", "b": "guard-s3"}, "depth 10"),
    Attack("quantified-plus", "MATCH (a:Section {id: $id})-->+(b) RETURN b LIMIT 5", {"id": "guard-s1"}, "upper bound"),
    Attack("quantified-open", "MATCH (a:Section {id: $id})((x)-[:LINKS_TO]->(y)){1,}(b) RETURN b LIMIT 5",
           {"id": "guard-s1"}, "upper bound"),
    Attack("shortest-gql", "MATCH p = SHORTEST 1 (a:Section {id: $id})-[:LINKS_TO]->*(b) RETURN p LIMIT 5",
           {"id": "guard-s1"}, "upper bound"),
    # Unbounded results.
    Attack("no-limit", "MATCH (s:Section) RETURN s", {}, "must end with LIMIT"),
    Attack("limit-10000", "MATCH (s:Section) RETURN s LIMIT 10000", {}, "LIMIT 10000 is outside"),
    Attack("limit-param-huge", "MATCH (s:Section) RETURN s LIMIT $k", {"k": 10**6}, "LIMIT 1000000 is outside"),
    Attack("limit-param-negative", "MATCH (s:Section) RETURN s LIMIT $k", {"k": -1}, "outside"),
    Attack("limit-param-bool", "MATCH (s:Section) RETURN s LIMIT $k", {"k": True}, "must be an integer"),
    Attack("limit-param-string", "MATCH (s:Section) RETURN s LIMIT $k", {"k": "5"}, "must be an integer"),
    Attack("limit-param-missing", "MATCH (s:Section) RETURN s LIMIT $k", {}, r"missing parameters: \$k"),
    Attack("limit-expression", "MATCH (s:Section) RETURN s LIMIT 5 + 100000", {}, "single integer"),
    Attack("limit-then-more", "MATCH (s:Section) WITH s LIMIT 5 MATCH (n) RETURN n", {}, "must end with LIMIT"),
    Attack("union-unlimited-part",
           "MATCH (s:Section) RETURN s.id AS id UNION MATCH (d:Document) RETURN d.id AS id LIMIT 5",
           {}, "each UNION part"),
    # Several statements, comments, look-alikes and whitespace tricks.
    Attack("second-statement", "MATCH (s:Section) RETURN s LIMIT 5; MATCH (n) DETACH DELETE n", {}, "one statement"),
    Attack("line-comment", "MATCH (s:Section) RETURN s LIMIT 5 // ; DROP INDEX section_text", {}, "comments"),
    Attack("block-comment", "MATCH (s:Section) /* harmless */ DETACH DELETE s RETURN 1 AS x LIMIT 5", {}, "comments"),
    Attack("cyrillic-create", "\u0421REATE (n:GuardPwned) RETURN n LIMIT 5", {}, "U\\+0421"),
    Attack("fullwidth-semicolon", "MATCH (s:Section) RETURN s LIMIT 5\uff1b MATCH (n) DETACH DELETE n", {}, "U\\+FF1B"),
    Attack("zero-width-split", "MATCH (s:Section) CRE\u200bATE (n:GuardPwned) RETURN n LIMIT 5", {}, "U\\+200B"),
    Attack("no-break-space", "MATCH\u00a0(s:Section) RETURN s LIMIT 5", {}, "U\\+00A0"),
    Attack("line-separator", "MATCH (s:Section) RETURN s LIMIT 5\u2028MATCH (n) DETACH DELETE n", {}, "U\\+2028"),
    Attack("vertical-tab", "MATCH (s:Section)\x0bRETURN s LIMIT 5", {}, "unexpected character"),
    Attack("nul-byte", "MATCH (s:Section) RETURN s LIMIT 5\x00 DETACH DELETE s", {}, "unexpected character"),
    # Template and parameters drifting apart.
    Attack("unused-parameter", "MATCH (s:Section {id: $id}) RETURN s LIMIT 5", {"id": "guard-s1", "idd": 1}, "not used"),
    # Only the planner can tell: scans of everything, or more rows than allowed.
    Attack("all-nodes", "MATCH (n) RETURN n LIMIT 5", {}, "AllNodesScan", "plan"),
    Attack("all-relationships", "MATCH ()-[r]->() RETURN r LIMIT 5", {}, "AllRelationshipsScan", "plan"),
    Attack("label-scan-over-threshold", "MATCH (s:Section) RETURN s.id AS id LIMIT 5", {}, "NodeByLabelScan", "plan",
           GuardLimits(max_estimated_rows=1)),
]


class Snapshot(NamedTuple):
    nodes: int
    relationships: int
    digest: str  # labels and property keys of every node, plus the token lists
    markers: int


def snapshot(graph: GraphStore) -> Snapshot:
    nodes = graph.read("MATCH (n) RETURN labels(n) AS labels, keys(n) AS keys, properties(n) AS props")
    rels = graph.read("MATCH ()-[r]->() RETURN type(r) AS type, keys(r) AS keys")
    tokens = graph.read(
        "CALL db.labels() YIELD label WITH collect(label) AS labels "
        "CALL db.propertyKeys() YIELD propertyKey WITH labels, collect(propertyKey) AS keys "
        "CALL db.relationshipTypes() YIELD relationshipType "
        "RETURN labels, keys, collect(relationshipType) AS types"
    )
    shape = sorted(repr(sorted(row.items())) for row in nodes + rels) + [repr(sorted(tokens[0].items()))]
    markers = graph.read("MATCH (n) WHERE $marker IN labels(n) RETURN count(n) AS n", marker=MARKER)[0]["n"]
    digest = hashlib.sha256("\n".join(shape).encode()).hexdigest()
    return Snapshot(len(nodes), len(rels), digest, markers)


def _remove_seeds(graph: GraphStore) -> None:
    graph.write("MATCH (s:Section) WHERE s.id STARTS WITH 'guard-' DETACH DELETE s")
    graph.write("MATCH (n) WHERE $marker IN labels(n) DETACH DELETE n", marker=MARKER)


@pytest.fixture(scope="module")
def seeded(graph: GraphStore) -> Iterator[GraphStore]:
    """Three linked sections (s1 -> s2 -> s3), removed again afterwards."""
    apply_schema(graph)
    _remove_seeds(graph)
    graph.write("UNWIND $rows AS row CREATE (s:Section) SET s = row", rows=SEEDS)
    graph.write(
        "MATCH (a:Section {id: 'guard-s1'}), (b:Section {id: 'guard-s2'}), (c:Section {id: 'guard-s3'}) "
        "CREATE (a)-[:LINKS_TO]->(b)-[:LINKS_TO]->(c)"
    )
    yield graph
    _remove_seeds(graph)


def test_the_snapshot_sees_a_write(seeded: GraphStore) -> None:
    """Without this, an unchanged snapshot would prove nothing."""
    before = snapshot(seeded)
    seeded.write("CREATE (:GuardPwned {id: 'guard-marker'})")
    try:
        after = snapshot(seeded)
        assert after.markers == 1 and after.nodes == before.nodes + 1 and after.digest != before.digest
    finally:
        seeded.write("MATCH (n:GuardPwned {id: 'guard-marker'}) DELETE n")
    assert snapshot(seeded) == before


def test_corpus_is_large_and_ids_are_unique() -> None:
    assert len(ATTACKS) >= 25
    assert len({attack.id for attack in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.id for attack in ATTACKS])
def test_hostile_statement_is_rejected_and_nothing_runs(seeded: GraphStore, attack: Attack) -> None:
    guard = CypherGuard(seeded, attack.limits)
    before = snapshot(seeded)
    with pytest.raises(CypherRejected, match=attack.reason):
        guard.run(attack.cypher, **attack.params)
    after = snapshot(seeded)
    assert after == before
    assert after.markers == 0
    assert guard.rejections == 1
    # The static check refuses without a round trip; plan rejections EXPLAIN once.
    assert guard.explains == (1 if attack.layer == "plan" else 0)


@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (n:GuardPwned) RETURN n LIMIT 5",
        "MATCH (s:Section) SET s.title = 1 RETURN s LIMIT 5",
        "MATCH (s:Section) DETACH DELETE s",
        "FOREACH (x IN [1] | CREATE (:GuardPwned))",
        "MATCH (s:Section) CALL { WITH s CREATE (:GuardPwned) } IN TRANSACTIONS RETURN s LIMIT 5",
        "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row LIMIT 5",
        "CALL dbms.components() YIELD name RETURN name LIMIT 5",
        "MATCH (a:Section)-[*]->(b) RETURN b LIMIT 5",
        "MATCH p = SHORTEST 1 (a:Section)-->+(b:Section) RETURN p LIMIT 5",
    ],
)
def test_the_plan_check_alone_catches_writes_and_unbounded_paths(seeded: GraphStore, cypher: LiteralString) -> None:
    """Defence in depth: even a statement that slipped past the text check is refused."""
    before = snapshot(seeded)
    with pytest.raises(CypherRejected, match="writes|procedure|unbounded"):
        check_plan(seeded.explain(cypher, {}))
    assert snapshot(seeded) == before


def test_a_simple_template_returns_the_seeded_rows(seeded: GraphStore) -> None:
    guard = CypherGuard(seeded)
    rows = guard.run(
        "MATCH (s:Section) WHERE s.id STARTS WITH $prefix "
        "RETURN s.id AS id, s.title AS title ORDER BY id LIMIT $limit",
        prefix="guard-",
        limit=10,
    )
    assert rows == [{"id": seed["id"], "title": seed["title"]} for seed in SEEDS]
    assert guard.rejections == 0


def test_a_bounded_expansion_follows_links(seeded: GraphStore) -> None:
    guard = CypherGuard(seeded)
    rows = guard.run(
        "MATCH (a:Section {id: $id})-[:LINKS_TO*1..2]->(b:Section) RETURN b.id AS id ORDER BY id LIMIT $limit",
        id="guard-s1",
        limit=10,
    )
    assert rows == [{"id": "guard-s2"}, {"id": "guard-s3"}]


def test_fulltext_search_through_the_allowed_procedure(seeded: GraphStore) -> None:
    guard = CypherGuard(seeded)
    rows = guard.run(
        # the options map's key `limit` is a key, not a LIMIT clause
        "CALL db.index.fulltext.queryNodes($index, $q, {limit: $fetch}) YIELD node, score "
        "WHERE node.id STARTS WITH $prefix RETURN node.id AS id, score ORDER BY score DESC LIMIT $k",
        index="section_text",
        q="quokkaguard",
        prefix="guard-",
        fetch=50,
        k=5,
    )
    assert [row["id"] for row in rows] == ["guard-s1"]
    assert rows[0]["score"] > 0


def test_read_subqueries_unions_and_literal_limits_pass(seeded: GraphStore) -> None:
    guard = CypherGuard(seeded)
    counted = guard.run(
        "MATCH (a:Section {id: $id}) CALL (a) { MATCH (a)-[:LINKS_TO]->(b) RETURN count(b) AS out } "
        "RETURN a.id AS id, out LIMIT 1",
        id="guard-s2",
    )
    assert counted == [{"id": "guard-s2", "out": 1}]
    union = guard.run(
        "MATCH (a:Section {id: $a}) RETURN a.id AS id LIMIT 1 UNION ALL MATCH (b:Section {id: $b}) RETURN b.id AS id LIMIT 200",
        a="guard-s1",
        b="guard-s3",
    )
    assert sorted(row["id"] for row in union) == ["guard-s1", "guard-s3"]


def test_a_label_scan_under_the_threshold_passes(seeded: GraphStore) -> None:
    """The statement ``label-scan-over-threshold`` refuses, under the default limits."""
    # A filter no index serves, so the plan scans the label. Other tests' sections
    # share it; their ids are hex, which sorts before "guard-".
    rows = CypherGuard(seeded).run(
        "MATCH (s:Section) WHERE s.text ENDS WITH $dot RETURN s.id AS id ORDER BY id DESC LIMIT 200", dot=".")
    assert {seed["id"] for seed in SEEDS} <= {row["id"] for row in rows}


def test_the_plan_cache_explains_each_statement_once(seeded: GraphStore) -> None:
    guard = CypherGuard(seeded, plan_cache_size=2)
    one: LiteralString = "MATCH (s:Section {id: $id}) RETURN s.title AS title LIMIT 1"
    assert guard.run(one, id="guard-s1") == [{"title": SEEDS[0]["title"]}]
    assert guard.run(one, id="guard-s2") == [{"title": SEEDS[1]["title"]}]
    assert guard.explains == 1
    guard.run("MATCH (s:Section {id: $id}) RETURN s.id AS id LIMIT 1", id="guard-s1")
    guard.run("MATCH (s:Section {id: $id}) RETURN s.text AS text LIMIT 1", id="guard-s1")
    assert guard.explains == 3
    guard.run(one, id="guard-s3")  # evicted by the two newer statements: explained again
    assert guard.explains == 4


def test_the_server_refuses_writes_sent_through_read(seeded: GraphStore) -> None:
    before = snapshot(seeded)
    with pytest.raises(GraphStoreError, match="AccessMode|read access mode"):
        seeded.read("CREATE (n:GuardPwned {id: 'guard-ro'}) RETURN n.id AS id")
    with pytest.raises(GraphStoreError, match="AccessMode|read access mode"):
        seeded.read("MATCH (s:Section {id: $id}) SET s.title = 'changed' RETURN s.id AS id", id="guard-s1")
    assert snapshot(seeded) == before


# ---------------------------------------------------------------- without a server


@pytest.mark.parametrize(
    ("pattern", "accepted"),
    [
        ("-[*1..3]->", True),
        ("-[:LINKS_TO*1..2]->", True),
        ("-[r * 0 .. 3]-", True),
        ("-[*..3]->", True),
        ("-[*3]->", True),
        ("-->{1,3}", True),
        ("-->{2}", True),
        ("-[*]->", False),
        ("-[*2..]->", False),
        ("-[*..9]->", False),
        ("-[*1..20]->", False),
        ("-[*4]->", False),
        ("-->+", False),
        ("-->*", False),
        ("-->{1,}", False),
        ("-->{,4}", False),
    ],
)
def test_variable_length_bounds(pattern: str, accepted: bool) -> None:
    cypher = f"MATCH (a:Section {{id: $id}}){pattern}(b) RETURN b LIMIT 5"
    if accepted:
        check_statement(cypher, {"id": 1})
    else:
        with pytest.raises(CypherRejected, match="variable-length"):
            check_statement(cypher, {"id": 1})


@pytest.mark.parametrize("limit", [0, 1, 200])
def test_limits_up_to_the_cap_pass(limit: int) -> None:
    check_statement("MATCH (s:Section) RETURN s LIMIT $k", {"k": limit})
    check_statement(f"MATCH (s:Section) RETURN s LIMIT {limit}", {})


def test_limits_come_from_the_settings_object() -> None:
    tight = GuardLimits(max_depth=1, max_limit=10)
    with pytest.raises(CypherRejected, match="outside 0..10"):
        check_statement("MATCH (s:Section) RETURN s LIMIT 11", {}, tight)
    with pytest.raises(CypherRejected, match="max_depth 1"):
        check_statement("MATCH (a:Section)-[*1..2]->(b) RETURN b LIMIT 1", {}, tight)


def test_keywords_are_judged_as_tokens_not_substrings() -> None:
    """Property keys and longer names that contain a keyword are not keywords."""
    check_statement(
        "MATCH (s:Section {id: $id}) RETURN s.set AS set_at, s.created_at AS created, s.delete AS x LIMIT 5",
        {"id": 1},
    )


def _plan(operator: str, details: str = "", rows: float = 1.0, *children: dict[str, Any]) -> dict[str, Any]:
    return {"operatorType": operator, "args": {"Details": details, "EstimatedRows": rows}, "children": list(children)}


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        (_plan("ProduceResults@neo4j", "", 1, _plan("SetLabels@neo4j", "s:X")), "SetLabels"),
        (_plan("ProduceResults", "", 1, _plan("Merge@neo4j", "(n)")), "Merge"),
        (_plan("ProduceResults", "", 1, _plan("DetachDelete@neo4j", "n")), "DetachDelete"),
        (_plan("ProduceResults", "", 1, _plan("LoadCSV@neo4j", "row")), "LoadCSV"),
        (_plan("ProcedureCall@neo4j", "apoc.load.json($u) :: (value :: MAP)"), "'apoc.load.json'"),
        (_plan("NodeByLabelScan@neo4j", "n:Section", 100_001), "100001 rows"),
        (_plan("Expand(All)@neo4j", "(a)-[r]->(b)", 2e6), "Expand"),
        (_plan("CartesianProduct@neo4j", "", 1e9), "CartesianProduct"),
        (_plan("Repeat(Trail)@neo4j", "(a) (...){1, } (b)"), "unbounded"),
        (_plan("VarLengthExpand(All)@neo4j", "(a)-[r*..4]->(b)"), "deeper"),
        ({"operatorType": "AllNodesScan@neo4j", "arguments": {"EstimatedRows": 1.0}}, "AllNodesScan"),
    ],
)
def test_check_plan_rejects(plan: dict[str, Any], reason: str) -> None:
    with pytest.raises(CypherRejected, match=reason):
        check_plan(plan)


def test_check_plan_accepts_a_bounded_read() -> None:
    plan = _plan(
        "ProduceResults@neo4j", "id", 1,
        _plan("Limit@neo4j", "$limit", 1,
              _plan("VarLengthExpand(All)@neo4j", "(a)-[r:LINKS_TO*..2]->(b)", 3,
                    _plan("ProcedureCall@neo4j", "db.index.fulltext.queryNodes($i, $q) :: (node :: NODE)", 10))),
    )
    check_plan(plan)
