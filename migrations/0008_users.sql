-- Users with API keys (seed-data-architecture.md section 2.1), HTTP sessions (24 h) and fixed rate-limit
-- windows (1 h), which the seed kept in Deno KV. An API key itself is never stored: only its Argon2id hash and
-- its lookup prefix ("ac_" and 8 characters).
CREATE TABLE users (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    github_id          TEXT UNIQUE,
    username           TEXT NOT NULL UNIQUE,
    email              TEXT,
    avatar_url         TEXT,
    role               TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'ops')),
    api_key_hash       TEXT,
    api_key_prefix     TEXT UNIQUE,
    api_key_created_at TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE http_session (
    session_id TEXT PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX http_session_expires_at_idx ON http_session (expires_at);
CREATE INDEX http_session_user_id_idx ON http_session (user_id);

CREATE TABLE rate_limit_window (
    key_prefix   TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    count        INT NOT NULL DEFAULT 1,
    expires_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_prefix, window_start)
);

CREATE INDEX rate_limit_window_expires_at_idx ON rate_limit_window (expires_at);
