-- Whether a user renamed the capability (cap_rename, `caps rename`): cap_list's unnamed_only keeps those never
-- renamed. Until now a generated action started with 'exec_', which no user may choose, so the action told the
-- two apart; generated names are now made of words, so a flag does. Existing capabilities keep their names: one
-- was renamed if its action is not 'exec_...', or if only its namespace changed (an old display name with the
-- same action still resolves to it; a merge moves old names of another action).
ALTER TABLE capability_records ADD COLUMN renamed boolean NOT NULL DEFAULT false;

UPDATE capability_records c SET renamed = true
WHERE c.action NOT LIKE 'exec\_%' ESCAPE '\'
   OR EXISTS (SELECT FROM capability_alias a
              WHERE a.capability_id = c.id AND split_part(a.alias, ':', 2) = c.action
                AND a.alias <> c.namespace || ':' || c.action);

CREATE OR REPLACE VIEW capability_view AS
SELECT c.id, c.org, c.project, c.namespace, c.action, c.hash,
       c.org || '.' || c.project || '.' || c.namespace || '.' || c.action || '.' || c.hash AS fqdn,
       c.namespace || ':' || c.action AS display_name,
       p.pattern_id, p.pattern_hash, p.usage_count, p.success_count, p.success_rate::float8 AS success_rate, p.avg_duration_ms,
       ARRAY(SELECT jsonb_array_elements_text(p.dag_structure -> 'tools_used')) AS tools,
       p.dag_structure -> 'document' AS document, p.parameters_schema, p.cache_config, p.description, c.tags,
       c.created_at, c.updated_at, c.created_by, c.visibility, c.renamed
FROM capability_records c
JOIN workflow_pattern p ON p.pattern_id = c.workflow_pattern_id;
