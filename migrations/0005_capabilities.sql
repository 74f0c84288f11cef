-- Capabilities (seed-data-architecture.md section 1.5): a workflow that ran well, kept with its code, intent
-- embedding and statistics (workflow_pattern), and the name it is called by (capability_records). A graph node
-- of a capability is 'capability:<capability_records.id>', never the pattern's id.

-- dag_structure: {"type": "dag", "document": <canonical DAG document>, "tools_used": [<tool ids>]}.
CREATE TABLE workflow_pattern (
    pattern_id        UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    pattern_hash      TEXT UNIQUE NOT NULL,
    dag_structure     JSONB NOT NULL,
    intent_embedding  vector(384) NOT NULL,
    usage_count       INT NOT NULL DEFAULT 0,
    success_count     INT NOT NULL DEFAULT 0,
    last_used         TIMESTAMPTZ,
    parameters_schema JSONB,
    cache_config      JSONB NOT NULL DEFAULT '{"ttl_ms":3600000,"cacheable":false}',
    name              TEXT,
    description       TEXT,
    success_rate      REAL NOT NULL DEFAULT 1.0,
    avg_duration_ms   INT NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ DEFAULT now(),
    source            TEXT DEFAULT 'emergent'
);

CREATE INDEX workflow_pattern_intent_embedding_idx ON workflow_pattern
    USING hnsw (intent_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- FQDN '{org}.{project}.{namespace}.{action}.{hash}', display name '{namespace}:{action}'; hash is the first 4
-- characters of the pattern hash.
CREATE TABLE capability_records (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org                 TEXT NOT NULL DEFAULT 'local',
    project             TEXT NOT NULL DEFAULT 'default',
    namespace           TEXT NOT NULL,
    action              TEXT NOT NULL,
    hash                TEXT NOT NULL,
    workflow_pattern_id UUID NOT NULL REFERENCES workflow_pattern (pattern_id) ON DELETE CASCADE,
    created_by          TEXT DEFAULT 'local',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by          TEXT,
    updated_at          TIMESTAMPTZ,
    version             INT NOT NULL DEFAULT 1,
    version_tag         TEXT,
    verified            BOOLEAN NOT NULL DEFAULT false,
    signature           TEXT,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    visibility          TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'project', 'org', 'public')),
    routing             TEXT NOT NULL DEFAULT 'local' CHECK (routing IN ('local', 'cloud')),
    UNIQUE (org, project, namespace, action, hash)
);

CREATE INDEX idx_capability_records_workflow_pattern ON capability_records (workflow_pattern_id);
CREATE INDEX capability_records_display_name_idx ON capability_records ((namespace || ':' || action));

-- Old display names and FQDNs that still resolve after a rename or a merge.
CREATE TABLE capability_alias (
    alias         TEXT PRIMARY KEY,
    capability_id UUID NOT NULL REFERENCES capability_records (id) ON DELETE CASCADE
);

CREATE INDEX capability_alias_capability_idx ON capability_alias (capability_id);

CREATE TABLE capability_cache (
    capability_id UUID NOT NULL REFERENCES capability_records (id) ON DELETE CASCADE,
    params_hash   TEXT NOT NULL,
    result        JSONB,
    expires_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (capability_id, params_hash)
);

-- A capability as the store reads it: its record joined with its pattern (columns of `CapabilityRow`).
CREATE VIEW capability_view AS
SELECT c.id, c.org, c.project, c.namespace, c.action, c.hash,
       c.org || '.' || c.project || '.' || c.namespace || '.' || c.action || '.' || c.hash AS fqdn,
       c.namespace || ':' || c.action AS display_name,
       p.pattern_id, p.pattern_hash, p.usage_count, p.success_count, p.success_rate::float8 AS success_rate, p.avg_duration_ms,
       ARRAY(SELECT jsonb_array_elements_text(p.dag_structure -> 'tools_used')) AS tools,
       p.dag_structure -> 'document' AS document, p.parameters_schema, p.cache_config, p.description, c.tags,
       c.created_at, c.updated_at
FROM capability_records c
JOIN workflow_pattern p ON p.pattern_id = c.workflow_pattern_id;
