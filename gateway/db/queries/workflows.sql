-- Workflow persistence: workflow_dags, workflow_checkpoint, workflow_execution, episodic_events
-- (migrations/0002_workflows.sql), workflow_task_results (0014_task_results.sql).

-- name: upsert_dag
-- A resubmitted (replanned) DAG keeps its created_at and gets a fresh expiry.
INSERT INTO workflow_dags (workflow_id, dag, intent, owner, expires_at)
VALUES (%(workflow_id)s, %(dag)s, %(intent)s, %(owner)s, now() + %(ttl)s::interval)
ON CONFLICT (workflow_id) DO UPDATE SET
    dag = EXCLUDED.dag,
    intent = EXCLUDED.intent,
    owner = EXCLUDED.owner,
    expires_at = EXCLUDED.expires_at;

-- name: get_dag
SELECT dag FROM workflow_dags WHERE workflow_id = %(workflow_id)s;

-- name: insert_checkpoint
INSERT INTO workflow_checkpoint (workflow_id, layer, state) VALUES (%(workflow_id)s, %(layer)s, %(state)s);

-- name: prune_checkpoints
-- Runs after insert_checkpoint in the same transaction, so the new checkpoint counts among the kept.
DELETE FROM workflow_checkpoint WHERE id IN (
    SELECT id FROM workflow_checkpoint
    WHERE workflow_id = %(workflow_id)s
    ORDER BY "timestamp" DESC, layer DESC
    OFFSET %(keep)s
);

-- name: save_task_result
INSERT INTO workflow_task_results (workflow_id, task_id, result)
VALUES (%(workflow_id)s, %(task_id)s, %(result)s)
ON CONFLICT (workflow_id, task_id) DO UPDATE SET result = EXCLUDED.result, finished_at = EXCLUDED.finished_at;

-- name: latest_checkpoint
-- With the results of the tasks that finished since (a crash inside a layer), oldest first.
SELECT c.state, coalesce((
    SELECT jsonb_agg(t.result ORDER BY t.finished_at) FROM workflow_task_results t
    WHERE t.workflow_id = c.workflow_id
), '[]'::jsonb) AS finished
FROM workflow_checkpoint c
WHERE c.workflow_id = %(workflow_id)s
ORDER BY c."timestamp" DESC, c.layer DESC
LIMIT 1;

-- name: unfinished_states
-- The newest checkpoint of each unexpired DAG, kept only when it was written while running, with the results of
-- the tasks that finished since.
SELECT c.state, coalesce((
    SELECT jsonb_agg(t.result ORDER BY t.finished_at) FROM workflow_task_results t
    WHERE t.workflow_id = d.workflow_id
), '[]'::jsonb) AS finished
FROM workflow_dags d
CROSS JOIN LATERAL (
    SELECT state FROM workflow_checkpoint
    WHERE workflow_id = d.workflow_id
    ORDER BY "timestamp" DESC, layer DESC
    LIMIT 1
) c
WHERE d.expires_at > now() AND c.state->>'status' = 'running'
ORDER BY d.created_at, d.workflow_id;

-- name: insert_execution
INSERT INTO workflow_execution
    (workflow_id, intent_text, dag_structure, success, execution_time_ms, error_message)
VALUES
    (%(workflow_id)s, %(intent)s, %(dag)s, %(success)s, %(execution_time_ms)s, %(error)s);

-- name: insert_code_execution
INSERT INTO workflow_execution
    (workflow_id, intent_text, dag_structure, success, execution_time_ms, error_message, code_snippet, code_hash,
     owner)
VALUES
    (%(workflow_id)s, %(intent)s, %(dag)s, %(success)s, %(execution_time_ms)s, %(error)s, %(code)s, %(code_hash)s,
     %(owner)s);

-- name: code_successes
-- Successful runs of one program's normal form by one owner (null: the stdio user), up to the run `workflow_id`
-- (lessons are learned in the background, perhaps after a later run was recorded).
SELECT count(*)::int FROM workflow_execution
WHERE code_hash = %(code_hash)s AND success AND owner IS NOT DISTINCT FROM %(owner)s::text
  AND executed_at <= coalesce((SELECT max(executed_at) FROM workflow_execution WHERE workflow_id = %(workflow_id)s),
                              now());

-- name: execution_count
SELECT count(*)::int FROM workflow_execution
WHERE %(workflow_id)s::text IS NULL OR workflow_id = %(workflow_id)s::text;

-- name: insert_event
INSERT INTO episodic_events (workflow_id, event_type, task_id, context_hash, data)
VALUES (%(workflow_id)s, %(event_type)s, %(task_id)s, %(context_hash)s, %(data)s);

-- name: workflow_events
SELECT workflow_id, event_type, data, task_id, context_hash
FROM episodic_events
WHERE workflow_id = %(workflow_id)s
ORDER BY "timestamp";
