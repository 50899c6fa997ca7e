// The page catalogue's stamp, across every source and version: how many pages
// exist, when the newest was created and when any was last written. A page
// added, removed or renamed changes the first two; a write to any page changes
// the third, which can make another named version of its source the current
// one. The engine keeps its version and page lists exactly while all three hold.
// params: limit
MATCH (d:Document)
RETURN count(d) AS documents, max(d.created_at) AS newest, max(d.last_edited) AS edited
LIMIT $limit
