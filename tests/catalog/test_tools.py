"""The tool catalog: what a server lists replaces what was stored of it; only this gateway's servers count."""

from __future__ import annotations

from gateway.catalog import ToolCatalog
from gateway.models import ToolDef


def tool(server: str, name: str, *, description: str = "", schema: dict[str, object] | None = None) -> ToolDef:
    return ToolDef(server=server, name=name, description=description, input_schema=schema or {"type": "object"})


def test_stored_tools_route_until_their_server_lists_and_other_gateways_servers_are_left_out() -> None:
    catalog = ToolCatalog(servers=["time", "notes"])
    catalog.stored([tool("time", "now"), tool("notes", "write"), tool("elsewhere", "x")])
    assert set(catalog.known) == {"time:now", "notes:write"}
    assert catalog.names.resolve("time__now") == ("time", "now")
    assert catalog.listed("time", [tool("time", "now"), tool("time", "convert")])
    assert set(catalog.known) == {"time:now", "time:convert", "notes:write"}
    assert catalog.names.resolve("elsewhere__x") is None


def test_a_listing_reports_a_change_only_when_the_tools_differ_from_what_was_known() -> None:
    catalog = ToolCatalog(servers=["time"])
    catalog.stored([tool("time", "now")])
    assert not catalog.listed("time", [tool("time", "now")])  # the same as stored
    assert catalog.listed("time", [tool("time", "now", description="the time")])
    assert not catalog.listed("time", [tool("time", "now", description="the time")])
    assert catalog.listed("time", [])
    assert catalog.names.resolve("time__now") is None  # no longer routed (its stored entry stays known)


def test_schemas_follow_the_latest_listing() -> None:
    catalog = ToolCatalog(servers=["a"])
    catalog.listed("a", [tool("a", "t", schema={"type": "object", "required": ["x"]})])
    assert catalog.schemas == {"a:t": {"type": "object", "required": ["x"]}}
    assert catalog.listings() == {"a": [tool("a", "t", schema={"type": "object", "required": ["x"]})]}


def test_a_listing_is_unindexed_until_the_index_holds_that_very_listing() -> None:
    catalog = ToolCatalog(servers=["a", "b"])
    assert catalog.unindexed() == []
    catalog.listed("b", [tool("b", "t")])
    catalog.listed("a", [tool("a", "t")])
    assert catalog.unindexed() == ["a", "b"]
    catalog.indexed("a", [tool("a", "t")])
    assert catalog.unindexed() == ["b"]
    catalog.listed("a", [tool("a", "t"), tool("a", "u")])  # a new tool: not indexed yet
    assert catalog.unindexed() == ["a", "b"]
