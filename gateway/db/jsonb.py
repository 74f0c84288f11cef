"""Text and JSON in Postgres without losing a NUL character.

``jsonb`` refuses U+0000 in a string (``unsupported Unicode escape sequence``) and ``text`` refuses it outright,
but tools answer with NULs, arguments and error messages carry them, and one such checkpoint would fail every
save of its workflow (one such error message, its run record). The gateway's JSON dumper writes U+0000 as
U+FDD0, a Unicode noncharacter (reserved for a program's internal use, so no text exchanged between tools means
it), and its loader turns U+FDD0 back into U+0000: what is stored comes back as it was. A plain string
parameter gets the same stand-in (read back as is: the meta-tools refuse NUL in what they look up, so this
reaches only free text such as error messages). Installed on every connection the gateway opens (`install`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from psycopg.abc import AdaptContext, Buffer
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

_STAND_IN = "\ufdd0"
_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_STAND_IN_BYTES = _STAND_IN.encode()


def dumps(value: Any) -> str:
    """`json.dumps`, with every U+0000 in a string written as U+FDD0 (as Postgres gives it back: unescaped)."""
    text = json.dumps(value)
    return _ESCAPED_NUL.sub("\\1" + _STAND_IN, text) if "\\u0000" in text else text


def loads(data: str | bytes) -> Any:
    """`json.loads`, with every U+FDD0 read back as U+0000."""
    if isinstance(data, str):
        return json.loads(data.replace(_STAND_IN, "\\u0000") if _STAND_IN in data else data)
    raw = bytes(data)
    return json.loads(raw.replace(_STAND_IN_BYTES, b"\\u0000") if _STAND_IN_BYTES in raw else raw)


class _Str(StrDumperUnknown):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", _STAND_IN) if "\x00" in obj else obj)


class _StrBinary(StrBinaryDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", _STAND_IN) if "\x00" in obj else obj)


def install(context: AdaptContext) -> None:
    """Use `dumps` and `loads` for every json/jsonb value on `context` (a connection), and the stand-in for NUL
    in every string parameter."""
    set_json_dumps(dumps, context)
    set_json_loads(loads, context)
    context.adapters.register_dumper(str, _StrBinary)
    context.adapters.register_dumper(str, _Str)
