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
