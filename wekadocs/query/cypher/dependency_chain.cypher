// What a node requires: REQUIRES edges (a "Prerequisites" section's parent requires what it
// names or links to) followed outward, up to three hops.
// params: start_id, depth, doc_ids, limit
%NODE(origin, start_id)%
MATCH p = (origin)-[rels:REQUIRES*1..3]->(needed)
WHERE length(p) <= $depth
  AND all(x IN nodes(p) WHERE NOT x:Section OR x.document_id IN $doc_ids)
WITH p, last(rels) AS r, needed
RETURN length(p) AS hop, type(r) AS type, startNode(r).id AS from_id,
       labels(needed)[0] AS label, needed.id AS id, coalesce(needed.name, needed.title) AS name,
       r.derived_from_section_id AS section_id, coalesce(r.confidence, 1.0) AS confidence
ORDER BY hop, confidence DESC, id
LIMIT $limit
