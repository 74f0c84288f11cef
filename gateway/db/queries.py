"""Named SQL queries, loaded from ``gateway/db/queries/*.sql`` (aiosql / procrastinate style).

A file holds several queries, each introduced by a ``-- name: some_query`` header line; the text up to the
next header is the query, less its whole-line comments (a ``%`` in one would read as a placeholder). Names are
unique across files. The files ship with the package and are trusted like code, which is why their text is
typed as a ``LiteralString`` here, in this one place.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import LiteralString

from psycopg import sql

QUERIES_DIR = Path(__file__).parent / "queries"
_HEADER_RE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")


def load_queries(directory: Path = QUERIES_DIR) -> dict[str, LiteralString]:
    """Every named query of the ``*.sql`` files in `directory`; a duplicate or empty one is a `ValueError`."""
    queries: dict[str, LiteralString] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, text in _split(path):
            if name in queries:
                raise ValueError(f"{path}: query {name!r} is defined twice")
            queries[name] = text
    return queries


def query(name: str) -> LiteralString:
    """The text of the named query (files are read once, on first use)."""
    try:
        return _packaged()[name]
    except KeyError:
        raise LookupError(f"no SQL query named {name!r} in {QUERIES_DIR}") from None


def composed(name: str, /, **identifiers: str) -> sql.Composed:
    """The named query with its ``{placeholders}`` filled by quoted identifiers (database names and such)."""
    return sql.SQL(query(name)).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})


@functools.cache
def _packaged() -> dict[str, LiteralString]:
    return load_queries(QUERIES_DIR)


def _split(path: Path) -> list[tuple[str, LiteralString]]:
    found: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER_RE.match(line.strip())
        if match:
            found.append((match.group(1), []))
        elif line.lstrip().startswith("--"):
            continue
        elif found:
            found[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"{path}: SQL before the first '-- name:' header")
    result: list[tuple[str, LiteralString]] = [(name, "\n".join(lines).strip()) for name, lines in found]
    empty = [name for name, text in result if not text]
    if empty:
        raise ValueError(f"{path}: query {empty[0]!r} is empty")
    return result
