// A shortest path of at most three hops between two nodes, with each hop's provenance.
// params: source_id, target_id, limit
%NODE(a, source_id)%
%NODE(b, target_id)%
MATCH p = shortestPath((a)-[*..3]-(b))
UNWIND range(0, length(p) - 1) AS i
WITH p, i, relationships(p)[i] AS r
RETURN i + 1 AS hop, type(r) AS type,
       nodes(p)[i].id AS from_id, coalesce(nodes(p)[i].name, nodes(p)[i].title) AS from_name,
       labels(nodes(p)[i + 1])[0] AS label, nodes(p)[i + 1].id AS id,
       coalesce(nodes(p)[i + 1].name, nodes(p)[i + 1].title) AS name,
       coalesce(r.derived_from_section_id,
                CASE WHEN startNode(r):Section THEN startNode(r).id ELSE endNode(r).id END) AS section_id,
       coalesce(r.confidence, 1.0) AS confidence
ORDER BY hop
LIMIT $limit
