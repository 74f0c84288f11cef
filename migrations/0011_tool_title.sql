-- A tool's display title (MCP `Tool.title`), kept so that it is forwarded to clients and embedded with the tool's
-- name and description. NULL for the many servers that give none.
ALTER TABLE tool_schema ADD COLUMN IF NOT EXISTS title text;
