-- The full-text column of 0003 went unused: search_tools ranks words with BM25 in memory, which answers in
-- well under a millisecond where ranking thousands of OR matches with ts_rank_cd cost ~17 ms at 10,000 tools.
-- Dropping it also spares every tool upsert the tsvector it computed.
DROP INDEX IF EXISTS tool_schema_search_text_idx;
ALTER TABLE tool_schema DROP COLUMN IF EXISTS search_text;
DROP FUNCTION IF EXISTS search_query(text);
DROP FUNCTION IF EXISTS search_words(text);
