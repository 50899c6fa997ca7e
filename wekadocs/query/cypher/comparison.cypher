// The facts about one entity that a comparison lines up: parameters, the sections that
// mention it in one version, and what those sections require.
// params: entity_id, doc_ids, limit
%NODE(e, entity_id)%
OPTIONAL MATCH (e)-[:HAS_PARAMETER]->(p:Parameter)
WITH e, collect(DISTINCT p.name) AS parameters
OPTIONAL MATCH (s:Section)-[:MENTIONS]->(e)
WHERE s.document_id IN $doc_ids
WITH e, parameters, collect(DISTINCT s.id)[0..$limit] AS sections
OPTIONAL MATCH (s2:Section)-[:REQUIRES]->(needed)
WHERE s2.id IN sections
RETURN e.name AS name, labels(e)[0] AS label, parameters, sections,
       collect(DISTINCT coalesce(needed.title, needed.name)) AS requires
LIMIT $limit
