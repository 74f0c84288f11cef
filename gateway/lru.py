"""A bounded mapping that forgets the entry used least recently: the one cache shape the gateway keeps in memory."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import ItemsView, Iterator, MutableMapping, ValuesView
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(MutableMapping[K, V], Generic[K, V]):
    """At most `capacity` entries; reading or writing an entry makes it the most recent, and past the capacity
    the least recent goes."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"an LRU needs room for at least one entry, not {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._items[key]
        self._items.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> ItemsView[K, V]:
        """All entries, least recent first; looking over them uses none of them."""
        return self._items.items()

    def values(self) -> ValuesView[V]:
        return self._items.values()

    def touch(self, key: K) -> None:
        """Make `key` the most recent without reading it."""
        self._items.move_to_end(key)
