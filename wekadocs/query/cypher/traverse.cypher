// The typed neighbourhood of a node, up to three hops, keeping to one version's sections.
// Each row is one hop: the edge, its far end, and the section the edge was derived from.
// params: start_id, types, depth, doc_ids, limit
%NODE(origin, start_id)%
MATCH p = (origin)-[rels*1..3]-(other)
WHERE length(p) <= $depth
  AND all(r IN rels WHERE type(r) IN $types)
  AND all(x IN nodes(p) WHERE NOT x:Section OR x.document_id IN $doc_ids)
WITH p, last(rels) AS r, other
RETURN length(p) AS hop, type(r) AS type, startNode(r).id AS from_id,
       labels(other)[0] AS label, other.id AS id, coalesce(other.name, other.title) AS name,
       coalesce(r.derived_from_section_id,
                CASE WHEN startNode(r):Section THEN startNode(r).id ELSE endNode(r).id END) AS section_id,
       coalesce(r.confidence, 1.0) AS confidence
ORDER BY hop, confidence DESC, id
LIMIT $limit
