"""The one bounded cache: the least recently used entry goes first."""

from __future__ import annotations

import pytest

from gateway.lru import LRU


def test_reading_or_writing_keeps_an_entry_and_the_least_recent_goes_past_capacity() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"], cache["b"] = 1, 2
    assert cache["a"] == 1  # a is now the most recent
    cache["c"] = 3
    assert dict(cache) == {"a": 1, "c": 3}
    cache["d"] = 4
    assert list(cache) == ["c", "d"] and cache.get("a") is None


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        LRU(0)


def test_touch_makes_an_entry_the_most_recent_so_another_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"], cache["b"] = 1, 2
    cache.touch("a")
    cache["c"] = 3
    assert list(cache) == ["a", "c"]


def test_looking_over_all_entries_uses_none_of_them() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"], cache["b"] = 1, 2
    assert list(cache.items()) == [("a", 1), ("b", 2)] and list(cache.values()) == [1, 2]
    cache["c"] = 3
    assert list(cache) == ["b", "c"]
