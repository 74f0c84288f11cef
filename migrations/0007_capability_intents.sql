-- Every intent a capability served (one row per distinct intent text, counted), so that a capability matches
-- the many ways it was asked for, not only the words of its first run. Its description, once given, is one
-- more. Patterns learned before this migration keep their first intent.
CREATE TABLE capability_intent (
    pattern_id UUID NOT NULL REFERENCES workflow_pattern (pattern_id) ON DELETE CASCADE,
    intent_key TEXT NOT NULL,
    embedding  vector(384) NOT NULL,
    uses       INT NOT NULL DEFAULT 1,
    PRIMARY KEY (pattern_id, intent_key)
);

CREATE INDEX capability_intent_embedding_idx ON capability_intent
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

INSERT INTO capability_intent (pattern_id, intent_key, embedding, uses)
SELECT pattern_id, 'pattern:' || pattern_hash, intent_embedding, usage_count FROM workflow_pattern;
