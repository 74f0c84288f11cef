-- Each user's own MCP servers (seed-data-architecture.md, planned user_mcp_configs): an entry shaped like one of
-- the servers file's "mcpServers", as written: "${secret:NAME}" stays a reference to the user's secret and is
-- filled only when the server starts, so no secret is ever stored here.
CREATE TABLE user_mcp_configs (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9_-]{1,48}$'),
    entry      JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name)
);
