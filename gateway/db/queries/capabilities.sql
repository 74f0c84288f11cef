-- name: upsert_pattern_run
-- A successful run: the first one inserts the pattern (inserted is true for exactly one of concurrent first
-- runs: the others wait on its row, then update it), later ones count it. avg_duration_ms is a running mean.
-- runs: the successful runs the pattern starts with (a program becomes a capability at its second).
INSERT INTO workflow_pattern (pattern_hash, dag_structure, intent_embedding, usage_count, success_count,
                              last_used, parameters_schema, cache_config, success_rate, avg_duration_ms,
                              code_snippet, code_hash)
VALUES (%(pattern_hash)s, %(dag_structure)s, %(embedding)s, %(runs)s::int, %(runs)s::int * %(successes)s::int, now(),
        %(parameters_schema)s, jsonb_build_object('ttl_ms', 3600000, 'cacheable', %(cacheable)s::boolean),
        %(successes)s::int, round(%(ms)s::float8), %(code)s, %(code_hash)s)
ON CONFLICT (pattern_hash) DO UPDATE SET
    usage_count = workflow_pattern.usage_count + 1,
    success_count = workflow_pattern.success_count + %(successes)s::int,
    success_rate = (workflow_pattern.success_count + %(successes)s::int)::real / (workflow_pattern.usage_count + 1),
    avg_duration_ms = round((workflow_pattern.avg_duration_ms::float8 * workflow_pattern.usage_count
                             + %(ms)s::float8) / (workflow_pattern.usage_count + 1)),
    last_used = now()
RETURNING pattern_id, (xmax = 0) AS inserted;

-- name: count_pattern_run
-- A run of a known pattern only: a failed workflow (which creates no capability), or a capability called as a task.
UPDATE workflow_pattern SET
    usage_count = usage_count + 1,
    success_count = success_count + %(successes)s::int,
    success_rate = (success_count + %(successes)s::int)::real / (usage_count + 1),
    avg_duration_ms = round((avg_duration_ms::float8 * usage_count + %(ms)s::float8) / (usage_count + 1)),
    last_used = now()
WHERE pattern_hash = %(pattern_hash)s
RETURNING pattern_id, false AS inserted;

-- name: insert_capability
INSERT INTO capability_records (org, project, namespace, action, hash, workflow_pattern_id, created_by)
VALUES (%(org)s, %(project)s, %(namespace)s, %(action)s, %(hash)s, %(pattern_id)s, %(created_by)s);

-- name: capability_by_pattern
SELECT * FROM capability_view WHERE pattern_id = %(pattern_id)s ORDER BY created_at LIMIT 1;

-- name: capability_by_id
SELECT * FROM capability_view WHERE id = %(id)s;

-- name: resolve_capability
-- An id first, then an FQDN, then a current display name (the newest if several hashes share it), then an alias;
-- only among those `user` may see (theirs, or shared; every one when `user` is null).
WITH hits AS (
    SELECT id, 0 AS rank FROM capability_records WHERE id = %(id)s::uuid
    UNION ALL
    SELECT id, 1 FROM capability_records
    WHERE org || '.' || project || '.' || namespace || '.' || action || '.' || hash = %(ref)s::text
    UNION ALL
    SELECT id, 2 FROM capability_records WHERE namespace || ':' || action = %(ref)s::text
    UNION ALL
    SELECT capability_id, 3 FROM capability_alias WHERE alias = %(ref)s::text
)
SELECT v.* FROM hits JOIN capability_view v ON v.id = hits.id
WHERE (%(user)s::text IS NULL OR v.created_by = %(user)s::text OR v.visibility <> 'private')
ORDER BY hits.rank, v.created_at DESC
LIMIT 1;

