"""Tests of the use cases: ranking, words, suggestion and learning (the last two over a real Postgres)."""
