"""PML Gateway: one MCP server in front of many, with a procedural memory in Postgres + pgvector."""

__version__ = "0.1.0"
