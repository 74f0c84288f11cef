-- Capabilities are scoped to the user who made them unless shared (`visibility` other than 'private'): the
-- view that the store reads gains `created_by` and `visibility`. A capability learned over stdio (one local
-- user) is created by 'local'.
CREATE OR REPLACE VIEW capability_view AS
SELECT c.id, c.org, c.project, c.namespace, c.action, c.hash,
       c.org || '.' || c.project || '.' || c.namespace || '.' || c.action || '.' || c.hash AS fqdn,
       c.namespace || ':' || c.action AS display_name,
       p.pattern_id, p.pattern_hash, p.usage_count, p.success_count, p.success_rate::float8 AS success_rate, p.avg_duration_ms,
       ARRAY(SELECT jsonb_array_elements_text(p.dag_structure -> 'tools_used')) AS tools,
       p.dag_structure -> 'document' AS document, p.parameters_schema, p.cache_config, p.description, c.tags,
       c.created_at, c.updated_at, c.created_by, c.visibility
FROM capability_records c
JOIN workflow_pattern p ON p.pattern_id = c.workflow_pattern_id;
