// For an Error: the sections that resolve it, the steps of their procedures in order,
// and the commands those steps run.
// params: error_id, doc_ids, limit
MATCH (e:Error {id: $error_id})<-[r:RESOLVES]-(s:Section)
WHERE s.document_id IN $doc_ids
OPTIONAL MATCH (p:Procedure {scope_section_id: s.id})-[cs:CONTAINS_STEP]->(step:Step)
OPTIONAL MATCH (step)-[:EXECUTES]->(c:Command)
WITH s, r, p, cs, step, collect(DISTINCT c.name) AS commands
ORDER BY s.id, p.id, cs.order
WITH s, r, [x IN collect({order: cs.order, step: step.name, commands: commands}) WHERE x.step IS NOT NULL] AS steps
RETURN s.id AS section_id, r.confidence AS confidence, steps
ORDER BY confidence DESC, section_id
LIMIT $limit
