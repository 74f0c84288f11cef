-- Gateways sharing a database tell each other when they have learned something (gateway/db/notify.py).

-- name: listen_learned
LISTEN pml_learned;

-- name: notify_learned
-- Inside the learning transaction: Postgres sends it on commit only, and never after a rollback.
SELECT pg_notify('pml_learned', %(origin)s::text);

-- name: listener_alive
SELECT 1;
