-- Each task's result, written as the task finishes (not only with its layer's checkpoint): a crash inside a layer
-- then costs only the tasks still running, and a restart never runs a finished task again. The rows go with
-- their workflow's DAG.
CREATE TABLE workflow_task_results (
    workflow_id TEXT NOT NULL REFERENCES workflow_dags (workflow_id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    result      JSONB NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (workflow_id, task_id)
);
