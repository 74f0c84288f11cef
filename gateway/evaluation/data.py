"""The evaluation files: tools and queries as JSON Lines, one object per line, read strictly.

A tools file holds ``{"id", "name", "description", "input_schema"}`` (a JSON Schema object or null; other fields
ignored). A queries or history file holds ``{"qid", "query", "relevant_tool_ids", "tool_sequence", "edges",
"split"}``: the tools a query needs, the order they are used in, and the ``[from_id, to_id]`` data-flow pairs
between them. docs/evaluation.md names the public data sets converted to this shape. An error names the file
and the line, and what was expected there.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalTool:
    id: str
    name: str
    description: str
    input_schema: dict[str, Any] | None
    server: str | None = None
    """The MCP server that lists it, when the data says (real MCP catalogs): it is indexed under that server."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalQuery:
    qid: str
    query: str
    relevant: tuple[str, ...]
    sequence: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    split: str | None

    @property
    def gold_edges(self) -> set[tuple[str, str]]:
        """The data-flow edges, or the consecutive pairs of the tool sequence when there are none."""
        if self.edges:
            return set(self.edges)
        return {(a, b) for a, b in itertools.pairwise(self.sequence) if a != b}


def load_tools(path: Path) -> list[EvalTool]:
    """The tools, in file order; a repeated id keeps its first line (a warning names the line left out)."""
    tools = []
    first: dict[str, int] = {}
    for line, doc in _lines(path):
        tool_id = _string(doc, "id", path, line)
        if tool_id in first:
            logger.warning("%s:%d: tool id %r repeats line %d; line %d is left out", path, line, tool_id,
                           first[tool_id], line)
            continue
        first[tool_id] = line
        schema = doc.get("input_schema")
        if schema is not None and not isinstance(schema, dict):
            raise ConfigError(f"{path}:{line}: \"input_schema\" must be an object or null")
        server = doc.get("server")
        tools.append(EvalTool(id=tool_id, name=str(doc.get("name") or tool_id),
                              description=str(doc.get("description") or ""), input_schema=schema,
                              server=str(server) if isinstance(server, str) and server.strip() else None))
    if not tools:
        raise ConfigError(f"{path}: no tools")
    return tools


def load_queries(path: Path, *, split: str | None = None) -> list[EvalQuery]:
    queries = []
    for line, doc in _lines(path):
        query = EvalQuery(
            qid=str(doc.get("qid", line)), query=_string(doc, "query", path, line),
            relevant=tuple(_strings(doc, "relevant_tool_ids", path, line)),
            sequence=tuple(_strings(doc, "tool_sequence", path, line, required=False)),
            edges=tuple(_edges(doc, path, line)), split=doc.get("split"),
        )
        if split is None or query.split == split:
            queries.append(query)
    if not queries:
        raise ConfigError(f"{path}: no queries" + (f" in split {split!r}" if split else ""))
    return queries


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
            if not isinstance(doc, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object")
            yield number, doc


def _string(doc: dict[str, Any], key: str, path: Path, line: int) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}:{line}: \"{key}\" must be a non-empty string")
    return value


def _strings(doc: dict[str, Any], key: str, path: Path, line: int, *, required: bool = True) -> list[str]:
    value = doc.get(key, None if required else [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise ConfigError(f"{path}:{line}: \"{key}\" must be a {'non-empty ' if required else ''}list of strings")
    return value


def _edges(doc: dict[str, Any], path: Path, line: int) -> list[tuple[str, str]]:
    value = doc.get("edges") or []
    if not isinstance(value, list) or not all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in value
    ):
        raise ConfigError(f"{path}:{line}: \"edges\" must be a list of [from_id, to_id] pairs")
    return [(a, b) for a, b in value]
