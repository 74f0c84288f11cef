"""What code mode costs and saves: `execute_code` through the real gateway over stdio, against real servers.

Run: ``python bench/bench_code.py [--quick]`` (after ``python3 tests/e2e/npm.py``, which installs the filesystem
server). One servers file holds faulty (examples/), git (mcp-server-git from PyPI, over a clone of this repository
at HEAD, so its log is stable within the run) and filesystem (npm, over a copy of this repository's `gateway/`);
they are indexed once into an embedded Postgres in a temporary directory, then each round starts a gateway on it
with the SDK's client over stdio (legacy initialize, raw ``tools/call``) and waits until each server answers.

1. Sandbox start and warm latency. In the bench's own process, with no MCP: a `MontySandbox` from nothing to the
   value of ``1 + 1`` (cold), then ``execute("1 + 1")`` again and again (warm). Through the gateway: the first
   ``execute_code "1 + 1"`` once the gateway is ready (its worker pool started with it: cold) and the second
   (warm), then ``execute_code "1 + 1"`` against ``faulty__echo``, the round trip's floor, in ABBA blocks.
2. Added latency per tool call from code: one ``execute_code`` awaiting ``call("faulty:echo", ...)`` `N_CALLS`
   times in a loop, less the same loop with no call, divided by `N_CALLS`; against `N_CALLS` calls of
   ``faulty__echo`` the client makes one by one (mean and P50 per call), and the same calls of ``echo`` straight to
   a faulty of the bench's own (the server's round trip, no gateway). The four alternate, ABBA.
3. Tokens a client sees for one task done (a) by single tool calls, every result read by the model, and (b) by
   one ``execute_code`` that filters inside: A, the 5 most recent commit subjects that mention `WORD` (``git_log``
   with ``max_count`` 500); B, the Python files of the tree that import anyio (``directory_tree``, then
   ``read_text_file`` of each ``.py``). Counted: the text of every tool result the client receives and the
   arguments it writes (for (b) the code), in the gateway's MiniLM WordPiece tokens and in characters / 4, as
   bench_tools_list.py counts (both proxies for the client model's own tokenizer). (b)'s answer must equal what
   (a)'s texts give, and that must equal what git and the files on disk give, or the run fails.

Prints medians over rounds (and P95), writes ``bench/results/code.json``; every process started is stopped with
bounded waits, and the run reports any left behind.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psutil
from _common import (
    ROOT,
    call,
    clean_env,
    descendants,
    faulty_server,
    gateway_command,
    logs_shown_on_failure,
    machine,
    median_of_runs,
    percentile,
    postgres_on,
    spread,
    stdio_session,
    table,
    timed_ms,
    write_results,
)
from mcp import Client
from mcp_types import CallToolResult
from tokenizers import Tokenizer

from gateway.config import CodeLimits
from gateway.sandbox import MontySandbox
from tests.e2e import npm

ECHO = "faulty__echo"
TEXT = "x"
ONE_PLUS_ONE = "1 + 1"
N_CALLS = 100
LOOP = 'last = None\nfor i in range({n}):\n    last = await call("faulty:echo", {{"text": "x"}})\nlast\n'
EMPTY_LOOP = 'last = None\nfor i in range({n}):\n    last = "x"\nlast\n'
WORD = "search"
SUBJECTS = 5
MAX_COUNT = 500
ANYIO = r"^\s*(import anyio|from anyio)\b"
"""A line that imports anyio (its submodules included); the same pattern runs in the code and in the check."""
MAX_TOOL_CALLS = 500
"""The servers file's ``code.maxToolCalls``: task B reads every ``.py`` of the tree from one run."""
TOKENIZER = ROOT / "gateway" / "embed" / "assets" / "tokenizer.json"
READY_TIMEOUT_S = 120.0
INDEX_TIMEOUT_S = 300.0
STOP_WAIT_S = 15.0
TARGET_WARM_MS = 20.0
TARGET_ADDED_MS = 1.0
TARGET_REDUCTION_PCT = 90.0

