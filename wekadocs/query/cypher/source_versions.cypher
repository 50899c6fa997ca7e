// Every (source, version) the graph holds, with its page count and when its pages were last written.
// params: limit
MATCH (d:Document)
RETURN coalesce(d.source, d.source_uri) AS source, d.version AS version, count(d) AS documents,
       max(d.last_edited) AS ingested
ORDER BY source, version
LIMIT $limit
