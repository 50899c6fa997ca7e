// An Error's mentions in one version and the commands related to it.
// params: error_id, doc_ids, limit
MATCH (e:Error {id: $error_id})
OPTIONAL MATCH (e)-[:RELATED_TO]-(c:Command)
WITH e, collect(DISTINCT c.name) AS commands
OPTIONAL MATCH (s:Section)-[:MENTIONS]->(e)
WHERE s.document_id IN $doc_ids
RETURN e.name AS name, commands, collect(DISTINCT s.id)[0..$limit] AS sections
LIMIT $limit
