// The Errors mentioned in the pages in scope whose lines share a word with a message: each line
// of the mentioning section that names the Error (an alert or event table's row, or a sentence).
// params: doc_ids, words, eol, limit
MATCH (s:Section)-[:MENTIONS]->(e:Error)
WHERE s.document_id IN $doc_ids
UNWIND [l IN split(s.text, $eol) WHERE l CONTAINS e.name] AS line
WITH e, s, line, size([w IN $words WHERE toLower(line) CONTAINS w]) AS hits
WHERE hits > 0
RETURN e.id AS id, e.name AS name, s.id AS section_id, line, hits
ORDER BY hits DESC, id, section_id
LIMIT $limit
