// Configurations and Parameters that change a target: a command's own parameters (via 1),
// and settings mentioned in the same sections as the target (via 2).
// params: target_id, doc_ids, limit
%NODE(t, target_id)%
CALL (t) {
  MATCH (t)-[h:HAS_PARAMETER]->(c:Parameter)
  RETURN c, 1 AS via, h.derived_from_section_id AS section_id
  UNION
  MATCH (t)<-[:MENTIONS]-(s:Section)-[:MENTIONS]->(c)
  WHERE (c:Configuration OR c:Parameter) AND c <> t
  RETURN c, 2 AS via, s.id AS section_id
}
WITH c, via, section_id
MATCH (s:Section {id: section_id})
WHERE s.document_id IN $doc_ids
WITH c, min(via) AS via, count(DISTINCT s) AS sections, collect(DISTINCT s.id)[0..3] AS evidence
RETURN c.id AS id, labels(c)[0] AS label, c.name AS name, via, sections, evidence
ORDER BY via, sections DESC, name
LIMIT $limit
