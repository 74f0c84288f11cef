"""Client-safe names for downstream tools: valid, short, unique, stable."""

from __future__ import annotations

import re

from gateway.catalog.names import NameTable, client_name

SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def test_a_plain_tool_is_exposed_as_server_double_underscore_tool() -> None:
    assert client_name("time", "get_current_time") == "time__get_current_time"


def test_long_or_odd_names_are_shortened_with_a_hash_and_stay_valid() -> None:
    long_name = client_name("srv", "x" * 100)
    odd = client_name("srv", "read file.v2")
    assert SAFE.match(long_name) and len(long_name) == 64
    assert SAFE.match(odd) and odd.startswith("srv__read_file_v2_")
    assert client_name("srv", "x" * 100) == long_name


def test_colliding_names_both_get_hashed_and_resolve_to_their_own_tool() -> None:
    table = NameTable()
    table.set_server("a", ["b__c"])
    table.set_server("a__b", ["c"])
    names = {n: (s, t) for n, s, t in table.names()}
    assert len(names) == 2 and all(SAFE.match(n) for n in names)
    assert sorted(names.values()) == [("a", "b__c"), ("a__b", "c")]
    for name, route in names.items():
        assert table.resolve(name) == route
        assert table.name_of(*route) == name


def test_replacing_a_server_list_drops_its_old_tools() -> None:
    table = NameTable()
    table.set_server("s", ["old"])
    table.set_server("s", ["new"])
    assert table.resolve("s__old") is None
    assert table.resolve("s__new") == ("s", "new")
