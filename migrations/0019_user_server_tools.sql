-- The tools a user's server listed when it last ran: what search_tools finds for that user (and only that user)
-- without starting the server.
ALTER TABLE user_mcp_configs ADD COLUMN tools JSONB NOT NULL DEFAULT '[]';
