-- Learning persistence: tool_dependency, tool_usage, adaptive_config, adaptive_thresholds, metrics, error_log.

-- name: upsert_edge
-- One sighting of an edge, atomic under concurrency (the conflicting row is locked, then updated).
-- The new source decides the factor, so both are computed once, in the sub-select; 'template' and 'user'
-- edges keep their source, and their confidence when no factor is given for it.
INSERT INTO tool_dependency AS d
    (from_tool_id, to_tool_id, edge_type, observed_count, confidence_score, last_observed, source)
SELECT %(from_tool_id)s::text, %(to_tool_id)s::text, %(edge_type)s::text, 1,
       %(weight)s::real * (%(factors)s::jsonb ->> s.source)::real, now(), s.source
FROM (SELECT CASE WHEN %(promote_after)s::int <= 1 THEN 'observed' ELSE 'inferred' END AS source) s
ON CONFLICT (from_tool_id, to_tool_id, edge_type) DO UPDATE SET
    observed_count = d.observed_count + 1,
    last_observed = now(),
    (source, confidence_score) = (
        SELECT s.source, coalesce(%(weight)s::real * (%(factors)s::jsonb ->> s.source)::real, d.confidence_score)
        FROM (
            SELECT CASE
                WHEN d.source IN ('template', 'user') THEN d.source
                WHEN d.observed_count + 1 >= %(promote_after)s::int THEN 'observed'
                ELSE d.source
            END AS source
        ) s
    );

-- name: upsert_tool_usage
INSERT INTO tool_usage AS u (tool_id, calls, successes, total_ms, last_used)
VALUES (%(tool_id)s, 1, %(success)s::int, %(ms)s, now())
ON CONFLICT (tool_id) DO UPDATE SET
    calls = u.calls + 1,
    successes = u.successes + EXCLUDED.successes,
    total_ms = u.total_ms + EXCLUDED.total_ms,
    last_used = now();

-- name: all_edges
SELECT from_tool_id, to_tool_id, edge_type, observed_count, confidence_score, source
FROM tool_dependency
ORDER BY from_tool_id, to_tool_id, edge_type;

-- name: all_tool_usage
SELECT tool_id, calls, successes FROM tool_usage;

-- name: get_threshold
SELECT context_hash, context_keys, suggestion_threshold, explicit_threshold, success_rate, sample_count, outcomes
FROM adaptive_thresholds
WHERE context_hash = %(context_hash)s;

-- name: lock_threshold
-- Serialises read-update-writes of one context's thresholds (the row may not exist yet); ends with the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('adaptive_thresholds:' || %(context_hash)s::text, 0));

-- name: upsert_threshold
INSERT INTO adaptive_thresholds
    (context_hash, context_keys, suggestion_threshold, explicit_threshold, success_rate, sample_count, outcomes)
VALUES
    (%(context_hash)s, %(context_keys)s, %(suggestion_threshold)s, %(explicit_threshold)s, %(success_rate)s,
     %(sample_count)s, %(outcomes)s)
ON CONFLICT (context_hash) DO UPDATE SET
    context_keys = EXCLUDED.context_keys,
    suggestion_threshold = EXCLUDED.suggestion_threshold,
    explicit_threshold = EXCLUDED.explicit_threshold,
    success_rate = EXCLUDED.success_rate,
    sample_count = EXCLUDED.sample_count,
    outcomes = EXCLUDED.outcomes,
    updated_at = now();

-- name: get_config
SELECT config_key, config_value, total_samples FROM adaptive_config WHERE config_key = %(key)s;

-- name: upsert_config
INSERT INTO adaptive_config (config_key, config_value, total_samples, last_updated)
VALUES (%(key)s, %(value)s, %(samples)s, now())
ON CONFLICT (config_key) DO UPDATE SET
    config_value = EXCLUDED.config_value,
    total_samples = EXCLUDED.total_samples,
    last_updated = now();

-- name: insert_metric
INSERT INTO metrics (metric_name, value, metadata) VALUES (%(name)s, %(value)s, %(metadata)s);

-- name: insert_error
INSERT INTO error_log (error_type, message, stack, context)
VALUES (%(error_type)s, %(message)s, %(stack)s, %(context)s);

-- name: metric_stats
-- Each series (a metric name and its labels) seen since %(since)s ago: how many points, their mean, median,
-- 95th percentile (interpolated) and maximum.
SELECT metric_name AS name, coalesce(metadata, '{}'::jsonb) AS labels, count(*)::int AS count,
       avg(value)::float8 AS avg,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY value))::float8 AS p50,
       (percentile_cont(0.95) WITHIN GROUP (ORDER BY value))::float8 AS p95,
       max(value)::float8 AS max
FROM metrics
WHERE "timestamp" >= now() - %(since)s::interval
GROUP BY metric_name, coalesce(metadata, '{}'::jsonb)
ORDER BY metric_name, coalesce(metadata, '{}'::jsonb)::text;

-- name: error_counts
SELECT error_type, count(*)::int AS count, max("timestamp") AS last_seen
FROM error_log
WHERE "timestamp" >= now() - %(since)s::interval
GROUP BY error_type
ORDER BY count(*) DESC, error_type;
