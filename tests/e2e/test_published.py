"""The gateway in front of servers published on npm (everything, memory, filesystem) and time from PyPI, driven by
the SDK's client, a strict client and the MCP Inspector's CLI: servers and a client that nobody here wrote.

The npm packages are pinned in tests/e2e/npm.py and installed by .ci/run. Indexing them takes about 20 s (their
start, the model, 40 embeddings), so the module indexes once into a template database and each test works on a
copy of it.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import psutil
import psycopg
import pytest
from psycopg import sql

from tests.conftest import fresh_database, with_database
from tests.e2e import npm
from tests.e2e.strict import strict_client
from tests.e2e.support import BIN, ROOT, gateway_client, gateway_command, gateway_env, search, text_of, wait_gone
from tests.e2e.test_clients import META_TOOLS
from tests.e2e.test_gateway import run_cli

pytestmark = pytest.mark.anyio

FILES = {"groceries.txt": "eggs\nmilk\n", "plans.md": "# Plans\n\nmove to Lisbon\n", "photos/cat.txt": "a cat\n"}
INSPECTOR_TIMEOUT_S = 90.0
"""One Inspector run: it spawns the gateway, which starts four servers, then answers one request."""
LISTING = ("filesystem:list_directory", "filesystem:list_directory_with_sizes", "filesystem:directory_tree")


def _request(query: str, *answers: str, wrong_first: str | None = None) -> Any:
    """A test case: `query` and the tools that answer it; `wrong_first`, the ranking it showed when the tool it
    found first did not answer it (top 3, scores relative to the first), makes it a strict xfail."""
    marks = [pytest.mark.xfail(strict=True, reason=f"ranks the wrong tool first: {wrong_first}")] if wrong_first else []
    return pytest.param(query, set(answers), marks=marks, id=query)


REQUESTS = [
    _request("add two numbers", "everything:get-sum"),
    _request("list the files in my folder", *LISTING),
    _request("remember that Alice works at Acme", "memory:create_entities", "memory:add_observations"),
    _request("what time is it in Tokyo", "time:get_current_time"),
    _request("show me what's in groceries.txt", "filesystem:read_text_file", "filesystem:read_file",
             wrong_first="everything:get-annotated-message 1.00, filesystem:read_text_file 0.41, "
                         "filesystem:get_file_info 0.32"),
    _request("what do you remember about Alice", "memory:search_nodes", "memory:open_nodes",
             wrong_first="everything:get-annotated-message 1.00, everything:toggle-subscriber-updates 0.79, "
                         "memory:delete_observations 0.46; search_nodes and open_nodes not in the top 5"),
    _request("save this text to a file called todo.txt", "filesystem:write_file",
             wrong_first="filesystem:read_file 1.00, filesystem:write_file 0.83, filesystem:read_text_file 0.78"),
    _request("find all the markdown files in my folder", "filesystem:search_files"),
    _request("rename report.txt to final.txt", "filesystem:move_file"),
]
"""Requests as people word them, and the tools that answer them; written down before any was searched, and kept
whatever the search found first."""


def published_servers(directory: Path) -> Path:
    """A servers file of everything, memory (its graph in `directory`), filesystem over `directory`/files (a few
    files) and time; absolute paths throughout."""
    folder = directory / "files"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    servers = {
        "everything": {"command": npm.binary("mcp-server-everything")},
        "memory": {"command": npm.binary("mcp-server-memory"),
                   "env": {"MEMORY_FILE_PATH": str(directory / "memory.jsonl")}},
        "filesystem": {"command": npm.binary("mcp-server-filesystem"), "args": [str(folder)]},
        "time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]},
    }
    path = directory / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[tuple[Path, str]]:
    """The published servers file and the name of a database `pml-gateway index` filled from it, once a module."""
    config = published_servers(tmp_path_factory.mktemp("published"))
    with fresh_database(postgres_url, "published") as url:
        done = run_cli("index", "--config", str(config), "--database-url", url)
        assert done.returncode == 0, done.stderr[-3000:]
        yield config, urlsplit(url).path.lstrip("/")


@contextmanager
def copy_of(postgres_url: str, name: str) -> Iterator[str]:
    """The URL of a new database copied from database `name` (a file copy: no indexing again), dropped after."""
    copy = f"copy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(name)))
    try:
        yield with_database(postgres_url, copy)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))


@pytest.fixture
def published(template: tuple[Path, str], postgres_url: str) -> Iterator[tuple[Path, str]]:
    """The published servers file, and the URL of this test's own copy of their index."""
    config, name = template
    with copy_of(postgres_url, name) as url:
        yield config, url


