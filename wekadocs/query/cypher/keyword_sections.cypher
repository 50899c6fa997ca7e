// Full-text (BM25) hits among the sections of the given pages (one version, a path prefix).
// params: index, query, fetch, doc_ids, limit
CALL db.index.fulltext.queryNodes($index, $query, {limit: $fetch}) YIELD node, score
WHERE node.document_id IN $doc_ids
RETURN node.id AS section_id, score
ORDER BY score DESC, section_id
LIMIT $limit
