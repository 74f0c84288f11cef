-- The tool index: tool_schema, tool_embedding, server_status (migrations/0001_tool_index.sql).

-- name: lock_server_tools
-- Serialises syncs of one server so that their added/changed/removed counts are exact.
SELECT pg_advisory_xact_lock(%(namespace)s::int, hashtext(%(server)s));

-- name: server_schema_hashes
SELECT tool_id, schema_hash FROM tool_schema WHERE server_id = %(server)s;

-- name: upsert_tool
INSERT INTO tool_schema
    (tool_id, server_id, name, title, description, input_schema, output_schema, annotations, schema_hash)
VALUES
    (%(tool_id)s, %(server)s, %(name)s, %(title)s, %(description)s, %(input_schema)s, %(output_schema)s,
     %(annotations)s, %(schema_hash)s)
ON CONFLICT (tool_id) DO UPDATE SET
    server_id = EXCLUDED.server_id,
    name = EXCLUDED.name,
    title = EXCLUDED.title,
    description = EXCLUDED.description,
    input_schema = EXCLUDED.input_schema,
    output_schema = EXCLUDED.output_schema,
    annotations = EXCLUDED.annotations,
    schema_hash = EXCLUDED.schema_hash,
    updated_at = now();

-- name: delete_tools
DELETE FROM tool_schema WHERE tool_id = ANY(%(tool_ids)s::text[]);

-- name: embedding_states
SELECT s.tool_id, s.server_id AS server, s.name, s.title, s.description, s.annotations, e.model, e.text_hash
FROM tool_schema s LEFT JOIN tool_embedding e USING (tool_id)
WHERE %(server)s::text IS NULL OR s.server_id = %(server)s
ORDER BY s.tool_id;

-- name: stage_embeddings
-- The rows of one `save_embeddings` batch go through a temporary table, filled by binary COPY (see below).
CREATE TEMPORARY TABLE staged_embedding (
    tool_id TEXT NOT NULL, embedding vector NOT NULL, text_hash TEXT NOT NULL
) ON COMMIT DROP;

-- name: copy_embeddings
COPY staged_embedding (tool_id, embedding, text_hash) FROM STDIN (FORMAT BINARY);

-- name: merge_embeddings
-- A tool removed since its text was read is skipped rather than failing the batch on the foreign key.
INSERT INTO tool_embedding (tool_id, embedding, model, text_hash)
SELECT st.tool_id, st.embedding, %(model)s::text, st.text_hash
FROM staged_embedding st JOIN tool_schema s USING (tool_id)
ON CONFLICT (tool_id) DO UPDATE SET
    embedding = EXCLUDED.embedding,
    model = EXCLUDED.model,
    text_hash = EXCLUDED.text_hash,
    updated_at = now();

-- name: get_tool
SELECT server_id AS server, name, title, description, input_schema, output_schema, annotations
FROM tool_schema WHERE tool_id = %(tool_id)s;

-- name: all_tools
SELECT server_id AS server, name, title, description, input_schema, output_schema, annotations
FROM tool_schema ORDER BY tool_id;

-- name: tool_embeddings
-- Every tool's embedding by one model, for the search's in-memory copy of the index.
SELECT tool_id, embedding FROM tool_embedding WHERE model = %(model)s::text ORDER BY tool_id;

-- name: count_by_server
SELECT s.server_id AS server, count(*)::int AS tools, count(e.tool_id)::int AS embedded
FROM tool_schema s LEFT JOIN tool_embedding e USING (tool_id)
GROUP BY s.server_id ORDER BY s.server_id;

-- name: upsert_server_status
INSERT INTO server_status (server_id, state, reason, tool_count, restarts, pid, updated_at)
VALUES (%(name)s, %(state)s, %(reason)s, %(tool_count)s, %(restarts)s, %(pid)s, now())
ON CONFLICT (server_id) DO UPDATE SET
    state = EXCLUDED.state,
    reason = EXCLUDED.reason,
    tool_count = EXCLUDED.tool_count,
    restarts = EXCLUDED.restarts,
    pid = EXCLUDED.pid,
    updated_at = now();

-- name: server_statuses
SELECT server_id AS name, state, reason, tool_count, restarts, pid FROM server_status ORDER BY server_id;

-- name: search_pool
-- The candidate pool of a hybrid search: the HNSW nearest tools plus the tools named in `extra` (found by
-- words or by the learned graph), each with its exact cosine similarity to the query; an `extra` tool not yet
-- embedded by this model (the first indexing is still running) comes with similarity 0, so words still find it.
WITH dense AS MATERIALIZED (
    SELECT tool_id FROM tool_embedding
    WHERE model = %(model)s::text
    ORDER BY embedding <=> %(query)s::vector
    LIMIT %(pool)s::int
), pool AS (
    SELECT tool_id FROM dense UNION SELECT unnest(%(extra)s::text[])
)
SELECT s.tool_id, s.server_id AS server, s.name, s.title, s.description, s.input_schema, s.annotations,
       COALESCE(1 - (e.embedding <=> %(query)s::vector), 0) AS semantic
FROM pool p
JOIN tool_schema s ON s.tool_id = p.tool_id
LEFT JOIN tool_embedding e ON e.tool_id = p.tool_id AND e.model = %(model)s::text;

-- name: search_pool_server
-- The same within one server: an exact scan of its tools (see search_server_tools).
WITH dense AS MATERIALIZED (
    SELECT e.tool_id FROM tool_embedding e JOIN tool_schema s USING (tool_id)
    WHERE e.model = %(model)s::text AND s.server_id = %(server)s::text
    ORDER BY e.embedding <=> %(query)s::vector
    LIMIT %(pool)s::int
), pool AS (
    SELECT tool_id FROM dense UNION SELECT unnest(%(extra)s::text[])
)
SELECT s.tool_id, s.server_id AS server, s.name, s.title, s.description, s.input_schema, s.annotations,
       COALESCE(1 - (e.embedding <=> %(query)s::vector), 0) AS semantic
FROM pool p
JOIN tool_schema s ON s.tool_id = p.tool_id AND s.server_id = %(server)s::text
LEFT JOIN tool_embedding e ON e.tool_id = p.tool_id AND e.model = %(model)s::text;
