-- name: put_secret
INSERT INTO user_secrets (user_id, name, key_id, wrapped_key, nonce, ciphertext)
VALUES (%(user_id)s, %(name)s, %(key_id)s, %(wrapped_key)s, %(nonce)s, %(ciphertext)s)
ON CONFLICT (user_id, name) DO UPDATE SET
    key_id = EXCLUDED.key_id, wrapped_key = EXCLUDED.wrapped_key, nonce = EXCLUDED.nonce,
    ciphertext = EXCLUDED.ciphertext, updated_at = now();

-- name: get_secret
SELECT key_id, wrapped_key, nonce, ciphertext FROM user_secrets WHERE user_id = %(user_id)s AND name = %(name)s;

-- name: secret_names
SELECT name, key_id, updated_at FROM user_secrets WHERE user_id = %(user_id)s ORDER BY name;

-- name: delete_secret
DELETE FROM user_secrets WHERE user_id = %(user_id)s AND name = %(name)s;

-- name: secrets_to_rewrap
-- A batch of secrets whose data key another master key than the current one wrapped.
SELECT user_id::text, name, key_id, wrapped_key, nonce, ciphertext FROM user_secrets
WHERE key_id <> %(current)s ORDER BY user_id, name LIMIT %(batch)s;

-- name: rewrap_secret
-- Only if nobody changed it meanwhile (same key id and ciphertext): a concurrent `set` wins.
UPDATE user_secrets SET key_id = %(key_id)s, wrapped_key = %(wrapped_key)s
WHERE user_id = %(user_id)s AND name = %(name)s AND key_id = %(old_key_id)s AND ciphertext = %(ciphertext)s;

-- name: secrets_by_key
SELECT key_id, count(*)::int AS secrets FROM user_secrets GROUP BY key_id ORDER BY key_id;
