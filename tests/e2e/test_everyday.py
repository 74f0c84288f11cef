"""Everyday requests over published servers (git and time from PyPI; everything, memory and filesystem from npm):
how often the tool a search finds first answers the request, over the whole set (issue 19, item 3).

everyday.jsonl holds the requests, worded as people word them, each with the tools that answer it (one, or the
few that truly all do) and the servers those belong to. The servers are started once, behind the real gateway.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from gateway.db import ToolStore, open_pool
from tests.conftest import fresh_database
from tests.e2e.support import BIN
from tests.e2e.test_gateway import run_cli
from tests.e2e.test_published import _rankings, published_servers

EVERYDAY = Path(__file__).with_name("everyday.jsonl")
GOAL = 0.95
"""The share of requests whose first result must answer them."""
MEASURED = "31/53 (0.58)"
"""Top-1 last measured (with the server's name in the embedded text), for the xfail's reason: the ranking work
of issue 19 is to reach GOAL."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    request: str
    tools: frozenset[str]
    servers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Searched:
    """What one gateway found for every request, best first, and the tool ids its index holds."""

    found: dict[str, list[str]]
    indexed: frozenset[str]


def load(path: Path) -> list[Request]:
    """The requests of a JSON Lines file of ``{"request", "tools", "servers"}`` objects, in file order."""
    lines = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [Request(request=doc["request"], tools=frozenset(doc["tools"]), servers=tuple(doc["servers"]))
            for doc in lines]


REQUESTS = load(EVERYDAY)


def everyday_servers(directory: Path) -> Path:
    """The published servers file of test_published, plus git over the filesystem server's folder (made a
    repository of one commit)."""
    config = published_servers(directory)
    repository = directory / "files"
    git = ["git", "-C", str(repository), "-c", "user.name=Everyday", "-c", "user.email=everyday@example.org"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run([*git, *args], check=True, capture_output=True, timeout=30)
    document = json.loads(config.read_text())
    document["mcpServers"]["git"] = {"command": str(BIN / "mcp-server-git"), "args": ["--repository", str(repository)]}
    config.write_text(json.dumps(document))
    return config


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Searched]:
    """Every request searched once, through one gateway over an index `pml-gateway index` filled beforehand."""
    config = everyday_servers(tmp_path_factory.mktemp("everyday"))
    with fresh_database(postgres_url, "everyday") as url:
        done = run_cli("index", "--config", str(config), "--database-url", url)
        assert done.returncode == 0, done.stderr[-3000:]
        found = anyio.run(_rankings, "sdk", config, url, [r.request for r in REQUESTS], backend="asyncio")
        yield Searched(found=found, indexed=anyio.run(_indexed, url, backend="asyncio"))


async def _indexed(url: str) -> frozenset[str]:
    pool = await open_pool(url, max_size=1)
    try:
        return frozenset(tool.tool_id for tool in await ToolStore(pool).all_tools())
    finally:
        await pool.close()


def test_the_set_names_only_tools_its_servers_list_and_covers_each_of_them(searched: Searched) -> None:
    named = {tool for r in REQUESTS for tool in r.tools}
    assert named <= searched.indexed, sorted(named - searched.indexed)
    assert {r.request for r in REQUESTS} == set(searched.found) and len(REQUESTS) >= 40
    assert all(r.servers == tuple(sorted({t.split(":")[0] for t in r.tools})) for r in REQUESTS)
    assert {s for r in REQUESTS for s in r.servers} == {"git", "time", "everything", "memory", "filesystem"}


@pytest.mark.xfail(strict=False, reason=f"top-1 is {MEASURED} on the current ranking, short of {GOAL}")
def test_the_tool_found_first_answers_at_least_95_percent_of_everyday_requests(searched: Searched) -> None:
    misses = [f"{r.request!r}: wants {sorted(r.tools)}, found {searched.found[r.request][:3]}"
              for r in REQUESTS if not r.tools.intersection(searched.found[r.request][:1])]
    hits = len(REQUESTS) - len(misses)
    assert hits / len(REQUESTS) >= GOAL, f"top-1 {hits}/{len(REQUESTS)}, misses:\n" + "\n".join(misses)
