// A shortest path of at most three hops between two nodes inside one scope, with each hop's
// provenance: every section and page on it is in scope, and so is the section each derived edge
// on it came from (entities are shared by every version; their edges are not).
// params: source_id, target_id, doc_ids, limit
%NODE(a, source_id)%
%NODE(b, target_id)%
MATCH p = shortestPath((a)-[*..3]-(b))
WHERE all(x IN nodes(p) WHERE (NOT x:Section OR x.document_id IN $doc_ids)
                              AND (NOT x:Document OR x.id IN $doc_ids))
  AND all(r IN relationships(p) WHERE r.derived_from_section_id IS NULL
          OR EXISTS { MATCH (origin:Section {id: r.derived_from_section_id}) WHERE origin.document_id IN $doc_ids })
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
