"""The gateway over streamable HTTP under load: concurrent clients, each its own session, a fixed number of calls.

Run: ``python bench/bench_http.py [--clients 50] [--calls 5000] [--search-calls 1000] [--runs 3]
[--scenario echo|search|both] [--quick]``.
One ``pml-gateway serve --http 127.0.0.1:0 --rate-limit 0`` on a servers file holding only faulty, embedded
Postgres in a temporary directory, one API key made with ``pml-gateway users add`` before it starts. Each run
opens `--clients` MCP sessions (the SDK's client over streamable HTTP, one HTTP client each), releases them
together, and each sends its share of raw ``tools/call`` requests one after the other: `faulty__echo` (the
proxied path of bench_proxy.py, now over HTTP) and `search_tools` (four queries in turn, fewer calls: their
embeddings are cached after the first call, so this loads the HTTP path, the search and Postgres, not the model,
which bench_search.py measures).
Prints per-call latency P50/P95/P99 and calls/s over the wall time (medians over runs), errors (error results,
wrong answers and exceptions; target zero), each process's CPU time per call, and the gateway's memory after
the warm-up and after each run: RSS of the `serve` process, PSS summed over its Postgres processes (their
shared buffers counted once). Writes ``bench/results/http.json``.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import psutil
from _common import (
    ROOT,
    call,
    clean_env,
    faulty_server,
    gateway_command,
    logs_shown_on_failure,
    machine,
    median_of_runs,
    postgres_on,
    servers_file,
    spread,
    table,
    timed_ms,
    write_results,
)
from anyio.abc import TaskStatus
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TEXT = "hello from the bench"
QUERIES = ("echo a text back", "add two numbers", "wait some milliseconds", "how many calls were served")
READY_S = 120.0
ROUTE_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0
STOP_WAIT_S = 30.0
ERRORS_KEPT = 5
MB = 2**20
_SERVING = re.compile(r"serving MCP at (http://\S+/mcp)")
_KEY = re.compile(r"\bac_[A-Za-z0-9_-]{20,}")


@dataclass(frozen=True)
class Scenario:
    """One tool called again and again; `check` says what is wrong with an answer (None: nothing)."""

    tool: str
    arguments: Callable[[int], dict[str, Any]]
    check: Callable[[types.CallToolResult], str | None]


def _echoed(result: types.CallToolResult) -> str | None:
    text = getattr(result.content[0], "text", "") if result.content else ""
    return None if not result.is_error and text == TEXT else f"echo answered {text!r} (is_error={result.is_error})"


def _found(result: types.CallToolResult) -> str | None:
    found = (result.structured_content or {}).get("results")
    return None if not result.is_error and found else f"search answered is_error={result.is_error}, {found!r}"


SCENARIOS = {
    "echo": Scenario("faulty__echo", lambda _: {"text": TEXT}, _echoed),
    "search": Scenario("search_tools", lambda i: {"query": QUERIES[i % len(QUERIES)]}, _found),
}


@dataclass
class _Batch:
    """What the callers of one batch share: the starting gun, and what they measured."""

    go: anyio.Event = field(default_factory=anyio.Event)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, with its own HTTP client (and so its own connections)."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_TIMEOUT_S) as c:
        yield c


async def _caller(url: str, key: str, scenario: Scenario, calls: int, batch: _Batch,
                  *, task_status: TaskStatus[None]) -> None:
    """One session: opened, then `calls` calls one after the other once the batch is released."""
    async with http_session(url, key) as client:
        task_status.started()
        await batch.go.wait()
        for i in range(calls):
            started = time.perf_counter()
            try:
                wrong = scenario.check(await call(client, scenario.tool, scenario.arguments(i)))
            except Exception as exc:  # an error is a number of this bench, not the end of it
                wrong = f"{type(exc).__name__}: {exc}"
            batch.latencies_ms.append(timed_ms(started))
            if wrong is not None:
                batch.errors.append(wrong)
        batch.finished.append(time.perf_counter())


async def load(url: str, key: str, scenario: Scenario, clients: int, total: int) -> dict[str, Any]:
    """`total` calls shared by `clients` sessions opened beforehand; the wall time runs from release to last answer."""
    batch = _Batch()
    async with anyio.create_task_group() as tg:
        for i in range(clients):
            await tg.start(_caller, url, key, scenario, total // clients + (i < total % clients), batch)
        started = time.perf_counter()
        batch.go.set()
    wall_s = max(batch.finished) - started
    return {"latency_ms": spread(batch.latencies_ms), "calls_per_s": total / wall_s, "wall_s": wall_s,
            "errors": len(batch.errors), "error_samples": batch.errors[:ERRORS_KEPT]}


@dataclass(frozen=True)
class Processes:
    """The processes the load runs on: this client, the gateway, its faulty server, Postgres (found each time)."""

    client: psutil.Process
    gateway: psutil.Process
    faulty: psutil.Process
    data_dir: Path

    def postgres(self) -> list[psutil.Process]:
        """The postmaster serving `data_dir` and its backends."""
        postmasters = [psutil.Process(pid) for pid in postgres_on(self.data_dir)]
        return postmasters + [child for p in postmasters for child in p.children(recursive=True)]

    def cpu_s(self) -> dict[str, float]:
        groups = {"client": [self.client], "gateway": [self.gateway], "faulty": [self.faulty],
                  "postgres": self.postgres()}
        return {label: sum(_cpu_s(p) for p in procs) for label, procs in groups.items()}

    def memory_mb(self) -> dict[str, float]:
        postgres = self.postgres()
        return {"gateway_rss_mb": self.gateway.memory_info().rss / MB,
                "postgres_pss_mb": sum(_pss(p) for p in postgres) / MB, "postgres_processes": float(len(postgres)),
                "faulty_rss_mb": self.faulty.memory_info().rss / MB}


def _cpu_s(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a Postgres backend that ended between listing and reading
        return 0.0
    return float(times.user + times.system)


def _pss(process: psutil.Process) -> float:
    try:
        return float(process.memory_full_info().pss)
    except psutil.NoSuchProcess:
        return 0.0


def find_processes(gateway_pid: int, data_dir: Path) -> Processes:
    gateway = psutil.Process(gateway_pid)
    faulty = [p for p in gateway.children(recursive=True) if any(a.endswith("faulty_server.py") for a in p.cmdline())]
    if len(faulty) != 1:
        raise RuntimeError(f"expected one faulty server behind the gateway, found {faulty}")
    return Processes(client=psutil.Process(), gateway=gateway, faulty=faulty[0], data_dir=data_dir)


async def serving_url(log: Path, gateway: subprocess.Popen[bytes]) -> str:
    """The MCP endpoint the gateway logs once it listens (it was told port 0)."""
    with anyio.fail_after(READY_S):
        while (match := _SERVING.search(await anyio.Path(log).read_text(errors="replace"))) is None:
            if gateway.poll() is not None:
                raise RuntimeError(f"the gateway exited with {gateway.returncode} before serving")
            await anyio.sleep(0.05)
    return match.group(1)


async def wait_ready(url: str, key: str, names: list[str]) -> float:
    """Ms until each scenario answers right once (faulty started and listed, its tools indexed for search)."""
    started = time.perf_counter()
    async with http_session(url, key) as client:
        with anyio.fail_after(ROUTE_TIMEOUT_S):
            for name in names:
                await _answered_right(client, SCENARIOS[name])
    return timed_ms(started)


async def _answered_right(client: Client, scenario: Scenario) -> None:
    """Retry until the gateway has what the scenario needs: no event tells us when faulty is listed or indexed."""
    while True:
        if scenario.check(await call(client, scenario.tool, scenario.arguments(0))) is None:
            return
        await anyio.sleep(0.1)


async def measure(args: argparse.Namespace, gateway: subprocess.Popen[bytes], key: str, tmp: Path) -> dict[str, Any]:
    url = await serving_url(tmp / "stderr.log", gateway)
    out: dict[str, Any] = {"ready_ms": await wait_ready(url, key, args.scenarios)}
    procs = find_processes(gateway.pid, tmp)
    out["memory_start_mb"] = procs.memory_mb()
    for name in args.scenarios:
        await load(url, key, SCENARIOS[name], args.clients, args.clients * args.warmup_per_client)
    out["memory_before_mb"] = procs.memory_mb()
    out["runs"] = {name: [] for name in args.scenarios}
    for run in range(args.runs):
        for name in args.scenarios:
            before = procs.cpu_s()
            result = await load(url, key, SCENARIOS[name], args.clients, args.totals[name])
            result["cpu_us_per_call"] = {label: (s - before[label]) / args.totals[name] * 1e6
                                         for label, s in procs.cpu_s().items()}
            result["memory_after_mb"] = procs.memory_mb()
            out["runs"][name].append(result)
            print(f"run {run + 1}/{args.runs} {name}: {result['calls_per_s']:.0f} calls/s, "
                  f"P50 {result['latency_ms']['p50']:.1f} ms, {result['errors']} errors", flush=True)
    out["memory_after_mb"] = procs.memory_mb()
    return out


def create_key(data_dir: Path, log: Path) -> str:
    """A user's API key, made before `serve` starts (the command starts and stops the embedded Postgres)."""
    with log.open("ab") as err:
        done = subprocess.run(gateway_command("users", "add", "bench", "--data-dir", str(data_dir)), cwd=ROOT,
                              env=clean_env(), stdout=subprocess.PIPE, stderr=err, text=True,
                              timeout=READY_S)
    match = _KEY.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"users add exited with {done.returncode}: {done.stdout!r}")
    return match.group(0)


