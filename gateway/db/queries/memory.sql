-- name: remember_intent
INSERT INTO workflow_intent (intent, embedding, model, tools, edges, success)
VALUES (%(intent)s, %(embedding)s, %(model)s, %(tools)s, %(edges)s, %(success)s);

-- name: recall_intents
-- The nearest successful past intents of the same embedding model.
SELECT intent, tools, edges, 1 - (embedding <=> %(query)s::vector) AS similarity
FROM workflow_intent
WHERE model = %(model)s::text AND success
ORDER BY embedding <=> %(query)s::vector
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
