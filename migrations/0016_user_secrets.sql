-- Each user's secrets (seed-data-architecture.md, planned user_secrets): never in clear. A fresh AES-256-GCM data
-- key per secret encrypts it; the data key is stored wrapped by a master key (key_id names which one), and both
-- are bound to (user, name) as associated data. A rotation of the master key rewrites wrapped_key and key_id only.
CREATE TABLE user_secrets (
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    key_id      TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name)
);

-- Serves a rotation's "not yet under the current key".
CREATE INDEX user_secrets_key_id_idx ON user_secrets (key_id);
