// The ingested versions with how many pages each has.
// params: limit
MATCH (d:Document)
RETURN d.version AS version, count(d) AS documents
ORDER BY version
LIMIT $limit
