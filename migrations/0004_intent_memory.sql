-- The episodic memory of intents: what was asked, and which tools in which order answered it. DAG suggestion
-- recalls the nearest past intents (HNSW, cosine) and proposes the workflows that served them.
CREATE TABLE workflow_intent (
    id BIGSERIAL PRIMARY KEY,
    intent TEXT NOT NULL,
    embedding vector(384) NOT NULL,
    model TEXT NOT NULL,
    tools TEXT[] NOT NULL,
    edges JSONB NOT NULL DEFAULT '[]',
    success BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX workflow_intent_embedding_idx ON workflow_intent
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX workflow_intent_created_idx ON workflow_intent (created_at);
