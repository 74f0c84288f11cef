-- Server administration: the embedded server's database, probes, sizes. {placeholders} are identifiers.

-- name: database_exists
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %(name)s);

-- name: create_database
CREATE DATABASE {name};

-- name: drop_database
DROP DATABASE IF EXISTS {name} WITH (FORCE);

-- name: vector_type_exists
SELECT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'vector');

-- name: session_settings
-- Before pgvector is loaded in a session these are placeholders, which it adopts when it loads.
SELECT set_config('hnsw.ef_search', %(ef_search)s, false),
       set_config('hnsw.iterative_scan', %(iterative_scan)s, false),
       set_config('statement_timeout', %(statement_timeout)s, false);

-- name: database_size
SELECT pg_database_size(current_database());
