// One page as it stands in a scope (one version, or each source's current one): its sections in
// order, with checksums to diff.
// params: path, doc_ids, limit
MATCH (d:Document)
WHERE d.id IN $doc_ids AND d.path = $path
MATCH (d)-[:HAS_SECTION]->(s:Section)
RETURN d.id AS document_id, d.version AS version, s.id AS section_id, s.title AS heading,
       s.anchor AS anchor, s.checksum AS checksum, s.order AS order, s.part AS part
ORDER BY document_id, order, part
LIMIT $limit
