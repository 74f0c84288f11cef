-- Code mode (seed-data-architecture.md, workflow_execution / workflow_pattern): an `execute_code` run keeps its
-- program and the hash of its normal form (literals lifted into parameters); dag_structure is then
-- {"type": "code_execution", "tools_used", "intent_text", "tool_invocations"}. A capability learned from code
-- keeps the normal form it runs. code_hash is not unique on patterns: two users' capabilities may share a
-- program (pattern_hash, which includes the owner, is the unique key).
ALTER TABLE workflow_execution ADD COLUMN IF NOT EXISTS code_snippet TEXT, ADD COLUMN IF NOT EXISTS code_hash TEXT,
    ADD COLUMN IF NOT EXISTS owner TEXT;
ALTER TABLE workflow_pattern ADD COLUMN IF NOT EXISTS code_snippet TEXT, ADD COLUMN IF NOT EXISTS code_hash TEXT;

CREATE INDEX workflow_execution_code_hash_idx ON workflow_execution (code_hash) WHERE code_hash IS NOT NULL;
CREATE INDEX workflow_pattern_code_hash_idx ON workflow_pattern (code_hash) WHERE code_hash IS NOT NULL;
