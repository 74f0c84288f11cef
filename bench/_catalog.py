"""The bench catalog: the real sealtools tools, split over fake servers, grown with variants past 4,076.

Stdlib only, so that `_catalog_server.py` (spawned 20 times by the gateway) starts in tens of milliseconds.
The catalog is deterministic: every script and every catalog server builds the same tools for a given size.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any


def eval_data(name: str) -> Path:
    """A public data set's folder: ``$PML_EVAL_DATA/<name>`` (the folder holding sealtools/, ultratool/ and
    mcpbench/ in the JSON Lines format of docs/evaluation.md), else ``data/<name>`` under the current directory."""
    return Path(os.environ.get("PML_EVAL_DATA") or "data") / name


SEALTOOLS = eval_data("sealtools")
MCPBENCH = eval_data("mcpbench")
SERVERS = 20
_SEED = 7
_QUALIFIERS = (
    "for a team workspace", "in batch mode", "from the archive", "with caching enabled",
    "for the staging environment", "as a scheduled job", "for a given region", "through the v2 API",
    "for enterprise accounts", "with a dry-run option", "for mobile clients", "from a CSV export",
)

Tool = dict[str, Any]
"""``{server, name, description, input_schema}``."""


def base_tools(directory: Path = SEALTOOLS) -> list[dict[str, Any]]:
    """The 4,076 sealtools tools in a fixed shuffled order (the file is sorted by field: a prefix is one topic)."""
    if not (directory / "tools.jsonl").is_file():
        raise SystemExit(f"no tools.jsonl in {directory}: pass --catalog DIR or set PML_EVAL_DATA to the folder "
                         "that holds sealtools/")
    with (directory / "tools.jsonl").open(encoding="utf-8") as lines:
        tools = [json.loads(line) for line in lines if line.strip()]
    random.Random(_SEED).shuffle(tools)
    return tools


def catalog(size: int, *, servers: int = SERVERS, directory: Path = SEALTOOLS) -> list[Tool]:
    """`size` tools: the real ones first, then copies with a ``_vN`` name and a qualified description."""
    base = base_tools(directory)
    tools = []
    for i in range(size):
        source, copy = base[i % len(base)], i // len(base)
        name, description = source["name"], source["description"]
        if copy:
            name = f"{name}_v{copy + 1}"
            description = f"{description} {_QUALIFIERS[(i + copy) % len(_QUALIFIERS)]}"
        tools.append({
            "server": server_name(i % servers), "name": name, "description": description,
            "input_schema": source["input_schema"],
        })
    return tools


def server_name(index: int) -> str:
    return f"srv{index + 1:02d}"


def queries(directory: Path = SEALTOOLS) -> list[dict[str, Any]]:
    """The distinct sealtools queries (``query``, ``relevant_tool_ids``) in a fixed shuffled order.

    The file runs from short one-tool queries to long multi-step ones, and embedding time grows with length:
    shuffled, any prefix (a quick run's, a round's) has about the same mix.
    """
    seen: set[str] = set()
    rows = []
    with (directory / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["query"] not in seen:
                seen.add(row["query"])
                rows.append(row)
    random.Random(_SEED).shuffle(rows)
    return rows
