"""How much of a model's context the gateway's `tools/list` takes, with each ``"expose"`` setting.

Run: ``python bench/bench_tools_list.py`` (after ``python3 tests/e2e/npm.py``, which installs the npm servers).
Servers: everything, memory and filesystem (npm; filesystem over a temporary folder of a few files), time and git
(PyPI; git over this repository), notes and faulty (examples/). They are indexed once into an embedded Postgres
in a temporary directory; then, for each setting, a gateway is spawned over stdio and spoken to in raw JSON-RPC
(the handshake protocol, as Claude's clients speak it), so that what is measured is the ``tools`` array of the
``tools/list`` answer as the client receives it: ``"all"`` (every tool beside the meta-tools), ``"search"`` (the
meta-tools only), and ``"found"`` right after the handshake and again after 10 searches worded as people word
them (what such a client lists again when told that its list changed).

Tokens are counted on that array's compact JSON in two ways, and both are proxies for the tokenizer of the model
the client feeds (not public, and the client reformats tools for it): the gateway's own MiniLM WordPiece
tokenizer (``gateway/embed/assets/tokenizer.json`` via `tokenizers`, no truncation, no special tokens) and
characters / 4. Prints a table, writes ``bench/results/tools_list.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from _common import (
    BENCH,
    ROOT,
    clean_env,
    faulty_server,
    gateway_command,
    logs_shown_on_failure,
    machine,
    table,
    write_results,
)
from anyio.streams.buffered import BufferedByteReceiveStream
from tokenizers import Tokenizer

from tests.e2e import npm

SEARCHES = [
    "what time is it in Tokyo",
    "convert 3pm New York time to London time",
    "add two numbers",
    "list the files in my folder",
    "find all the markdown files in my folder",
    "remember that Alice works at Acme",
    "show me what changed in my git repository",
    "commit my changes with a message",
    "save a note about the meeting",
    "read my note called groceries",
]
"""Ten everyday requests over those servers, as people word them."""
SERVERS = ["everything", "memory", "filesystem", "time", "git", "notes", "faulty"]
TOKENIZER = ROOT / "gateway" / "embed" / "assets" / "tokenizer.json"
FILES = {"groceries.txt": "eggs\nmilk\n", "plans.md": "# Plans\n\nmove to Lisbon\n", "photos/cat.txt": "a cat\n"}
PROTOCOL = "2025-11-25"
"""The newest handshake protocol version: what Claude Desktop and Claude Code speak."""
REPLY_TIMEOUT_S = 120.0
INDEX_TIMEOUT_S = 300.0
MAX_LINE = 64 * 2**20


def servers(directory: Path) -> dict[str, Any]:
    """The servers-file entries, every path absolute."""
    folder = directory / "files"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    bin_dir, node_bin = Path(sys.executable).parent, npm.prefix() / "node_modules" / ".bin"
    return {
        "everything": {"command": str(node_bin / "mcp-server-everything")},
        "memory": {"command": str(node_bin / "mcp-server-memory"),
                   "env": {"MEMORY_FILE_PATH": str(directory / "memory.jsonl")}},
        "filesystem": {"command": str(node_bin / "mcp-server-filesystem"), "args": [str(folder)]},
        "time": {"command": str(bin_dir / "mcp-server-time"), "args": ["--local-timezone", "UTC"]},
        "git": {"command": str(bin_dir / "mcp-server-git"), "args": ["--repository", str(ROOT)]},
        "notes": {"command": sys.executable, "args": [str(ROOT / "examples" / "notes_server.py")],
                  "env": {"NOTES_FILE": str(directory / "notes.json")}},
        "faulty": faulty_server(),
    }


class Wire:
    """A JSON-RPC client over a process's stdin/stdout, one line per message; answers to our requests come back
    by id, notifications in between are counted and skipped."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._ids = iter(range(1, 1_000_000))
        self.notified: Counter[str] = Counter()

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The result of one request (its raw line too, under ``"_line"``)."""
        request_id = next(self._ids)
        await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        with anyio.fail_after(REPLY_TIMEOUT_S):
            while True:
                line = await self._stdout.receive_until(b"\n", MAX_LINE)
                message = json.loads(line)
                if message.get("id") == request_id and "method" not in message:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return {**message["result"], "_line": line.decode()}
                await self._other(message)

    async def notify(self, method: str) -> None:
        await self._send({"jsonrpc": "2.0", "method": method})

    async def _other(self, message: dict[str, Any]) -> None:
        if "id" in message:  # a request of the server's (a ping): answer it, with nothing
            await self._send({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        else:
            self.notified[message.get("method", "?")] += 1

    async def _send(self, message: dict[str, Any]) -> None:
        await self._stdin.send((json.dumps(message) + "\n").encode())


async def measure(config: Path, data_dir: Path, log: Path, searches: list[str]) -> list[dict[str, Any]]:
    """``tools/list`` right after the handshake, then again after each of `searches` has been made (if any)."""
    command = gateway_command("serve", "--config", str(config), "--data-dir", str(data_dir))
    with log.open("a", encoding="utf-8") as errlog:
        async with await anyio.open_process(command, env=clean_env(), cwd=ROOT, stderr=errlog) as process:
            wire = Wire(process)
            await wire.request(
                "initialize",
                {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "bench_tools_list", "version": "1"},
                },
            )
            await wire.notify("notifications/initialized")
            lists = [await wire.request("tools/list", {})]
            for query in searches:
                await wire.request("tools/call", {"name": "search_tools", "arguments": {"query": query}})
            if searches:
                lists.append(await wire.request("tools/list", {}))
            assert process.stdin is not None
            await process.stdin.aclose()  # EOF: the gateway's own way out
            with anyio.fail_after(REPLY_TIMEOUT_S):
                await process.wait()
    return [{**listed, "list_changed": wire.notified["notifications/tools/list_changed"]} for listed in lists]


def sized(listed: dict[str, Any], tokenizer: Tokenizer) -> dict[str, Any]:
    """Tools listed, and the compact JSON of the ``tools`` array in characters and in tokens (both proxies)."""
    tools = listed["tools"]
    text = json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
    return {
        "tools": len(tools),
        "chars": len(text),
        "tokens_minilm": len(tokenizer.encode(text, add_special_tokens=False).ids),
        "tokens_chars_4": round(len(text) / 4),
        "as_sent": text in listed["_line"],
        "names": [tool["name"] for tool in tools],
        "tokens_minilm_by_server": _by_server(tools, tokenizer),
    }


def _by_server(tools: list[dict[str, Any]], tokenizer: Tokenizer) -> dict[str, int]:
    """MiniLM tokens of each tool's JSON, added up per server (``server__tool``; the meta-tools under "gateway")."""
    totals: Counter[str] = Counter()
    for tool in tools:
        server = tool["name"].split("__", 1)[0] if "__" in tool["name"] else "gateway"
        text = json.dumps(tool, ensure_ascii=False, separators=(",", ":"))
        totals[server] += len(tokenizer.encode(text, add_special_tokens=False).ids)
    return dict(totals)


