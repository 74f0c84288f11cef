"""Small helpers over plain JSON values that the DAG messages share: kinds, paths, bounded rendering."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MAX_SHOWN_CHARS = 60
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def kind(value: Any) -> str:
    """The JSON kind of `value` with its article, as messages say it: ``a list``, ``an object``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def show(value: Any) -> str:
    """`value` for a message: strings quoted, others as JSON, cut short so huge input stays legible."""
    return f"'{_cut(value)}'" if isinstance(value, str) else _cut(compact(value))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def compact(value: Any) -> str:
    """Compact JSON (no spaces, UTF-8 kept); values JSON cannot hold are shown by `repr`."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def render_path(parts: Iterable[str | int]) -> str:
    """A path into arguments as messages write it: ``opts.depth``, ``items[0].name``, ``["odd key"]``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
        else:
            text += f".{part}" if text else part
    return text


def join_field(parent: str, child: str) -> str:
    """``parent.child``, or ``parent[0]`` / ``parent["odd key"]`` when `child` is bracketed."""
    if not parent or not child:
        return parent or child
    return f"{parent}{'' if child.startswith('[') else '.'}{child}"


def key_field(key: Any) -> str:
    """An object key as a field name: plain keys as they are, others quoted (``[""]``, ``["a.b"]``)."""
    return render_path([str(key)])


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` has containers more than `limit` levels deep; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
