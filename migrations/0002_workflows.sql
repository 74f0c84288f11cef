-- Workflow persistence (seed-data-architecture.md sections 1.2-1.4): submitted DAGs, layer checkpoints,
-- finished executions and the episodic memory. gen_random_uuid() is built in since Postgres 13.

-- A submitted DAG; a workflow whose row has expired is not continued after a restart.
CREATE TABLE workflow_dags (
    workflow_id TEXT PRIMARY KEY,
    dag         JSONB NOT NULL,
    intent      TEXT,
    owner       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL DEFAULT now() + interval '1 hour'
);

CREATE INDEX workflow_dags_expires_at_idx ON workflow_dags (expires_at);

-- A workflow's state at a layer boundary; the store keeps the newest five per workflow.
CREATE TABLE workflow_checkpoint (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now(),
    layer       INT NOT NULL CHECK (layer >= 0),
    state       JSONB NOT NULL
);

-- Serves "newest of a workflow" and the pruning without a sort, and every lookup by workflow_id alone.
CREATE INDEX workflow_checkpoint_workflow_ts_idx ON workflow_checkpoint (workflow_id, "timestamp" DESC, layer DESC);

-- One finished run (what learning reads later).
CREATE TABLE workflow_execution (
    execution_id      UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id       TEXT,
    executed_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    intent_text       TEXT,
    dag_structure     JSONB NOT NULL,
    success           BOOLEAN NOT NULL,
    execution_time_ms INT NOT NULL,
    error_message     TEXT
);

CREATE INDEX workflow_execution_executed_at_idx ON workflow_execution (executed_at);
CREATE INDEX workflow_execution_workflow_id_idx ON workflow_execution (workflow_id);

-- The episodic memory. clock_timestamp(), not now(): the events of one batch (one transaction) keep their order.
CREATE TABLE episodic_events (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id  TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    task_id      TEXT,
    "timestamp"  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    context_hash TEXT,
    data         JSONB NOT NULL
);

CREATE INDEX episodic_events_workflow_ts_idx ON episodic_events (workflow_id, "timestamp");
CREATE INDEX episodic_events_event_type_idx ON episodic_events (event_type);
CREATE INDEX episodic_events_timestamp_idx ON episodic_events ("timestamp");
CREATE INDEX episodic_events_context_hash_idx ON episodic_events (context_hash);
CREATE INDEX episodic_events_data_idx ON episodic_events USING gin (data);