def open_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def index(config: Path, data_dir: Path, log: Path) -> None:
    with log.open("a", encoding="utf-8") as errlog:
        subprocess.run(gateway_command("index", "--config", str(config), "--data-dir", str(data_dir)), env=clean_env(),
                       cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog, check=True,
                       timeout=INDEX_TIMEOUT_S)


def configs(directory: Path) -> dict[str, Path]:
    """One servers file per ``"expose"`` setting, the same servers in each."""
    entries = servers(directory)
    paths = {}
    for expose in ("all", "search", "found"):
        paths[expose] = directory / f"servers-{expose}.json"
        paths[expose].write_text(json.dumps({"mcpServers": entries, "expose": expose}))
    return paths


async def run(directory: Path) -> dict[str, dict[str, Any]]:
    """The sizes of each setting's list(s)."""
    paths, data_dir, log = configs(directory), directory / "data", directory / "gateway.log"
    tokenizer = open_tokenizer()
    with logs_shown_on_failure(log):
        await anyio.to_thread.run_sync(index, paths["all"], data_dir, log)
        (everything,) = await measure(paths["all"], data_dir, log, [])
        (search,) = await measure(paths["search"], data_dir, log, [])
        before, after = await measure(paths["found"], data_dir, log, SEARCHES)
    return {
        "all": sized(everything, tokenizer), "search": sized(search, tokenizer),
        "found_before": sized(before, tokenizer),
        "found_after_10_searches": {**sized(after, tokenizer), "list_changed": after["list_changed"]},
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n", 1)[0]).parse_args()
    if absent := npm.missing():
        raise SystemExit(f"npm servers not installed in {npm.prefix()} ({', '.join(absent)}): "
                         "run `python3 tests/e2e/npm.py`")
    with tempfile.TemporaryDirectory(prefix="bench-tools-list-") as directory:
        sizes = anyio.run(run, Path(directory))
    labels = {"all": '"all"', "search": '"search"', "found_before": '"found", before searching',
              "found_after_10_searches": '"found", after 10 searches'}
    rows = [[labels[key], s["tools"], s["chars"], s["tokens_minilm"], s["tokens_chars_4"]] for key, s in sizes.items()]
    print(table(["tools/list with expose", "tools", "JSON chars", "tokens (MiniLM)", "tokens (chars/4)"], rows))
    path = write_results("tools_list", {
        "servers": SERVERS,
        "searches": SEARCHES, "npm": npm.PACKAGES, "machine": machine(), "sizes": sizes,
    })
    print(f"wrote {path.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