-- name: page_snapshot
-- A page and its total read in one snapshot (else a capability committed between the two reads is counted
-- but not listed).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: list_capabilities
SELECT * FROM capability_view v
WHERE (%(user)s::text IS NULL OR v.created_by = %(user)s::text OR v.visibility <> 'private')
  AND (%(like)s::text IS NULL OR display_name LIKE %(like)s::text ESCAPE '\')
  AND (NOT %(unnamed_only)s::boolean OR NOT v.renamed)
ORDER BY display_name, id
LIMIT %(limit)s::int OFFSET %(offset)s::int;

-- name: count_capabilities
SELECT count(*) FROM capability_view v
WHERE (%(user)s::text IS NULL OR v.created_by = %(user)s::text OR v.visibility <> 'private')
  AND (%(like)s::text IS NULL OR display_name LIKE %(like)s::text ESCAPE '\')
  AND (NOT %(unnamed_only)s::boolean OR NOT v.renamed);

-- name: lock_capabilities
-- Locks the records and their patterns, in id order (two merges of the same pair cannot deadlock).
SELECT c.id FROM capability_records c JOIN workflow_pattern p ON p.pattern_id = c.workflow_pattern_id
WHERE c.id = ANY(%(ids)s::uuid[])
ORDER BY c.id
FOR UPDATE;

-- name: lock_display_name
-- Serialises renames to the same name; the lock ends with the transaction.
SELECT pg_advisory_xact_lock(hashtextextended(%(org)s::text || '.' || %(project)s::text || '.' || %(name)s::text, 0));

-- name: name_taken
-- Another capability's current name, or an old name that still resolves to another capability (taking it would
-- make the name call another capability than before). A new capability has no id yet: null.
SELECT EXISTS (
    SELECT FROM capability_records
    WHERE org = %(org)s AND project = %(project)s AND namespace = %(namespace)s AND action = %(action)s
      AND id IS DISTINCT FROM %(id)s::uuid
) OR EXISTS (
    SELECT FROM capability_alias
    WHERE alias = %(namespace)s::text || ':' || %(action)s::text AND capability_id IS DISTINCT FROM %(id)s::uuid
);

-- name: capability_aliases
-- The old names (display names and FQDNs) that still resolve to the capability.
SELECT alias FROM capability_alias WHERE capability_id = %(id)s ORDER BY alias;

-- name: add_alias
-- The newest owner of a name keeps it.
INSERT INTO capability_alias (alias, capability_id) VALUES (%(alias)s, %(id)s)
ON CONFLICT (alias) DO UPDATE SET capability_id = EXCLUDED.capability_id;

-- name: move_aliases
UPDATE capability_alias SET capability_id = %(target)s WHERE capability_id = %(source)s;

-- name: rename_record
-- A new name marks the capability renamed (by its user) for good; a change of tags or visibility alone does not.
UPDATE capability_records SET
    renamed = renamed OR namespace <> %(namespace)s OR action <> %(action)s,
    namespace = %(namespace)s, action = %(action)s, tags = coalesce(%(tags)s::text[], tags),
    visibility = coalesce(%(visibility)s::text, visibility),
    version = version + 1, updated_at = now()
WHERE id = %(id)s;

-- name: describe_pattern
UPDATE workflow_pattern SET
    name = %(name)s, description = coalesce(%(description)s::text, description),
    intent_embedding = coalesce(%(embedding)s::vector, intent_embedding)
WHERE pattern_id = %(pattern_id)s;

-- name: delete_pattern
-- Cascades to its capability record, the record's aliases and cache.
DELETE FROM workflow_pattern WHERE pattern_id = %(pattern_id)s;

-- name: merge_counts
-- Before the source pattern is deleted: it still holds its last use.
UPDATE workflow_pattern SET
    usage_count = %(usage_count)s,
    success_count = %(success_count)s,
    success_rate = CASE WHEN %(usage_count)s::int = 0 THEN 1.0 ELSE %(success_count)s::real / %(usage_count)s::int END,
    avg_duration_ms = %(avg_duration_ms)s,
    last_used = (SELECT max(last_used) FROM workflow_pattern WHERE pattern_id = ANY(%(pattern_ids)s::uuid[]))
WHERE pattern_id = %(pattern_id)s;

-- name: redefine_pattern
-- After the source pattern is deleted: its hash is free to follow its definition (a program's too).
UPDATE workflow_pattern SET
    pattern_hash = %(pattern_hash)s, dag_structure = %(dag_structure)s, parameters_schema = %(parameters_schema)s,
    code_snippet = %(dag_structure)s::jsonb -> 'document' ->> 'code',
    code_hash = %(dag_structure)s::jsonb -> 'document' ->> 'code_hash'
WHERE pattern_id = %(pattern_id)s;

-- name: touch_record
UPDATE capability_records SET version = version + 1, updated_at = now() WHERE id = %(id)s;

-- name: move_capability_edges
-- Edges of node 'capability:<source>' become edges of 'capability:<target>'. Counts add up; the higher
-- confidence and later sighting win, and so does the source that sorts last, which is also the strongest
-- ('user' > 'template' > 'observed' > 'inferred'). GROUP BY: source->target and target->source both become
-- target->target.
WITH moved AS (
    DELETE FROM tool_dependency WHERE from_tool_id = %(source)s OR to_tool_id = %(source)s
    RETURNING *
)
INSERT INTO tool_dependency (from_tool_id, to_tool_id, edge_type, observed_count, confidence_score,
                             last_observed, source)
SELECT CASE WHEN from_tool_id = %(source)s THEN %(target)s ELSE from_tool_id END,
       CASE WHEN to_tool_id = %(source)s THEN %(target)s ELSE to_tool_id END,
       edge_type, sum(observed_count), max(confidence_score), max(last_observed), max(source)
FROM moved
GROUP BY 1, 2, 3
ON CONFLICT (from_tool_id, to_tool_id, edge_type) DO UPDATE SET
    observed_count = tool_dependency.observed_count + EXCLUDED.observed_count,
    confidence_score = greatest(tool_dependency.confidence_score, EXCLUDED.confidence_score),
    last_observed = greatest(tool_dependency.last_observed, EXCLUDED.last_observed),
    source = greatest(tool_dependency.source, EXCLUDED.source);

-- name: search_capabilities
-- The intents nearest the query by the HNSW index, each with its capability (a capability comes once per
-- intent of it among the nearest).
WITH nearest AS (
    SELECT pattern_id, embedding <=> %(query)s::vector AS distance
    FROM capability_intent
    ORDER BY embedding <=> %(query)s::vector
    LIMIT %(limit)s::int
)
SELECT v.*, 1 - n.distance AS similarity
FROM nearest n JOIN capability_view v ON v.pattern_id = n.pattern_id
WHERE (%(user)s::text IS NULL OR v.created_by = %(user)s::text OR v.visibility <> 'private')
ORDER BY n.distance, v.id;

-- name: add_intent
INSERT INTO capability_intent (pattern_id, intent_key, embedding)
VALUES (%(pattern_id)s, %(intent_key)s, %(embedding)s)
ON CONFLICT (pattern_id, intent_key) DO UPDATE SET uses = capability_intent.uses + 1, embedding = EXCLUDED.embedding;

-- name: move_intents
-- Before the source pattern is deleted (which deletes its own rows).
INSERT INTO capability_intent (pattern_id, intent_key, embedding, uses)
SELECT %(target)s, intent_key, embedding, uses FROM capability_intent WHERE pattern_id = %(source)s
ON CONFLICT (pattern_id, intent_key) DO UPDATE SET uses = capability_intent.uses + EXCLUDED.uses;

-- name: cached_result
SELECT result FROM capability_cache
WHERE capability_id = %(id)s AND params_hash = %(params_hash)s AND expires_at > now();

-- name: store_cached_result
INSERT INTO capability_cache (capability_id, params_hash, result, expires_at)
VALUES (%(id)s, %(params_hash)s, %(result)s, now() + make_interval(secs => %(ttl_ms)s::float8 / 1000))
ON CONFLICT (capability_id, params_hash) DO UPDATE SET
    result = EXCLUDED.result, expires_at = EXCLUDED.expires_at;

-- name: invalidate_cache
DELETE FROM capability_cache WHERE capability_id = %(id)s;
