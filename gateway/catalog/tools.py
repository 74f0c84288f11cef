"""The tool catalog: every downstream tool this gateway routes, as its server listed it or as the index stored it.

Pure bookkeeping, kept in step by the runtime: a server's listing replaces what was known of it; at start the
stored tools of the servers this gateway runs stand in until their servers list. A listing is *indexed* once the
index holds it (embedded, searchable by meaning); until then `unindexed` names its server. Lookups on the call
path read maps rebuilt once per change, never per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.catalog.names import NameTable
from gateway.models import ToolDef


class ToolCatalog:
    """Known tools by id, their input schemas, and the client-safe names that route to them."""

    def __init__(self, *, servers: Iterable[str]) -> None:
        """`servers`: those this gateway runs (enabled in its config); other servers' stored tools are left out."""
        self.names = NameTable()
        self.servers = frozenset(servers)
        self._listed: dict[str, list[ToolDef]] = {}
        self._stored: dict[str, list[ToolDef]] = {}
        self._indexed: dict[str, list[ToolDef]] = {}
        self._known: dict[str, ToolDef] = {}
        self._schemas: dict[str, dict[str, Any]] = {}

    def listed(self, server: str, tools: Sequence[ToolDef]) -> bool:
        """`server` listed `tools`; True if that changed what is known of it."""
        changed = self._listed.get(server, self._stored.get(server)) != list(tools)
        self._listed[server] = list(tools)
        self.names.set_server(server, [t.name for t in tools])
        self._refresh()
        return changed

    def stored(self, tools: Iterable[ToolDef]) -> None:
        """The index's tools, routed until their servers list (only for the servers this gateway runs)."""
        for tool in tools:
            if tool.server in self.servers:
                self._stored.setdefault(tool.server, []).append(tool)
        for server, kept in self._stored.items():
            if server not in self._listed:
                self.names.set_server(server, [t.name for t in kept])
        self._refresh()

    def indexed(self, server: str, tools: Sequence[ToolDef]) -> None:
        """The index now holds `tools` as `server`'s listing."""
        self._indexed[server] = list(tools)

    def unindexed(self) -> list[str]:
        """The servers whose latest listing the index does not hold yet, in name order."""
        return sorted(s for s, tools in self._listed.items() if self._indexed.get(s) != tools)

    def listings(self) -> dict[str, list[ToolDef]]:
        """What each server listed this run, by server."""
        return dict(self._listed)

    @property
    def known(self) -> Mapping[str, ToolDef]:
        """Every tool by id: as its server listed it this run, else as the index stored it (read-only)."""
        return self._known

    @property
    def schemas(self) -> Mapping[str, dict[str, Any]]:
        """Input schema by tool id (read-only)."""
        return self._schemas

    def _refresh(self) -> None:
        by_id = {t.tool_id: t for tools in self._stored.values() for t in tools}
        by_id.update({t.tool_id: t for tools in self._listed.values() for t in tools})
        self._known = by_id
        self._schemas = {tool_id: tool.input_schema for tool_id, tool in by_id.items()}
