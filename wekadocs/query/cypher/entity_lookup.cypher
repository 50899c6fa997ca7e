// Named entities whose name matches a term, best match first, with how often sections mention them.
// params: index, query, labels, limit
CALL db.index.fulltext.queryNodes($index, $query, {limit: $limit}) YIELD node, score
WHERE any(label IN labels(node) WHERE label IN $labels)
RETURN node.id AS id, labels(node)[0] AS label, node.name AS name, score,
       COUNT { (node)<-[:MENTIONS]-() } AS mentions
ORDER BY score DESC, mentions DESC, id
LIMIT $limit
