// What an answer shows about each section, with its page and the names of the
// entities it mentions (for the entity-match feature).
// params: ids, limit
UNWIND $ids AS sid
MATCH (s:Section {id: sid})
MATCH (d:Document {id: s.document_id})
RETURN s.id AS section_id, s.document_id AS document_id, d.path AS path, d.version AS version,
       d.title AS page_title, s.title AS heading, s.anchor AS anchor, s.level AS level,
       s.part AS part, s.trail AS trail, s.text AS text, s.checksum AS checksum,
       s.parent_id AS parent_id,
       COLLECT {
         MATCH (s)-[:MENTIONS]->(e)
         WHERE e:Command OR e:Configuration OR e:Error OR e:Parameter OR e:Concept OR e:Component
         RETURN DISTINCT toLower(e.name)
       } AS entity_names
LIMIT $limit