CODE_A = f"""log = await call("git:git_log", {{"repo_path": REPO, "max_count": {MAX_COUNT}}})
subjects = [line[len("Message: "):] for line in log.splitlines() if line.startswith("Message: ")]
[s for s in subjects if "{WORD}" in s.lower()][:{SUBJECTS}]
"""
CODE_B = f"""import asyncio, json, re
def text_of(value):
    return value["content"] if isinstance(value, dict) and "content" in value else value
tree = json.loads(text_of(await call("filesystem:directory_tree", {{"path": ROOT}})))
paths = []
stack = [(ROOT, node) for node in tree]
while stack:
    base, node = stack.pop()
    path = base + "/" + node["name"]
    if node["type"] == "directory":
        stack.extend([(path, child) for child in node.get("children", [])])
    elif path.endswith(".py"):
        paths.append(path)
texts = await asyncio.gather(*[call("filesystem:read_text_file", {{"path": p}}) for p in paths])
imports = re.compile(r"{ANYIO}", re.M)
sorted([p[len(ROOT) + 1:] for p, t in zip(paths, texts) if imports.search(text_of(t))])
"""
"""The programs of (b), as a model would write them; REPO and ROOT are set to literal paths in a first line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    """Where a run's files are: the repository clone git reads, the tree filesystem serves, Postgres's data."""

    tmp: Path
    repo: Path
    tree: Path
    config: Path
    data: Path
    log: Path


@dataclass(slots=True)
class Seen:
    """What the client received (tool result texts) and wrote (tool arguments) for one way of doing a task."""

    results: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    wall_ms: float = 0.0

    async def call(self, client: Client, name: str, arguments: dict[str, Any]) -> CallToolResult:
        self.arguments.append(json.dumps(arguments, ensure_ascii=False, separators=(",", ":")))
        result = await call(client, name, arguments)
        if result.is_error:
            raise RuntimeError(f"{name} failed: {text_of(result)[:500]}")
        self.results.append(text_of(result))
        return result


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def prepare(tmp: Path) -> Place:
    """The clone, the tree, the servers file; the servers indexed once (later starts find their tools stored)."""
    place = Place(tmp=tmp, repo=tmp / "repo", tree=tmp / "tree", config=tmp / "servers.json", data=tmp / "data",
                  log=tmp / "stderr.log")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(place.repo)], check=True, timeout=60)
    shutil.copytree(ROOT / "gateway", place.tree / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    node_bin = npm.prefix() / "node_modules" / ".bin"
    git = str(Path(sys.executable).parent / "mcp-server-git")
    servers = {
        "faulty": faulty_server(),
        "git": {"command": git, "args": ["--repository", str(place.repo)]},
        "filesystem": {"command": str(node_bin / "mcp-server-filesystem"), "args": [str(place.tree)]},
    }
    place.config.write_text(json.dumps({"mcpServers": servers, "code": {"maxToolCalls": MAX_TOOL_CALLS}}))
    with place.log.open("a", encoding="utf-8") as errlog:
        subprocess.run(gateway_command("index", "--config", str(place.config), "--data-dir", str(place.data)),
                       env=clean_env(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog,
                       check=True, timeout=INDEX_TIMEOUT_S)
    return place


async def in_process(warm_runs: int) -> dict[str, Any]:
    """The sandbox alone: a pool from nothing to ``1 + 1``, then `warm_runs` runs of ``1 + 1`` on it."""
    sandbox, limits = MontySandbox(), CodeLimits()
    async with anyio.create_task_group() as tg:
        started = time.perf_counter()
        await tg.start(sandbox.run)
        first = await sandbox.execute(ONE_PLUS_ONE, functions={}, limits=limits)
        cold = timed_ms(started)
        warm = []
        for _ in range(warm_runs):
            started = time.perf_counter()
            done = await sandbox.execute(ONE_PLUS_ONE, functions={}, limits=limits)
            warm.append(timed_ms(started))
        tg.cancel_scope.cancel()
    if first.value != 2 or done.value != 2:
        raise RuntimeError(f"the sandbox computed 1 + 1 = {first.value!r}, then {done.value!r}")
    return {"cold_ms": cold, "warm_ms": warm}


async def wait_ready(client: Client, place: Place) -> float:
    """Ms until each server answers through the gateway (Postgres up, every server started and listed)."""
    probes = [(ECHO, {"text": TEXT}), ("git__git_log", {"repo_path": str(place.repo), "max_count": 1}),
              ("filesystem__list_allowed_directories", {})]
    started = time.perf_counter()
    with anyio.fail_after(READY_TIMEOUT_S):
        for name, arguments in probes:
            while (await call(client, name, arguments)).is_error:  # noqa: ASYNC110 - a server's start: poll
                await anyio.sleep(0.1)
    return timed_ms(started)


async def execute_code(client: Client, code: str) -> tuple[float, Any]:
    """Ms of one ``execute_code`` round trip, and its result; a failed run stops the bench."""
    started = time.perf_counter()
    result = await call(client, "execute_code", {"code": code})
    elapsed = timed_ms(started)
    payload = result.structured_content or {}
    if result.is_error or payload.get("status") != "completed":
        raise RuntimeError(f"execute_code failed: {text_of(result)[:1000]}\ncode:\n{code}")
    return elapsed, payload["result"]


async def code_ms(client: Client, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        elapsed, value = await execute_code(client, ONE_PLUS_ONE)
        if value != 2:
            raise RuntimeError(f"execute_code answered 1 + 1 = {value!r}")
        samples.append(elapsed)
    return samples


async def echo_ms(client: Client, calls: int, name: str = ECHO) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await call(client, name, {"text": TEXT})
        samples.append(timed_ms(started))
        if result.is_error or text_of(result) != TEXT:
            raise RuntimeError(f"{name} answered {text_of(result)!r}")
    return samples


async def per_call(client: Client, direct: Client, reps: int) -> dict[str, list[float]]:
    """`reps` times, ABBA: the loop of `N_CALLS` calls in code, the empty loop, the client's `N_CALLS` calls
    through the gateway, and the same calls straight to a faulty of its own (the server's own round trip)."""
    out: dict[str, list[float]] = {"code_loop_ms": [], "empty_loop_ms": [], "client_total_ms": [],
                                   "client_p50_ms": [], "direct_total_ms": [], "direct_p50_ms": []}

    async def loop() -> None:
        elapsed, value = await execute_code(client, LOOP.format(n=N_CALLS))
        assert value == TEXT, value
        out["code_loop_ms"].append(elapsed)

    async def empty() -> None:
        out["empty_loop_ms"].append((await execute_code(client, EMPTY_LOOP.format(n=N_CALLS)))[0])

    async def proxied() -> None:
        samples = await echo_ms(client, N_CALLS)
        out["client_total_ms"].append(sum(samples))
        out["client_p50_ms"].append(statistics.median(samples))

    async def straight() -> None:
        samples = await echo_ms(direct, N_CALLS, "echo")
        out["direct_total_ms"].append(sum(samples))
        out["direct_p50_ms"].append(statistics.median(samples))

    steps = [loop, empty, proxied, straight]
    for rep in range(reps):
        for step in steps if rep % 2 == 0 else reversed(steps):
            await step()
    return out


async def task_a(client: Client, place: Place) -> dict[str, Any]:
    """The 5 most recent commit subjects that mention `WORD`: (a) the whole log read, (b) filtered in code."""
    arguments = {"repo_path": str(place.repo), "max_count": MAX_COUNT}
    single, code = Seen(), Seen()
    started = time.perf_counter()
    await single.call(client, "git__git_log", arguments)
    single.wall_ms = timed_ms(started)
    expected = [s for s in log_subjects(single.results[0]) if WORD in s.lower()][:SUBJECTS]
    answer = await _coded(client, code, f"REPO = {json.dumps(str(place.repo))}\n{CODE_A}")
    truth = [s for s in git_subjects(place.repo) if WORD in s.lower()][:SUBJECTS]
    return _checked("A", single, code, answer, expected, truth)


async def task_b(client: Client, place: Place) -> dict[str, Any]:
    """The Python files that import anyio: (a) the tree listed and every file read, (b) searched in code."""
    single, code = Seen(), Seen()
    started = time.perf_counter()
    listed = await single.call(client, "filesystem__directory_tree", {"path": str(place.tree)})
    paths = tree_files(json.loads(text_of(listed)), str(place.tree))
    found = []
    for path in paths:
        read = await single.call(client, "filesystem__read_text_file", {"path": path})
        if re.search(ANYIO, text_of(read), re.M):
            found.append(path[len(str(place.tree)) + 1:])
    single.wall_ms = timed_ms(started)
    answer = await _coded(client, code, f"ROOT = {json.dumps(str(place.tree))}\n{CODE_B}")
    on_disk = sorted(str(p.relative_to(place.tree)) for p in place.tree.rglob("*.py")
                     if re.search(ANYIO, p.read_text(encoding="utf-8"), re.M))
    return {**_checked("B", single, code, answer, sorted(found), on_disk), "files_read": len(paths)}


async def _coded(client: Client, seen: Seen, code: str) -> Any:
    started = time.perf_counter()
    result = await seen.call(client, "execute_code", {"code": code})
    seen.wall_ms = timed_ms(started)
    return (result.structured_content or {}).get("result")


def _checked(task: str, single: Seen, code: Seen, answer: Any, expected: Any, truth: Any) -> dict[str, Any]:
    """Both ways' texts and times, once (b)'s answer is what (a)'s data gives and that is the truth."""
    if expected != truth:
        raise RuntimeError(f"task {task}: (a)'s texts give {expected!r}, the source gives {truth!r}")
    if answer != expected:
        raise RuntimeError(f"task {task}: execute_code answered {answer!r}, (a)'s texts give {expected!r}")
    if not expected:
        raise RuntimeError(f"task {task}: the answer is empty, which proves nothing")
    return {"answer": answer, "single": single, "code": code}


def log_subjects(log: str) -> list[str]:
    """Each commit's subject in mcp-server-git's log text: the first line of its message, newest first."""
    return [block.split("\nMessage: ", 1)[1].split("\n", 1)[0] for block in log.split("Commit: ")[1:]]


def git_subjects(repo: Path) -> list[str]:
    """The same from git itself: the first line of each of the last `MAX_COUNT` messages."""
    done = subprocess.run(["git", "-C", str(repo), "log", f"-n{MAX_COUNT}", "--format=%x1e%B"], capture_output=True,
                          text=True, check=True, timeout=60)
    return [message.split("\n", 1)[0] for message in done.stdout.split("\x1e")[1:]]


def tree_files(tree: list[dict[str, Any]], root: str) -> list[str]:
    """The ``.py`` paths of a ``directory_tree`` answer."""
    paths = []
    for node in tree:
        path = f"{root}/{node['name']}"
        if node["type"] == "directory":
            paths.extend(tree_files(node.get("children", []), path))
        elif path.endswith(".py"):
            paths.append(path)
    return paths


async def gateway_round(place: Place, args: argparse.Namespace, run: int) -> dict[str, Any]:
    """One gateway: ready, cold and second execute_code, warm blocks, per-call loops, both tasks; then stopped."""
    out: dict[str, Any] = {}
    command = gateway_command("serve", "--config", str(place.config), "--data-dir", str(place.data))
    started = time.perf_counter()
    direct_command = [sys.executable, *faulty_server()["args"]]
    async with stdio_session(command, errlog=place.log) as client, \
            stdio_session(direct_command, errlog=place.log) as direct:
        out["handshake_ms"] = timed_ms(started)
        out["ready_ms"] = await wait_ready(client, place)
        out["cold_ms"] = (await execute_code(client, ONE_PLUS_ONE))[0]
        out["second_ms"] = (await execute_code(client, ONE_PLUS_ONE))[0]
        out["code_ms"], out["echo_ms"] = [], []
        for half in range(2):  # ABBA: A B | B A, the other way round in the next round
            order = ["code_ms", "echo_ms"] if (run + half) % 2 == 0 else ["echo_ms", "code_ms"]
            for key in order:
                measure = code_ms if key == "code_ms" else echo_ms
                out[key].extend(await measure(client, args.warm_calls // 2))
        out["per_call"] = await per_call(client, direct, args.reps)
        out["task_a"] = await task_a(client, place)
        out["task_b"] = await task_b(client, place)
    with anyio.move_on_after(STOP_WAIT_S):  # the gateway stops its Postgres after the client leaves
        while postgres_on(place.data):  # noqa: ASYNC110 - a process's exit sends us no event: poll
            await anyio.sleep(0.1)
    return out


async def measure(args: argparse.Namespace, place: Place) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    for run in range(args.rounds):
        sandbox = await in_process(args.sandbox_runs)
        rounds.append({"in_process": sandbox, **await gateway_round(place, args, run)})
    return {"rounds": rounds, "postgres_left_running": postgres_on(place.tmp)}


def tokens(texts: list[str], tokenizer: Tokenizer) -> dict[str, int]:
    """Characters, MiniLM WordPiece tokens (no special tokens, no truncation) and characters / 4 of `texts`."""
    chars = sum(len(t) for t in texts)
    minilm = sum(len(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts)
    return {"chars": chars, "minilm": minilm, "chars_4": round(chars / 4)}


def task_tokens(task: dict[str, Any], tokenizer: Tokenizer) -> dict[str, Any]:
    """Per way: calls, tokens read (results), written (arguments), their total; the reduction of (b) over (a)."""
    ways = {}
    for way in ("single", "code"):
        seen: Seen = task[way]
        read, written = tokens(seen.results, tokenizer), tokens(seen.arguments, tokenizer)
        ways[way] = {"calls": len(seen.results), "read": read, "written": written,
                     "total": {k: read[k] + written[k] for k in read}}
    reduction = {k: 100 * (1 - ways["code"]["total"][k] / ways["single"]["total"][k]) for k in ("minilm", "chars_4")}
    read_only = {k: 100 * (1 - ways["code"]["read"][k] / ways["single"]["read"][k]) for k in ("minilm", "chars_4")}
    return {**ways, "reduction_pct": reduction, "reduction_read_only_pct": read_only, "answer": task["answer"]}


def summarise(out: dict[str, Any], tokenizer: Tokenizer) -> dict[str, Any]:
    rounds = out["rounds"]
    cold = [r["cold_ms"] for r in rounds]
    second = [r["second_ms"] for r in rounds]
    warm = {key: median_of_runs([spread(r[key]) for r in rounds]) for key in ("code_ms", "echo_ms")}
    sandbox_warm = median_of_runs([spread(r["in_process"]["warm_ms"]) for r in rounds])
    sandbox_cold = [r["in_process"]["cold_ms"] for r in rounds]
    per_round = [_per_call_round(r["per_call"]) for r in rounds]
    per_call = {k: statistics.median(p[k] for p in per_round) for k in per_round[0]}
    tasks = {}
    for key in ("task_a", "task_b"):
        sized = [task_tokens(r[key], tokenizer) for r in rounds]
        if any(s["code"]["total"] != sized[0]["code"]["total"] or s["single"]["total"] != sized[0]["single"]["total"]
               for s in sized):
            raise RuntimeError(f"{key}: what the client saw changed from one round to the next")
        walls = {way: statistics.median(r[key][way].wall_ms for r in rounds) for way in ("single", "code")}
        tasks[key] = {**sized[0], "wall_ms": walls, "files_read": rounds[0][key].get("files_read")}
    return {
        "gateway": {"cold_ms": {"p50": statistics.median(cold), "p95": percentile(cold, 95), "all": cold},
                    "second_ms": {"p50": statistics.median(second), "p95": percentile(second, 95), "all": second},
                    "execute_code_1_plus_1": warm["code_ms"], "faulty_echo": warm["echo_ms"],
                    "added_over_echo_p50_ms": warm["code_ms"]["p50"] - warm["echo_ms"]["p50"],
                    "ready_ms": statistics.median(r["ready_ms"] for r in rounds)},
        "in_process": {"cold_ms": {"p50": statistics.median(sandbox_cold), "p95": percentile(sandbox_cold, 95),
                                   "all": sandbox_cold}, "warm": sandbox_warm,
                       "meets_warm": sandbox_warm["p50"] <= TARGET_WARM_MS},
        "per_call": {**per_call, "meets_added": per_call["added_over_proxied_ms"] <= TARGET_ADDED_MS},
        "tasks": tasks,
    }


def _per_call_round(loops: dict[str, list[float]]) -> dict[str, float]:
    """One round's per-call costs (medians over its reps): from code, from the client, and the difference."""
    code = statistics.median(loops["code_loop_ms"]) - statistics.median(loops["empty_loop_ms"])
    client = statistics.median(loops["client_total_ms"]) / N_CALLS
    return {
        "code_loop_ms": statistics.median(loops["code_loop_ms"]),
        "empty_loop_ms": statistics.median(loops["empty_loop_ms"]),
        "from_code_ms": code / N_CALLS, "proxied_mean_ms": client,
        "proxied_p50_ms": statistics.median(loops["client_p50_ms"]),
        "added_over_proxied_ms": code / N_CALLS - client,
        "added_over_proxied_p50_ms": code / N_CALLS - statistics.median(loops["client_p50_ms"]),
        "direct_mean_ms": statistics.median(loops["direct_total_ms"]) / N_CALLS,
        "direct_p50_ms": statistics.median(loops["direct_p50_ms"]),
        "added_over_direct_ms": code / N_CALLS - statistics.median(loops["direct_total_ms"]) / N_CALLS,
    }


def report(numbers: dict[str, Any], args: argparse.Namespace) -> None:
    gw, sb, pc = numbers["gateway"], numbers["in_process"], numbers["per_call"]
    code, echo = gw["execute_code_1_plus_1"], gw["faulty_echo"]
    print(f"\n1. sandbox start and warm latency, ms ({args.rounds} rounds; gateway warm: {args.warm_calls} calls of "
          f"each per round, in-process: {args.sandbox_runs} runs per round; medians over rounds)")
    rows = [
        ["in process: MontySandbox from nothing to 1 + 1", sb["cold_ms"]["p50"], sb["cold_ms"]["p95"], "", ""],
        ["in process: MontySandbox.execute('1 + 1')", sb["warm"]["p50"], sb["warm"]["p95"], sb["warm"]["p99"],
         sb["warm"]["p95_max"]],
        ["gateway: first execute_code once ready (cold)", gw["cold_ms"]["p50"], gw["cold_ms"]["p95"], "", ""],
        ["gateway: second execute_code", gw["second_ms"]["p50"], gw["second_ms"]["p95"], "", ""],
        ["gateway: execute_code '1 + 1' (warm)", code["p50"], code["p95"], code["p99"], code["p95_max"]],
        [f"gateway: {ECHO} (the round trip's floor)", echo["p50"], echo["p95"], echo["p99"], echo["p95_max"]],
        ["execute_code / echo", code["p50"] / echo["p50"], code["p95"] / echo["p95"], "", ""],
    ]
    print(table(["measure", "P50", "P95", "P99", "worst P95"], rows))
    print(f"(cold and second: one sample per round, P95 = the worst round). execute_code adds "
          f"{gw['added_over_echo_p50_ms']:.2f} ms over {ECHO} at P50; sandbox warm target <= {TARGET_WARM_MS:g} ms: "
          f"{'met' if sb['meets_warm'] else 'MISSED'}")
    print(f"\n2. per tool call, {N_CALLS} sequential calls of faulty:echo ({args.reps} reps per round, ms)")
    rows = [
        [f"execute_code, loop of {N_CALLS} calls", pc["code_loop_ms"]],
        ["execute_code, the same loop without calls", pc["empty_loop_ms"]],
        ["per call from code ((loop - empty) / N)", pc["from_code_ms"]],
        [f"per call from the client ({ECHO}, mean)", pc["proxied_mean_ms"]],
        [f"per call from the client ({ECHO}, P50)", pc["proxied_p50_ms"]],
        ["added per call from code over the proxied call (mean)", pc["added_over_proxied_ms"]],
        ["added per call from code over the proxied call (P50)", pc["added_over_proxied_p50_ms"]],
        ["per call straight to faulty, no gateway (mean)", pc["direct_mean_ms"]],
        ["added per call from code over the direct call (mean)", pc["added_over_direct_ms"]],
    ]
    print(table(["measure", "ms"], rows))
    print(f"target: <= {TARGET_ADDED_MS:g} ms added per call: {'met' if pc['meets_added'] else 'MISSED'}")
    print("\n3. tokens the client reads (tool results) and writes (arguments; for code, the program)")
    rows = []
    for key, label in (("task_a", f"A: {SUBJECTS} commit subjects with '{WORD}'"),
                       ("task_b", "B: .py files importing anyio")):
        task = numbers["tasks"][key]
        for way, name in (("single", "(a) single calls"), ("code", "(b) execute_code")):
            w = task[way]
            rows.append([label, name, w["calls"], w["read"]["minilm"], w["written"]["minilm"], w["total"]["minilm"],
                         w["total"]["chars_4"], task["wall_ms"][way]])
        rows.append([label, "reduction", "", "", "", f"{task['reduction_pct']['minilm']:.1f}%",
                     f"{task['reduction_pct']['chars_4']:.1f}%", ""])
    print(table(["task", "way", "tool calls", "read (MiniLM)", "written (MiniLM)", "total (MiniLM)",
                 "total (chars/4)", "wall ms"], rows))
    print(f"(b)'s answers equal (a)'s data and the source's; target >= {TARGET_REDUCTION_PCT:g}% fewer tokens")


def leftovers(tmp: Path) -> list[str]:
    """Processes of this run still alive (none expected): killed, and named in the results."""
    found = descendants(lambda cmd: True)
    found += [psutil.Process(pid) for pid in postgres_on(tmp)]
    names = []
    for process in found:
        try:
            names.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            process.kill()
        except psutil.NoSuchProcess:
            continue
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer calls (under a minute)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    args.warm_calls, args.reps, args.sandbox_runs = (100, 2, 200) if args.quick else (200, 3, 300)
    if absent := npm.missing():
        raise SystemExit(f"npm servers not installed in {npm.prefix()} ({', '.join(absent)}): "
                         "run `python3 tests/e2e/npm.py`")
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), load {start['loadavg']}, Python {start['python']}")
    started = time.perf_counter()
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tmp = Path(tempfile.mkdtemp(prefix="pml-bench-code-"))
    try:
        with logs_shown_on_failure(tmp / "stderr.log"):
            place = prepare(tmp)
            out = anyio.run(measure, args, place)
    finally:
        left = leftovers(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    numbers = summarise(out, tokenizer)
    report(numbers, args)
    if left:
        print(f"WARNING: processes left running (killed): {left}")
    raw = [{k: v for k, v in r.items() if not k.startswith("task_")} for r in out["rounds"]]
    path = write_results("code", {"machine_start": start, "args": vars(args), "n_calls": N_CALLS, "word": WORD,
                                  "programs": {"task_a": CODE_A, "task_b": CODE_B}, **numbers, "rounds": raw,
                                  "postgres_left_running": out["postgres_left_running"], "left_running": left,
                                  "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
