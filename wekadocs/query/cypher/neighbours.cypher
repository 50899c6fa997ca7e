// One hop out of each seed section over typed edges, staying in the seed's version:
// via 1 = parent/child section, 2 = LINKS_TO/REQUIRES, 3 = a shared Command/Error/Configuration
// (entities mentioned by more than max_fanout sections are too common to mean anything).
// params: seeds, max_fanout, per_seed, limit
UNWIND $seeds AS seed
MATCH (s:Section {id: seed})
CALL (s) {
  MATCH (s)-[:HAS_SUBSECTION]-(n:Section)
  RETURN n, 1 AS via
  UNION
  MATCH (s)-[:LINKS_TO|REQUIRES]->(n:Section)
  RETURN n, 2 AS via
  UNION
  MATCH (s)-[:MENTIONS]->(e)<-[:MENTIONS]-(n:Section)
  WHERE (e:Command OR e:Error OR e:Configuration) AND n <> s
    AND COUNT { (e)<-[:MENTIONS]-() } <= $max_fanout
  RETURN n, 3 AS via
}
WITH s, n, via
MATCH (ds:Document {id: s.document_id}), (dn:Document {id: n.document_id})
WHERE dn.version = ds.version
WITH s, n, min(via) AS via
ORDER BY via, n.id
WITH s, collect({id: n.id, via: via})[0..$per_seed] AS found
UNWIND found AS hit
RETURN s.id AS seed, hit.id AS section_id, hit.via AS via
LIMIT $limit
