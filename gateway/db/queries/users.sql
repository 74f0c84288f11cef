-- Users, API keys, HTTP sessions and rate-limit windows (migrations/0008_users.sql). Key hashes leave the
-- database through find_key only, the one query authentication needs.

-- name: insert_user
-- A taken key prefix inserts nothing (the caller draws another key); a taken username raises.
INSERT INTO users (username, role, api_key_hash, api_key_prefix, api_key_created_at)
VALUES (%(username)s, %(role)s, %(key_hash)s, %(key_prefix)s, now())
ON CONFLICT (api_key_prefix) DO NOTHING
RETURNING id::text AS id, username, role, api_key_prefix AS key_prefix, api_key_created_at AS key_created_at,
          revoked_at, created_at;

-- name: get_user
SELECT id::text AS id, username, role, api_key_prefix AS key_prefix, api_key_created_at AS key_created_at,
       revoked_at, created_at
FROM users WHERE username = %(username)s;

-- name: list_users
SELECT id::text AS id, username, role, api_key_prefix AS key_prefix, api_key_created_at AS key_created_at,
       revoked_at, created_at, github_id IS NOT NULL AS github, oidc_subject IS NOT NULL AS oidc
FROM users ORDER BY username;

-- name: find_key
SELECT id::text AS user_id, username, role, api_key_hash AS key_hash, revoked_at
FROM users WHERE api_key_prefix = %(key_prefix)s;

-- name: revoke_user
-- A second revoke keeps the first date.
UPDATE users SET revoked_at = coalesce(revoked_at, now()), updated_at = now()
WHERE username = %(username)s
RETURNING id::text AS id, username, role, api_key_prefix AS key_prefix, api_key_created_at AS key_created_at,
          revoked_at, created_at;

-- name: rotate_key
-- Nothing is updated when the user is unknown or the new prefix is taken (the caller tells which).
UPDATE users SET api_key_hash = %(key_hash)s, api_key_prefix = %(key_prefix)s, api_key_created_at = now(),
                 revoked_at = NULL, updated_at = now()
WHERE username = %(username)s
  AND NOT EXISTS (SELECT 1 FROM users taken WHERE taken.api_key_prefix = %(key_prefix)s)
RETURNING id::text AS id, username, role, api_key_prefix AS key_prefix, api_key_created_at AS key_created_at,
          revoked_at, created_at;

-- name: open_session
INSERT INTO http_session (session_id, user_id, expires_at)
VALUES (%(session_id)s, %(user_id)s::uuid, now() + make_interval(secs => %(ttl_s)s))
RETURNING expires_at;

-- name: session_owner
-- A revoked user's sessions are over too.
SELECT s.user_id::text
FROM http_session s JOIN users u ON u.id = s.user_id
WHERE s.session_id = %(session_id)s AND s.expires_at > now() AND u.revoked_at IS NULL;

-- name: count_hit
-- One statement, so concurrent hits each see their own count. Windows are fixed, aligned on the epoch.
INSERT INTO rate_limit_window AS w (key_prefix, window_start, count, expires_at)
SELECT %(key_prefix)s, aligned.start, 1, aligned.start + make_interval(secs => %(window_s)s)
FROM (
    SELECT to_timestamp(floor(extract(epoch FROM now())::float8 / %(window_s)s) * %(window_s)s) AS start
) aligned
ON CONFLICT (key_prefix, window_start) DO UPDATE SET count = w.count + 1
RETURNING w.count, w.expires_at AS window_end;

-- name: prune_expired_sessions
DELETE FROM http_session WHERE session_id IN (
    SELECT session_id FROM http_session WHERE expires_at <= now() LIMIT %(batch)s
);

-- name: prune_expired_windows
DELETE FROM rate_limit_window WHERE (key_prefix, window_start) IN (
    SELECT key_prefix, window_start FROM rate_limit_window WHERE expires_at <= now() LIMIT %(batch)s
);
