-- Retention (the policies of `gateway.db.retention`): one query per policy, each deleting at most
-- %(batch)s rows, so that RetentionStore can repeat it in short transactions until a batch comes up short.
-- Rows the gateway is writing (an upserted DAG, a checkpoint being pruned) are skipped, not waited for.

-- name: prune_expired_dags
-- The outer expires_at test is re-checked on the newest row version: a DAG re-saved meanwhile stays.
DELETE FROM workflow_dags WHERE expires_at <= now() AND workflow_id IN (
    SELECT workflow_id FROM workflow_dags
    WHERE expires_at <= now()
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
);

-- name: prune_checkpoints_beyond_newest
-- The newest %(keep)s of each workflow stay (same order as latest_checkpoint), so its latest state does.
DELETE FROM workflow_checkpoint WHERE id IN (
    SELECT id FROM workflow_checkpoint WHERE id IN (
        SELECT id FROM (
            SELECT id, row_number() OVER (
                PARTITION BY workflow_id ORDER BY "timestamp" DESC, layer DESC
            ) AS newness
            FROM workflow_checkpoint
        ) ranked
        WHERE newness > %(keep)s
    )
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
);

-- name: prune_old_executions
DELETE FROM workflow_execution WHERE execution_id IN (
    SELECT execution_id FROM workflow_execution
    WHERE executed_at < now() - %(max_age)s::interval
    LIMIT %(batch)s
);

-- name: prune_old_events
DELETE FROM episodic_events WHERE id IN (
    SELECT id FROM episodic_events
    WHERE "timestamp" < now() - %(max_age)s::interval
    LIMIT %(batch)s
);

-- name: prune_events_beyond_newest
-- Walks the timestamp index past the newest %(keep)s; no row lock (OFFSET would lock the skipped rows too),
-- events are never updated.
DELETE FROM episodic_events WHERE id IN (
    SELECT id FROM episodic_events
    ORDER BY "timestamp" DESC
    OFFSET %(keep)s
    LIMIT %(batch)s
);

-- name: prune_old_metrics
DELETE FROM metrics WHERE id IN (
    SELECT id FROM metrics
    WHERE "timestamp" < now() - %(max_age)s::interval
    LIMIT %(batch)s
);

-- name: prune_old_errors
DELETE FROM error_log WHERE id IN (
    SELECT id FROM error_log
    WHERE "timestamp" < now() - %(max_age)s::interval
    LIMIT %(batch)s
);
