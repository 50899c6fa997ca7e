// The ids of the pages of some (source, version) pairs, optionally under a path prefix, as one list.
// params: pairs, path_prefix, limit
UNWIND $pairs AS pair
MATCH (d:Document {version: pair.version})
WHERE coalesce(d.source, d.source_uri) = pair.source AND d.path STARTS WITH $path_prefix
WITH d.id AS id ORDER BY id
RETURN collect(id) AS ids
LIMIT $limit
