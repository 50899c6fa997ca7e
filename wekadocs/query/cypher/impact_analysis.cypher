// What requires a node: REQUIRES edges followed inward, up to three hops.
// params: start_id, depth, doc_ids, limit
%NODE(origin, start_id)%
MATCH p = (origin)<-[rels:REQUIRES*1..3]-(dependent)
WHERE length(p) <= $depth
  AND all(x IN nodes(p) WHERE NOT x:Section OR x.document_id IN $doc_ids)
WITH p, last(rels) AS r, dependent
RETURN length(p) AS hop, type(r) AS type, endNode(r).id AS from_id,
       labels(dependent)[0] AS label, dependent.id AS id, coalesce(dependent.name, dependent.title) AS name,
       r.derived_from_section_id AS section_id, coalesce(r.confidence, 1.0) AS confidence
ORDER BY hop, confidence DESC, id
LIMIT $limit
