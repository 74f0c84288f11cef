-- Learning persistence (seed-data-architecture.md sections 1.2, 1.3, 1.6; behaviour.md sections 3-4): the
-- learned tool graph, per-tool reliability, adaptive thresholds and configuration, telemetry, and lexical
-- search over the tool index.

-- An edge of the learning graph. edge_type is part of the key: a pair can hold a dependency and a sequence
-- edge at once. source: 'inferred' (new) -> 'observed' (after enough sightings); 'template' and 'user' edges
-- are never downgraded. confidence_score = type weight x source factor, rewritten by each sighting.
CREATE TABLE tool_dependency (
    from_tool_id     TEXT NOT NULL,
    to_tool_id       TEXT NOT NULL,
    edge_type        TEXT NOT NULL DEFAULT 'sequence',
    observed_count   INT NOT NULL DEFAULT 1,
    confidence_score REAL NOT NULL DEFAULT 0.5,
    last_observed    TIMESTAMPTZ NOT NULL DEFAULT now(),
    source           TEXT NOT NULL DEFAULT 'inferred'
        CHECK (source IN ('inferred', 'observed', 'template', 'user')),
    PRIMARY KEY (from_tool_id, to_tool_id, edge_type)
);

CREATE INDEX tool_dependency_from_idx ON tool_dependency (from_tool_id);
CREATE INDEX tool_dependency_to_idx ON tool_dependency (to_tool_id);
CREATE INDEX tool_dependency_confidence_idx ON tool_dependency (confidence_score);
CREATE INDEX tool_dependency_source_idx ON tool_dependency (source);

-- Per-tool reliability (the ranking's reliability factor); not in the seed.
CREATE TABLE tool_usage (
    tool_id   TEXT PRIMARY KEY,
    calls     INT NOT NULL DEFAULT 0,
    successes INT NOT NULL DEFAULT 0,
    total_ms  BIGINT NOT NULL DEFAULT 0,
    last_used TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE adaptive_config (
    config_key    TEXT PRIMARY KEY,
    config_value  REAL NOT NULL,
    last_updated  TIMESTAMPTZ NOT NULL DEFAULT now(),
    total_samples INT NOT NULL DEFAULT 0
);

-- Per context hash; outcomes is the window of the last 50 outcomes the thresholds are adjusted from.
CREATE TABLE adaptive_thresholds (
    context_hash         TEXT PRIMARY KEY,
    context_keys         JSONB NOT NULL,
    suggestion_threshold REAL NOT NULL DEFAULT 0.70,
    explicit_threshold   REAL NOT NULL DEFAULT 0.50,
    success_rate         REAL,
    sample_count         INT NOT NULL DEFAULT 0,
    outcomes             JSONB NOT NULL DEFAULT '[]',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX adaptive_thresholds_updated_at_idx ON adaptive_thresholds (updated_at);
CREATE INDEX adaptive_thresholds_context_keys_idx ON adaptive_thresholds USING gin (context_keys);

CREATE TABLE metrics (
    id          BIGSERIAL PRIMARY KEY,
    metric_name TEXT NOT NULL,
    value       REAL NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata    JSONB
);

CREATE INDEX metrics_name_timestamp_idx ON metrics (metric_name, "timestamp" DESC);
CREATE INDEX metrics_timestamp_idx ON metrics ("timestamp");

CREATE TABLE error_log (
    id          BIGSERIAL PRIMARY KEY,
    error_type  TEXT NOT NULL,
    message     TEXT NOT NULL,
    stack       TEXT,
    context     JSONB,
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX error_log_timestamp_idx ON error_log ("timestamp");
CREATE INDEX error_log_type_idx ON error_log (error_type);

-- Identifiers as words: 'calculateNetIncome' -> 'calculate Net Income', 'HTTPServer' -> 'HTTP Server',
-- 'read_file' -> 'read file'. Used by the indexed column and by the query, so both split alike.
CREATE FUNCTION search_words(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN translate(
        regexp_replace(regexp_replace($1, '([a-z0-9])([A-Z])', '\1 \2', 'g'), '([A-Z]+)([A-Z][a-z])', '\1 \2', 'g'),
        '_-.:/', '     '
    );

-- Any word of the query matches (a plain query ANDs its words, too strict for natural language); ts_rank_cd
-- ranks the tools that match more of them, and closer together, higher.
CREATE FUNCTION search_query(text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN replace(plainto_tsquery('english'::regconfig, search_words($1))::text, '&', '|')::tsquery;

-- The name weighs more (A) than the description (B).
ALTER TABLE tool_schema ADD COLUMN search_text tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, search_words(name)), 'A')
    || setweight(to_tsvector('english'::regconfig, search_words(description)), 'B')
) STORED;

CREATE INDEX tool_schema_search_text_idx ON tool_schema USING gin (search_text);
