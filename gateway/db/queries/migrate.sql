-- The migration runner's bookkeeping.

-- name: lock_timeout
SELECT set_config('lock_timeout', %(timeout)s, true);

-- name: migration_lock
SELECT pg_advisory_lock(%(key)s);

-- name: migration_unlock
SELECT pg_advisory_unlock(%(key)s);

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version, name, checksum FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s);