@contextmanager
def http_gateway(config: Path, data_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``serve --http 127.0.0.1:0``, no rate limit; SIGTERM at the end, killed if it has not left in time."""
    command = gateway_command("serve", "--config", str(config), "--data-dir", str(data_dir),
                              "--http", "127.0.0.1:0", "--rate-limit", "0")
    with log.open("ab") as err:
        gateway = subprocess.Popen(command, cwd=ROOT, env=clean_env(PML_LOG_LEVEL="INFO"), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield gateway
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            print(f"WARNING: the gateway did not stop within {STOP_WAIT_S:.0f} s of SIGTERM: killed")
            gateway.kill()
            gateway.wait()


def postgres_left(data_dir: Path) -> list[int]:
    """Postmasters still serving `data_dir` a bounded while after the gateway left (none after a clean stop)."""
    deadline = time.monotonic() + STOP_WAIT_S
    while (pids := postgres_on(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)  # a process's exit sends us no event: poll
    return pids


def report(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    summary = {name: _summarise(runs) for name, runs in out["runs"].items()}
    print(f"\n{args.clients} concurrent sessions over HTTP, {args.runs} runs, medians over runs (latency in ms)")
    rows = [[name, f"{args.totals[name]:,}", *(s["latency_ms"][k] for k in ("p50", "p95", "p99", "p95_max")),
             f"{s['calls_per_s']:.0f}", f"{s['calls_per_s_min']:.0f}-{s['calls_per_s_max']:.0f}", s["errors"]]
            for name, s in summary.items()]
    print(table(["scenario", "calls", "P50", "P95", "P99", "worst P95", "calls/s", "range", "errors"], rows))
    labels = list(next(iter(summary.values()))["cpu_us_per_call"])
    print("\nCPU time per call, us (on 2 cores the bench client shares the machine with the gateway)")
    print(table(["scenario", *labels], [[n, *(f"{s['cpu_us_per_call'][k]:.0f}" for k in labels)]
                                         for n, s in summary.items()]))
    _print_memory(out, args)
    growth = out["memory_after_mb"]["gateway_rss_mb"] - out["memory_before_mb"]["gateway_rss_mb"]
    errors = sum(s["errors"] for s in summary.values())
    print(f"gateway RSS growth over the load: {growth:+.1f} MB; errors: {errors} (target 0); "
          f"first answers {out['ready_ms']:.0f} ms after the gateway listened")
    for name, runs in out["runs"].items():
        for sample in sorted({s for r in runs for s in r["error_samples"]}):
            print(f"  {name} error: {sample}")
    if out["postgres_left_running"]:
        print(f"WARNING: Postgres still running after the gateway exited: pids {out['postgres_left_running']}")
    return {"summary": summary, "gateway_rss_growth_mb": growth, "errors": errors}


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's medians over runs, the range of its rates, and every run's errors."""
    rates = [r["calls_per_s"] for r in runs]
    cpu = {k: statistics.median(r["cpu_us_per_call"][k] for r in runs) for k in runs[0]["cpu_us_per_call"]}
    return {"latency_ms": median_of_runs([r["latency_ms"] for r in runs]), "calls_per_s": statistics.median(rates),
            "calls_per_s_min": min(rates), "calls_per_s_max": max(rates), "errors": sum(r["errors"] for r in runs),
            "cpu_us_per_call": cpu}


def _print_memory(out: dict[str, Any], args: argparse.Namespace) -> None:
    moments = {"start": out["memory_start_mb"], "after warm-up": out["memory_before_mb"],
               **{f"after run {i + 1}": _run_memory(out, i) for i in range(args.runs)}}
    print("\nmemory, MB (gateway: RSS of serve; Postgres: PSS over its processes)")
    print(table(["when", "gateway RSS", "Postgres PSS", "Postgres procs", "faulty RSS"],
                [[w, m["gateway_rss_mb"], m["postgres_pss_mb"], int(m["postgres_processes"]), m["faulty_rss_mb"]]
                 for w, m in moments.items()]))


def _run_memory(out: dict[str, Any], run: int) -> dict[str, float]:
    """Memory after a run's last scenario."""
    return list(out["runs"].values())[-1][run]["memory_after_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent sessions (default 50)")
    parser.add_argument("--calls", type=int, default=5000, help="faulty__echo calls per run, all sessions together")
    parser.add_argument("--search-calls", type=int, default=1000, help="search_tools calls per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", choices=("echo", "search", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="1 run, 10 sessions, 500 echo and 100 search calls")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.calls, args.search_calls, args.runs = 10, 500, 100, 1
    args.scenarios = ["echo", "search"] if args.scenario == "both" else [args.scenario]
    args.totals = {"echo": args.calls, "search": args.search_calls}
    args.warmup_per_client = 4
    if any(args.totals[n] < args.clients for n in args.scenarios):
        parser.error("each scenario needs at least one call per client")
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), load {start['loadavg']}, Python {start['python']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pml-bench-http-") as name:
        tmp = Path(name)
        config = servers_file(tmp / "servers.json", {"faulty": faulty_server()})
        with logs_shown_on_failure(tmp / "stderr.log"):
            key = create_key(tmp / "data", tmp / "stderr.log")
            with http_gateway(config, tmp / "data", tmp / "stderr.log") as gateway:
                out = anyio.run(measure, args, gateway, key, tmp)
            out["postgres_left_running"] = postgres_left(tmp)
    numbers = report(out, args)
    path = write_results("http", {"machine_start": start, "args": vars(args), "raw": out, **numbers,
                                  "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