@pytest.fixture(scope="module", params=["sdk", "strict"])
def rankings(request: pytest.FixtureRequest, template: tuple[Path, str], postgres_url: str) -> dict[str, list[str]]:
    """The tool ids each request found, best first, through one gateway: the structured results the SDK's client
    reads, or the text a strict client's model reads; one session for all the requests."""
    config, name = template
    queries = [str(param.values[0]) for param in REQUESTS]
    with copy_of(postgres_url, name) as url:
        return anyio.run(_rankings, request.param, config, url, queries, backend="asyncio")


async def _rankings(client_kind: str, config: Path, url: str, queries: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if client_kind == "sdk":
        async with gateway_client(config, "--database-url", url) as client:
            for query in queries:
                found[query] = [hit["tool_id"] for hit in (await search(client, query))["results"]]
    else:
        async with strict_client(config, "--database-url", url) as strict:
            for query in queries:
                found[query] = (await strict.search(query))[0]
    return found


@pytest.mark.parametrize(("query", "answers"), REQUESTS)
def test_a_request_worded_as_people_word_it_finds_a_tool_that_answers_it_first(
    rankings: dict[str, list[str]], query: str, answers: set[str]
) -> None:
    assert rankings[query][0] in answers, f"{query!r} found, best first: {rankings[query]}"


async def test_everythings_sum_tool_adds_2_and_3_through_call_tool_by_its_tool_id_and_by_its_call_as_name(
    published: tuple[Path, str],
) -> None:
    config, url = published
    async with gateway_client(config, "--database-url", url) as client:
        hit = (await search(client, "add two numbers"))["results"][0]
        by_id = await client.call_tool("call_tool", {"tool": hit["tool_id"], "arguments": {"a": 2, "b": 3}})
        by_name = await client.call_tool("call_tool", {"tool": hit["call_as"], "arguments": {"a": 2.5, "b": -1}})
    assert (hit["tool_id"], hit["call_as"]) == ("everything:get-sum", "everything__get-sum")
    assert not by_id.is_error and text_of(by_id) == "The sum of 2 and 3 is 5."
    assert not by_name.is_error and text_of(by_name) == "The sum of 2.5 and -1 is 1.5."


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_in_found_mode_the_sum_tool_joins_a_strict_clients_list_and_is_called_by_its_listed_name(
    published: tuple[Path, str], mode: str
) -> None:
    config, url = published
    async with strict_client(config, "--database-url", url, mode=mode) as client:
        before = set(client.tools)
        hits, text = await client.search("add two numbers")
        listed = await client.relist_when_told()
        result = await client.call("everything__get-sum", {"a": 2, "b": 3})
    assert before == set(META_TOOLS) and hits[0] == "everything:get-sum"
    assert "In your tool list too: everything__get-sum" in text
    assert listed["everything__get-sum"].input_schema["required"] == ["a", "b"]
    assert not result.is_error and text_of(result) == "The sum of 2 and 3 is 5."


async def test_the_filesystem_server_lists_and_reads_the_folders_files_through_call_tool(
    published: tuple[Path, str],
) -> None:
    config, url = published
    folder = config.parent / "files"
    async with gateway_client(config, "--database-url", url) as client:
        listing = await client.call_tool(
            "call_tool", {"tool": "filesystem:list_directory", "arguments": {"path": str(folder)}}
        )
        read = await client.call_tool(
            "call_tool", {"tool": "filesystem:read_text_file", "arguments": {"path": str(folder / "plans.md")}}
        )
        outside = await client.call_tool(
            "call_tool", {"tool": "filesystem:read_text_file", "arguments": {"path": str(ROOT / "README.md")}}
        )
    assert not listing.is_error
    assert sorted(text_of(listing).splitlines()) == ["[DIR] photos", "[FILE] groceries.txt", "[FILE] plans.md"]
    assert not read.is_error and text_of(read) == FILES["plans.md"]
    assert outside.is_error and "outside allowed directories" in text_of(outside)


async def test_what_the_memory_server_was_told_through_call_tool_it_gives_back(published: tuple[Path, str]) -> None:
    config, url = published
    alice = {"name": "Alice", "entityType": "person", "observations": ["works at Acme"]}
    async with gateway_client(config, "--database-url", url) as client:
        created = await client.call_tool(
            "call_tool", {"tool": "memory:create_entities", "arguments": {"entities": [alice]}}
        )
        added = await client.call_tool(
            "call_tool",
            {
                "tool": "memory__add_observations",
                "arguments": {"observations": [{"entityName": "Alice", "contents": ["likes tea"]}]},
            },
        )
        opened = await client.call_tool("call_tool", {"tool": "memory:open_nodes", "arguments": {"names": ["Alice"]}})
    assert not created.is_error and not added.is_error, (text_of(created), text_of(added))
    entities = json.loads(text_of(opened))["entities"]
    assert [(e["name"], e["observations"]) for e in entities] == [("Alice", ["works at Acme", "likes tea"])]


async def inspect(config: Path, url: str, *method: str) -> dict[str, Any]:
    """Run the MCP Inspector's CLI on the gateway (``--cli <gateway command> --method ...``) and return the JSON
    it printed; the gateway's servers file goes by ``-e PML_CONFIG``, as the Inspector takes ``--config`` for its
    own. Checks that the gateway it spawned exits once the Inspector has."""
    command = [npm.binary("mcp-inspector"), "--cli", "-e", f"PML_CONFIG={config}", "-e", "PML_LOG_LEVEL=WARNING",
               *gateway_command("serve", "--database-url", url), *method]
    with anyio.fail_after(INSPECTOR_TIMEOUT_S):
        done = await anyio.run_process(command, env=gateway_env(), cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert await wait_gone(_gateways_on(url), timeout_s=20.0) == [], "the gateway outlived the Inspector"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _gateways_on(url: str) -> list[int]:
    """Gateways serving database `url`, wherever they are in the process tree (the Inspector's exit orphans
    its children)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if url in cmdline and "serve" in cmdline:
            found.append(process.pid)
    return found


async def test_the_inspector_cli_lists_the_meta_tools(published: tuple[Path, str]) -> None:
    listed = await inspect(*published, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert list(tools) == META_TOOLS
    assert tools["call_tool"]["inputSchema"]["required"] == ["tool"]


async def test_the_inspector_cli_calls_the_sum_tool_through_call_tool_with_a_json_object_argument(
    published: tuple[Path, str],
) -> None:
    call = ["--method", "tools/call", "--tool-name", "call_tool"]
    result = await inspect(
        *published, *call, "--tool-arg", "tool=everything:get-sum", "--tool-arg", 'arguments={"a":2,"b":3}'
    )
    assert result["isError"] is False
    assert result["content"] == [{"type": "text", "text": "The sum of 2 and 3 is 5."}]


async def test_the_inspector_cli_searches_and_finds_the_sum_tool_first(published: tuple[Path, str]) -> None:
    result = await inspect(
        *published, "--method", "tools/call", "--tool-name", "search_tools", "--tool-arg", "query=add two numbers"
    )
    first = result["structuredContent"]["results"][0]
    assert result["isError"] is False
    assert (first["tool_id"], first["call_as"]) == ("everything:get-sum", "everything__get-sum")
    assert "1. everything:get-sum" in result["content"][0]["text"]
