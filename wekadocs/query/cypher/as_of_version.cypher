// One page as it stood in a version: its sections in order, with checksums to diff.
// params: path, version, limit
MATCH (d:Document {version: $version})
WHERE d.path = $path
MATCH (d)-[:HAS_SECTION]->(s:Section)
RETURN s.id AS section_id, s.title AS heading, s.anchor AS anchor, s.checksum AS checksum,
       s.order AS order, s.part AS part
ORDER BY order, part
LIMIT $limit
