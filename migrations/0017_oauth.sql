-- OAuth 2.1 sign-in (issue 22): the gateway's own authorization server, its sign-in delegated to an upstream
-- identity provider (GitHub, users.github_id; or an OpenID Connect issuer, users.oidc_issuer + oidc_subject).
-- Every secret is stored as its SHA-256 (hex) only: client secrets, the upstream state, codes, tokens.
ALTER TABLE users ADD COLUMN oidc_issuer TEXT, ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX users_oidc_identity_idx ON users (oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;

-- Dynamically registered clients (RFC 7591): their metadata as registered, less the secret.
CREATE TABLE oauth_client (
    client_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    metadata    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- An /authorize request waiting for the upstream's callback (the seed's auth/pending:*, 15 minutes), keyed by
-- the hash of the state sent upstream.
CREATE TABLE oauth_pending (
    state_hash TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oauth_client (client_id) ON DELETE CASCADE,
    request    JSONB NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- One sign-in's grant: its code, then the access and refresh tokens issued from it share grant_id, so that a
-- reused code or refresh token revokes them all.
CREATE TABLE oauth_code (
    code_hash             TEXT PRIMARY KEY,
    grant_id              UUID NOT NULL,
    client_id             TEXT NOT NULL REFERENCES oauth_client (client_id) ON DELETE CASCADE,
    user_id               UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    redirect_uri_explicit BOOLEAN NOT NULL,
    code_challenge        TEXT NOT NULL,
    scopes                TEXT[] NOT NULL,
    resource              TEXT,
    expires_at            TIMESTAMPTZ NOT NULL,
    used_at               TIMESTAMPTZ
);

CREATE TABLE oauth_token (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id   UUID NOT NULL,
    client_id  TEXT NOT NULL REFERENCES oauth_client (client_id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes     TEXT[] NOT NULL,
    resource   TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX oauth_token_grant_id_idx ON oauth_token (grant_id);
CREATE INDEX oauth_token_expires_at_idx ON oauth_token (expires_at);
CREATE INDEX oauth_code_expires_at_idx ON oauth_code (expires_at);
CREATE INDEX oauth_pending_expires_at_idx ON oauth_pending (expires_at);
