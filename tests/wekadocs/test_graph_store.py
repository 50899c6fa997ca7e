from __future__ import annotations

import pytest
from pydantic import SecretStr

from wekadocs.errors import GraphStoreError
from wekadocs.graph_schema import NODE_LABELS, apply_schema, schema_status
from wekadocs.graph_store import GraphStore
from wekadocs.settings import Settings


def test_cypher_round_trip(graph: GraphStore) -> None:
    graph.write("MERGE (d:Document {id: $id}) SET d.title = $title", id="rt-1", title="Round trip")
    rows = graph.read("MATCH (d:Document {id: $id}) RETURN d.title AS title", id="rt-1")
    assert rows == [{"title": "Round trip"}]
    graph.write("MATCH (d:Document {id: $id}) DETACH DELETE d", id="rt-1")
    assert graph.read("MATCH (d:Document {id: $id}) RETURN d", id="rt-1") == []


def test_rows_are_plain_dicts_whatever_a_statement_returns(graph: GraphStore) -> None:
    """Scalars and lists of scalars skip ``Record.data()``; nodes, maps and
    nested lists still go through it: every row is what ``data()`` gives."""
    graph.write("MERGE (d:Document {id: $id}) SET d.title = 'Plain', d.tags = ['a', 'b']", id="plain-1")
    try:
        rows = graph.read(
            "MATCH (d:Document {id: $id}) RETURN d.title AS title, d.tags AS tags, 3 AS n, 0.5 AS x, "
            "true AS yes, null AS nothing, [] AS empty", id="plain-1")
        assert rows == [{"title": "Plain", "tags": ["a", "b"], "n": 3, "x": 0.5, "yes": True,
                         "nothing": None, "empty": []}]
        assert [type(v) for v in rows[0].values()] == [str, list, int, float, bool, type(None), list]
        rows = graph.read(
            "MATCH (d:Document {id: $id}) RETURN d, {title: d.title, tags: d.tags} AS map, "
            "[[1, 2], [d.title]] AS nested, [d] AS nodes", id="plain-1")
        assert rows == [{"d": {"id": "plain-1", "title": "Plain", "tags": ["a", "b"]},
                         "map": {"title": "Plain", "tags": ["a", "b"]}, "nested": [[1, 2], ["Plain"]],
                         "nodes": [{"id": "plain-1", "title": "Plain", "tags": ["a", "b"]}]}]
        assert type(rows[0]["d"]) is dict and type(rows[0]["nodes"][0]) is dict
    finally:
        graph.write("MATCH (d:Document {id: $id}) DETACH DELETE d", id="plain-1")


def test_server_is_neo4j_5_26_community(graph: GraphStore) -> None:
    info = graph.server_info()
    assert info["version"].startswith("5.26.")
    assert info["edition"] == "community"


def test_schema_apply_twice_gives_the_same_schema(graph: GraphStore) -> None:
    first = apply_schema(graph)
    second = apply_schema(graph)
    assert first == second
    assert first.missing == []
    assert first.schema_version == "1"
    constrained = {tuple(c["labels"]) for c in first.constraints}
    assert {(label,) for label in NODE_LABELS} <= constrained
    fulltext = [i for i in first.indexes if i["type"] == "FULLTEXT"]
    assert [(i["name"], i["properties"]) for i in fulltext] == [
        ("entity_name", ["name"]), ("section_text", ["title", "text"])]
    assert all(i["state"] == "ONLINE" for i in first.indexes)
    assert graph.read("MATCH (v:SchemaVersion) RETURN count(v) AS n") == [{"n": 1}]


def test_uniqueness_is_enforced(graph: GraphStore) -> None:
    apply_schema(graph)
    graph.write("CREATE (:Section {id: 'dup-1'})")
    try:
        with pytest.raises(GraphStoreError, match="ConstraintValidationFailed"):
            graph.write("CREATE (:Section {id: 'dup-1'})")
    finally:
        graph.write("MATCH (s:Section {id: 'dup-1'}) DETACH DELETE s")


def test_schema_status_reports_what_is_missing(graph: GraphStore) -> None:
    apply_schema(graph)
    graph.write("DROP INDEX section_checksum")
    try:
        assert schema_status(graph).missing == ["section_checksum"]
    finally:
        apply_schema(graph)
    assert schema_status(graph).missing == []


def test_wrong_password_is_a_clear_error(settings: Settings, stack: object) -> None:
    wrong = settings.model_copy(update={"neo4j_password": SecretStr("not-the-password")})
    with pytest.raises(GraphStoreError, match="authentication failed"):
        GraphStore.connect(wrong, retry_s=0)


def test_unreachable_server_is_a_clear_error(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"neo4j_uri": "bolt://127.0.0.1:1",
                                          "neo4j_password": SecretStr("an-external-one")})
    with pytest.raises(GraphStoreError, match="unreachable"):
        GraphStore.connect(nowhere, retry_s=0)


def test_server_side_timeout_stops_a_runaway_query(settings: Settings, stack: object) -> None:
    quick = settings.model_copy(update={"neo4j_tx_timeout_s": 1.0})
    with GraphStore.connect(quick) as store, pytest.raises(GraphStoreError, match="(?i)timeout|terminated"):
        store.read("UNWIND range(1, 100000000) AS a UNWIND range(1, 100) AS b RETURN count(*) AS n")


def test_write_batches_run_under_their_own_timeout(settings: Settings, stack: object) -> None:
    """A batch of ours gets ``neo4j_write_timeout_s``, not the reads' budget."""
    patient_reads = settings.model_copy(update={"neo4j_tx_timeout_s": 600.0, "neo4j_write_timeout_s": 1.0})
    with GraphStore.connect(patient_reads) as store, pytest.raises(GraphStoreError, match="(?i)timeout|terminated"):
        store.write_all([("UNWIND range(1, 100000000) AS a UNWIND range(1, 100) AS b RETURN count(*) AS n", {})])
