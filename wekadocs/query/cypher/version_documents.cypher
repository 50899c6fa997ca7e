// The ids of one version's pages, optionally under a path prefix, as one list.
// params: version, path_prefix, limit
MATCH (d:Document {version: $version})
WHERE d.path STARTS WITH $path_prefix
WITH d.id AS id ORDER BY id
RETURN collect(id) AS ids
LIMIT $limit
