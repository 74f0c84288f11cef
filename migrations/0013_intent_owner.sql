-- A remembered intent keeps who ran the workflow that served it (`created_by`: the HTTP user's id, 'local' over
-- stdio, as capability_records has it). DAG suggestion and search recall the intents of the asking user and the
-- public ones only: an intent is public when its maker has shared (visibility other than 'private') a capability
-- of the very same tools. Intents remembered before this have no maker: only stdio's one user recalls them.
ALTER TABLE workflow_intent ADD COLUMN created_by TEXT;
