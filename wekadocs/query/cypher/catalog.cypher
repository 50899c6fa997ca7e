// How many pages exist and when the newest was created, across every source
// and version. A page added, removed or renamed changes one of the two (a
// modified page keeps its id, so its version's page list stays right), so the
// engine keeps its version and page lists exactly while these stay the same.
// params: limit
MATCH (d:Document)
RETURN count(d) AS documents, max(d.created_at) AS newest
LIMIT $limit
