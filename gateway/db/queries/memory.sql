-- name: remember_intent
INSERT INTO workflow_intent (intent, embedding, model, tools, edges, success, created_by)
VALUES (%(intent)s, %(embedding)s, %(model)s, %(tools)s, %(edges)s, %(success)s, %(created_by)s);

-- name: recall_intents
-- The nearest successful past intents of the same embedding model that `user` may learn from: theirs, and those
-- whose maker shared a capability of the same tools (every one when `user` is null: stdio's one user).
SELECT i.intent, i.tools, i.edges, 1 - (i.embedding <=> %(query)s::vector) AS similarity
FROM workflow_intent i
WHERE i.model = %(model)s::text AND i.success
  AND (%(user)s::text IS NULL OR i.created_by = %(user)s::text
       OR EXISTS (SELECT FROM capability_view c
                  WHERE c.created_by = i.created_by AND c.visibility <> 'private'
                    AND c.tools @> i.tools AND c.tools <@ i.tools))
ORDER BY i.embedding <=> %(query)s::vector
LIMIT %(limit)s::int;

-- name: count_intents
-- How many successful past intents of this embedding model there are (the tool prior refits when this grows).
SELECT count(*) AS n FROM workflow_intent WHERE model = %(model)s::text AND success;

-- name: training_intents
-- The most recent successful past intents of this model, with the tools that served them (the tool prior's data).
SELECT embedding, tools FROM workflow_intent
WHERE model = %(model)s::text AND success
ORDER BY id DESC
LIMIT %(limit)s::int;

-- name: stored_prior
-- The tool prior last fitted for this embedding model, if any.
SELECT tools, dimensions, weights, samples, intents FROM tool_prior WHERE model = %(model)s::text;

-- name: store_prior
-- Keep a freshly fitted tool prior (the last fit of any gateway sharing this database wins).
INSERT INTO tool_prior (model, tools, dimensions, weights, samples, intents)
VALUES (%(model)s::text, %(tools)s::text[], %(dimensions)s::int, %(weights)s::bytea, %(samples)s::int,
        %(intents)s::int)
ON CONFLICT (model) DO UPDATE
SET tools = EXCLUDED.tools, dimensions = EXCLUDED.dimensions, weights = EXCLUDED.weights,
    samples = EXCLUDED.samples, intents = EXCLUDED.intents, fitted_at = now();
