-- The tool index (behaviour.md section 2) and the last known state of each downstream server.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tool_schema (
    tool_id       TEXT PRIMARY KEY,                -- 'server:tool'
    server_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    input_schema  JSONB NOT NULL,
    output_schema JSONB,
    annotations   JSONB,
    schema_hash   TEXT NOT NULL,                   -- sha256 of canonical JSON of what the server lists
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX tool_schema_server_id_idx ON tool_schema (server_id);

CREATE TABLE tool_embedding (
    tool_id    TEXT PRIMARY KEY REFERENCES tool_schema (tool_id) ON DELETE CASCADE,
    embedding  vector(384) NOT NULL,
    model      TEXT NOT NULL,
    text_hash  TEXT NOT NULL,                      -- sha256 of the embedded text, 'name | description'
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX tool_embedding_hnsw_idx ON tool_embedding
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- Written by the gateway as servers change state; read by `pml-gateway status` from another process.
CREATE TABLE server_status (
    server_id  TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    reason     TEXT,
    tool_count INT NOT NULL DEFAULT 0,
    restarts   INT NOT NULL DEFAULT 0,
    pid        INT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
