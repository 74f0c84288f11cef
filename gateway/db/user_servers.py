"""Users' own servers in Postgres (`user_mcp_configs`): each an ``mcpServers`` entry as written, secrets as
``${secret:NAME}`` references only."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query


@dataclass(frozen=True, slots=True)
class UserServerRow:
    name: str
    entry: dict[str, Any]
    updated_at: datetime
    tools: list[dict[str, Any]]
    """What the server listed when it last ran (``name``, ``description``, ``input_schema``, ...)."""


class UserServerStore:
    """Entries by (user id, name)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def put(self, user_id: str, name: str, entry: dict[str, Any]) -> None:
        async with translated(f"storing the server {name!r}"), self._pool.connection() as conn:
            params = {"user_id": user_id, "name": name, "entry": Jsonb(entry)}
            await conn.execute(named_query("put_user_server"), params)

    async def get(self, user_id: str, name: str) -> dict[str, Any] | None:
        async with translated(f"reading the server {name!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            entry = await (await cursor.execute(named_query("get_user_server"), {"user_id": user_id, "name": name})
                           ).fetchone()
        return dict(entry) if entry is not None else None

    async def list(self, user_id: str) -> list[UserServerRow]:
        async with translated("listing a user's servers"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(UserServerRow))
            return await (await cursor.execute(named_query("list_user_servers"), {"user_id": user_id})).fetchall()

    async def set_tools(self, user_id: str, name: str, tools: builtins.list[dict[str, Any]]) -> None:
        async with translated(f"keeping the tools of the server {name!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("set_user_server_tools"),
                               {"user_id": user_id, "name": name, "tools": Jsonb(tools)})

    async def delete(self, user_id: str, name: str) -> bool:
        async with translated(f"deleting the server {name!r}"), self._pool.connection() as conn:
            cursor = await conn.execute(named_query("delete_user_server"), {"user_id": user_id, "name": name})
            return cursor.rowcount > 0
