-- The OAuth authorization server's clients, pending sign-ins, codes and tokens (migrations/0017_oauth.sql).
-- Every lookup is by a secret's SHA-256; the secrets themselves never reach the database.

-- name: insert_oauth_client
INSERT INTO oauth_client (client_id, secret_hash, metadata)
VALUES (%(client_id)s, %(secret_hash)s, %(metadata)s);

-- name: get_oauth_client
SELECT client_id, secret_hash, metadata FROM oauth_client WHERE client_id = %(client_id)s;

-- name: insert_oauth_pending
INSERT INTO oauth_pending (state_hash, client_id, request, expires_at)
VALUES (%(state_hash)s, %(client_id)s, %(request)s, now() + make_interval(secs => %(ttl_s)s));

-- name: take_oauth_pending
-- A pending sign-in is used once: taking it deletes it; an expired one is taken as nothing.
DELETE FROM oauth_pending WHERE state_hash = %(state_hash)s
RETURNING client_id, request, expires_at > now() AS live;

-- name: insert_oauth_code
INSERT INTO oauth_code (code_hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_explicit,
                        code_challenge, scopes, resource, expires_at)
VALUES (%(code_hash)s, gen_random_uuid(), %(client_id)s, %(user_id)s::uuid, %(redirect_uri)s,
        %(redirect_uri_explicit)s, %(code_challenge)s, %(scopes)s, %(resource)s,
        now() + make_interval(secs => %(ttl_s)s));

-- name: get_oauth_code
SELECT grant_id::text AS grant_id, client_id, user_id::text AS user_id, redirect_uri, redirect_uri_explicit,
       code_challenge, scopes, resource, extract(epoch FROM expires_at)::float8 AS expires_at,
       used_at IS NOT NULL AS used
FROM oauth_code WHERE code_hash = %(code_hash)s;

-- name: use_oauth_code
-- The one exchange a code allows: nothing is returned when it was used already.
UPDATE oauth_code SET used_at = now()
WHERE code_hash = %(code_hash)s AND used_at IS NULL AND expires_at > now()
RETURNING grant_id::text;

-- name: insert_oauth_token
INSERT INTO oauth_token (token_hash, kind, grant_id, client_id, user_id, scopes, resource, expires_at)
VALUES (%(token_hash)s, %(kind)s, %(grant_id)s::uuid, %(client_id)s, %(user_id)s::uuid, %(scopes)s, %(resource)s,
        now() + make_interval(secs => %(ttl_s)s));

-- name: get_oauth_token
-- With its user, whose own revocation ends the token too.
SELECT t.kind, t.grant_id::text AS grant_id, t.client_id, t.user_id::text AS user_id, u.username, u.role, t.scopes,
       t.resource, extract(epoch FROM t.expires_at)::bigint AS expires_at,
       t.revoked_at IS NOT NULL OR u.revoked_at IS NOT NULL AS revoked
FROM oauth_token t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s;

-- name: use_oauth_refresh_token
-- Rotation: a refresh token is revoked as it is used; nothing is returned when it was revoked already.
UPDATE oauth_token SET revoked_at = now()
WHERE token_hash = %(token_hash)s AND kind = 'refresh' AND revoked_at IS NULL
RETURNING grant_id::text;

-- name: revoke_oauth_grant
UPDATE oauth_token SET revoked_at = coalesce(revoked_at, now()) WHERE grant_id = %(grant_id)s::uuid;

-- name: prune_expired_oauth_pending
DELETE FROM oauth_pending WHERE state_hash IN (
    SELECT state_hash FROM oauth_pending WHERE expires_at <= now() LIMIT %(batch)s
);

-- name: prune_expired_oauth_codes
-- A day past their expiry: until then a used code presented again is still told apart (and revokes its grant).
DELETE FROM oauth_code WHERE code_hash IN (
    SELECT code_hash FROM oauth_code WHERE expires_at <= now() - interval '1 day' LIMIT %(batch)s
);

-- name: prune_expired_oauth_tokens
DELETE FROM oauth_token WHERE token_hash IN (
    SELECT token_hash FROM oauth_token WHERE expires_at <= now() - interval '1 day' LIMIT %(batch)s
);

-- name: find_user_by_github_id
SELECT id::text AS id, username, role, revoked_at IS NOT NULL AS revoked FROM users WHERE github_id = %(subject)s;

-- name: find_user_by_oidc
SELECT id::text AS id, username, role, revoked_at IS NOT NULL AS revoked
FROM users WHERE oidc_issuer = %(issuer)s AND oidc_subject = %(subject)s;

-- name: insert_signed_in_user
-- A first sign-in (open sign-up): a taken username inserts nothing, and the caller tries the next candidate.
INSERT INTO users (username, email, github_id, oidc_issuer, oidc_subject)
VALUES (%(username)s, %(email)s, %(github_id)s, %(oidc_issuer)s, %(oidc_subject)s)
ON CONFLICT (username) DO NOTHING
RETURNING id::text AS id, username, role, false AS revoked;

-- name: link_identity
-- An admin links an upstream identity to a user (closed sign-up): GitHub's numeric id, or an OIDC issuer and subject.
UPDATE users SET github_id = coalesce(%(github_id)s, github_id), oidc_issuer = coalesce(%(oidc_issuer)s, oidc_issuer),
                 oidc_subject = coalesce(%(oidc_subject)s, oidc_subject), updated_at = now()
WHERE username = %(username)s
RETURNING id::text;
