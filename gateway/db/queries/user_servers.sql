-- name: put_user_server
INSERT INTO user_mcp_configs (user_id, name, entry) VALUES (%(user_id)s, %(name)s, %(entry)s)
ON CONFLICT (user_id, name) DO UPDATE SET entry = EXCLUDED.entry, tools = '[]', updated_at = now();

-- name: get_user_server
SELECT entry FROM user_mcp_configs WHERE user_id = %(user_id)s AND name = %(name)s;

-- name: list_user_servers
SELECT name, entry, updated_at, tools FROM user_mcp_configs WHERE user_id = %(user_id)s ORDER BY name;

-- name: set_user_server_tools
UPDATE user_mcp_configs SET tools = %(tools)s WHERE user_id = %(user_id)s AND name = %(name)s;

-- name: delete_user_server
DELETE FROM user_mcp_configs WHERE user_id = %(user_id)s AND name = %(name)s;
