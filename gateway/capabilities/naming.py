"""Capability names: the FQDN ``org.project.namespace.action.hash4``, the display name, and their rules.

A learned capability is registered under ``local.default.<namespace>.<action>.<hash4>`` and seen and searched
as ``namespace:action``. Its generated name says what it does: the namespace is its tools' server when they
share one, else ``workflow``; the action is the first words of the intent it served (stop words and the run's
literal values dropped), or without one its tools' names (``get_current_time_then_create_entities``). A
generated name is given once and never changes (clients call it); `generated_actions` lists the fallbacks tried
when it is taken: a short hash suffix, then ``exec_<hash>``, the prefix kept for generated names (capabilities
learned before names were made from words are still called so) and refused to a user's rename.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from gateway.errors import InvalidRequestError

DEFAULT_ORG = "local"
DEFAULT_PROJECT = "default"
FALLBACK_NAMESPACE = "tools"
MIXED_NAMESPACE = "workflow"
"""The namespace of a capability whose tools come from several servers (namespaces hold no separator)."""
GENERATED_ACTION_PREFIX = "exec_"
FALLBACK_ACTION = "workflow"
NAMESPACE_MAX = 20
ACTION_MAX = 50
ACTION_WORDS = 6
"""At most this many intent words in a generated action: a tool name to read, not the whole request."""
LAST_RESORT_HASH = ACTION_MAX - len(GENERATED_ACTION_PREFIX)
STOP_WORDS = frozenset(
    "a about all also an and any are as at be but by can could do does for from give have how i if in into is"
    " it its just let me my of on onto or our please some than that the their them then these this those to up"
    " us using via want was we what when which who will with would you your".split()
)
_NAMESPACE = re.compile(r"[a-z][a-z0-9]*")
_ACTION = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_NOT_NAMESPACE_CHAR = re.compile(r"[^a-z0-9]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


def fqdn(org: str, project: str, namespace: str, action: str, hash4: str) -> str:
    """The fully qualified name ``org.project.namespace.action.hash4``."""
    return f"{org}.{project}.{namespace}.{action}.{hash4}"


def display_name(namespace: str, action: str) -> str:
    """The name users see and search: ``namespace:action``."""
    return f"{namespace}:{action}"


def default_action(hash: str) -> str:
    """``exec_`` and the first 8 characters of `hash`: the action every capability had before names were made
    from words (such names are kept); no user may choose it."""
    return GENERATED_ACTION_PREFIX + hash[:8]


def check_namespace(name: str) -> None:
    """Raise `InvalidRequestError` (field ``namespace``) unless `name` is a valid namespace."""
    if len(name) > NAMESPACE_MAX or not _NAMESPACE.fullmatch(name):
        raise InvalidRequestError(
            f"namespace must be 1 to {NAMESPACE_MAX} lowercase letters or digits, starting with a letter; got {name!r}",
            field="namespace",
        )


def check_action(name: str) -> None:
    """Raise `InvalidRequestError` (field ``action``) unless `name` is a valid action a user may choose."""
    if len(name) > ACTION_MAX or not _ACTION.fullmatch(name):
        raise InvalidRequestError(
            f"action must be 1 to {ACTION_MAX} letters, digits or '_', starting with a letter; got {name!r}",
            field="action",
        )
    if name.startswith(GENERATED_ACTION_PREFIX):
        raise InvalidRequestError(
            f"action must not start with {GENERATED_ACTION_PREFIX!r}, kept for generated names; got {name!r}",
            field="action",
        )


def namespace_for(server: str) -> str:
    """A valid namespace made from a server name: lowercased, other than letters and digits dropped, ``n``
    put before a leading digit, cut to 20 characters; ``tools`` when nothing is left."""
    name = _NOT_NAMESPACE_CHAR.sub("", server.lower())
    if name[:1].isdigit():
        name = "n" + name
    return name[:NAMESPACE_MAX] or FALLBACK_NAMESPACE


def generated_namespace(tools: Iterable[str]) -> str:
    """The namespace of a capability calling `tools` (ids ``server:tool``): the server's when all share one,
    else ``workflow`` (an id without a server, such as a capability's UUID, counts as another server)."""
    servers = {tool.split(":", 1)[0] if ":" in tool else None for tool in tools}
    if len(servers) == 1 and (server := servers.pop()) is not None:
        return namespace_for(server)
    return MIXED_NAMESPACE


def generated_action(intent: str | None, tools: Sequence[str], *, literals: Iterable[object] = ()) -> str:
    """The action of a capability learned from a run of `tools` (in task order, repeats included) for `intent`.

    The intent's words, lowercased and ``_``-joined, stop words and the words of the run's `literals` (the
    values lifted into parameters: another run passes others) dropped, at most `ACTION_WORDS`; without an
    intent, or when no word is left, the tools' names (`tools_action`)."""
    dropped = STOP_WORDS | {word for value in _strings(literals) for word in _words(value)}
    kept = [word for word in _words(intent or "") if word not in dropped]
    while kept and not kept[0][0].isalpha():
        kept.pop(0)
    return _joined(kept[:ACTION_WORDS]) or tools_action(tools)


def tools_action(tools: Sequence[str]) -> str:
    """An action naming `tools` in order (their names after ``server:``): ``read_file_then_parse``; one tool
    called n times: ``echo_3_times``; more than fit: ``a_then_b_and_2_more``."""
    names = [name for tool in dict.fromkeys(tools) if (name := "_".join(_words(tool.rsplit(":", 1)[-1])))]
    if not names:
        return FALLBACK_ACTION
    if len(names) == 1:
        return _action(names[0], f"_{len(tools)}_times" if len(tools) > 1 else "")
    for kept in range(len(names), 1, -1):
        joined, rest = "_then_".join(names[:kept]), f"_and_{len(names) - kept}_more" if kept < len(names) else ""
        if len(joined) + joined[:1].isdigit() + len(rest) <= ACTION_MAX:
            return _action(joined, rest)
    return _action(names[0], f"_and_{len(names) - 1}_more")


def generated_actions(action: str, hash: str) -> list[str]:
    """The actions to try, in order, for a new capability whose pattern hash is `hash`: `action`, then with
    the first 4 and 8 characters of `hash` as a suffix, then ``exec_`` and 45 of them (as unique as the
    pattern, and no user may choose it)."""
    suffixed = [_fit(action, ACTION_MAX - n - 1) + "_" + hash[:n] for n in (4, 8)]
    return list(dict.fromkeys([action, *suffixed, GENERATED_ACTION_PREFIX + hash[:LAST_RESORT_HASH]]))


def _words(text: str) -> list[str]:
    """The lowercase ASCII words of `text` (accents stripped, camelCase split, anything else a separator)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _WORD.findall(_CAMEL.sub(" ", ascii_text).lower())


def glob_to_like(pattern: str) -> str:
    """A SQL LIKE pattern matching what the glob `pattern` (``*``: any run, ``?``: one character) matches.

    ``\\``, ``%`` and ``_`` in `pattern` are escaped with a backslash, so the caller must bind the result as a
    parameter and write ``... LIKE %s ESCAPE '\\'`` (Postgres' default escape is the backslash too; naming it
    keeps the query's meaning in the query).
    """
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _joined(kept: Sequence[str]) -> str:
    """As many of the words `kept` as fit in an action, ``_``-joined (a first word too long is cut); "" for
    none."""
    joined = ""
    for word in kept:
        longer = f"{joined}_{word}" if joined else word
        if len(longer) > ACTION_MAX:
            break
        joined = longer
    return _action(joined or kept[0]) if kept else ""


def _action(text: str, suffix: str = "") -> str:
    """`text` then `suffix` as a valid action: ``n`` put before a leading digit, `text` cut to leave room for
    `suffix`, never ending in ``_``."""
    if text[:1].isdigit():
        text = "n" + text
    return _fit(text, ACTION_MAX - len(suffix)) + suffix


def _fit(action: str, limit: int = ACTION_MAX) -> str:
    """`action` cut to `limit` characters, without a trailing ``_``."""
    return action[:limit].rstrip("_")


def _strings(values: Iterable[object]) -> Iterable[str]:
    """Every string and number in `values`, at any depth of lists and objects."""
    for value in values:
        if isinstance(value, dict):
            yield from _strings(value.values())
        elif isinstance(value, list | tuple):
            yield from _strings(value)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            yield str(value)
