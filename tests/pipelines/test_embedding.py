"""Where the embedding actors go and what each reserves, from each node's figures."""

from __future__ import annotations

from pipelines.embedding import EMBED_RESOURCE, embedding_placement

HEAD = {"CPU": 2.0, "node:__internal_head__": 1.0}
WORKER = {"CPU": 1.0, EMBED_RESOURCE: 1.0, "query": 1.0}


def test_one_node_sizes_as_before() -> None:
    placement = embedding_placement(1, 0, {"h": HEAD}, {"h": {"CPU": 1.65}})
    assert (placement.cpus, placement.resources, placement.actors_per_node) == (1.65, {}, 1)
    assert placement.nodes == {"h": 2.0}


def test_nodes_that_offer_embed_take_the_actors_each_sized_to_fit_any_of_them() -> None:
    totals = {"h": HEAD, "w1": WORKER, "w2": WORKER}
    free = {"h": {"CPU": 2.0}, "w1": {"CPU": 1.0}, "w2": {"CPU": 0.75}}  # a replica holds 0.25 of w2
    placement = embedding_placement(2, 0, totals, free)
    assert placement.resources == {EMBED_RESOURCE: 0.001}
    assert placement.nodes == {"w1": 1.0, "w2": 1.0}  # never the head
    # not the cluster's 3.75 / 2: each fits the smallest share, so both fit one node if the other dies
    assert placement.cpus == 0.375 and placement.actors_per_node == 1


def test_without_embed_every_node_with_cpus_is_eligible() -> None:
    totals = {"h": {"CPU": 0.0, "node:__internal_head__": 1.0}, "a": {"CPU": 4.0}, "b": {"CPU": 4.0}}
    placement = embedding_placement(4, 0, totals, {"a": {"CPU": 4.0}, "b": {"CPU": 3.0}})
    assert placement.nodes == {"a": 4.0, "b": 4.0} and placement.resources == {}
    assert placement.cpus == 0.75 and placement.actors_per_node == 2


def test_set_threads_cap_the_reservation() -> None:
    placement = embedding_placement(1, 1, {"w": WORKER}, {"w": {"CPU": 1.0}})
    assert (placement.threads, placement.cpus) == (1, 1.0)
