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
