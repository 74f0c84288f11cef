"""Which engine should run `execute_code`: pydantic-monty and Deno side by side, alternating, in one run.

Run: ``python bench/bench_sandbox.py [--quick] [--rounds 7]``, after ``pip install deno`` (the PyPI package of
the Deno binary, a bench-only dependency). Each round measures both engines, in an order that swaps every
round, with the same host function (`host_call`, which returns a small dict at once):

1. cold start: from nothing to the value of ``1 + 1``. monty: an `AsyncMonty` pool of one worker, a checkout and
   a feed. Deno: ``deno run --no-prompt --v8-flags=--max-old-space-size=64 bench/_deno_runner.ts`` (no
   ``--allow-*``: no file, network, environment or subprocess access) sent the snippet on stdin, until it
   answers. Deno's transpile cache lives in a temporary ``DENO_DIR``; the very first start, which fills it,
   is reported apart.
2. warm run: the same snippet on a started engine (monty: checkout + ``feed_run`` on a started pool, with the
   gateway's default `CodeLimits`, a fresh session each time; Deno: one more JSON line to a running runner,
   evaluated in an ``AsyncFunction`` in the runner's isolate, whose globals outlive the run). Then the same with
   a fresh isolate per run, which is what keeps two runs apart (monty: as before; Deno: a new ``Worker``).
3. host call: a snippet awaiting the host function `CALLS` times in a loop, less the same snippet with no
   call, divided by `CALLS`.
4. memory: the RSS (and USS) of the engine's process idle after its cold start, and again after the warm runs
   and loops (monty: its worker subprocess; Deno: the ``deno`` process).

Prints medians and P95 over all samples of all rounds (a cold start is one sample per round, so its P95 is
the worst round), writes ``bench/results/sandbox.json``. Each round is bounded by `ROUND_TIMEOUT_S`; every
process started is stopped with bounded waits, and the run checks none is left.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc
import psutil
from _common import (
    BENCH,
    clean_env,
    descendants,
    logs_shown_on_failure,
    machine,
    percentile,
    table,
    timed_ms,
    write_results,
)
from anyio.streams.buffered import BufferedByteReceiveStream
from deno import find_deno_bin
from pydantic_monty import AsyncMonty, CollectStreams, ResourceLimits
from pydantic_monty import __version__ as monty_version

from gateway.config import CodeLimits

CALLS = 200
RUNNER = BENCH / "_deno_runner.ts"
DENO_FLAGS = ("run", "--no-prompt", "--v8-flags=--max-old-space-size=64")
RUN_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0
CLOSE_S = 5.0
MAX_LINE = 1 << 20
ROUND_TIMEOUT_S = 120.0
LIMITS = CodeLimits()


async def host_call(name: str, args: Any) -> dict[str, Any]:
    """The host function both engines call: a small dict, at once."""
    return {"ok": True, "tool": name, "i": args.get("i") if isinstance(args, dict) else None}


class Running(Protocol):
    pid: int

    async def run(self, code: str, *, fresh: bool = False) -> Any: ...


class Engine(Protocol):
    name: str
    one_plus_one: str

    def loop(self, calls: int) -> str: ...

    def started(self) -> AbstractAsyncContextManager[Running]: ...


@dataclass
class _MontyRunning:
    pool: AsyncMonty
    pid: int

    async def run(self, code: str, *, fresh: bool = False) -> Any:
        """One checkout and feed, as the gateway runs each `execute_code`: always a fresh session."""
        with anyio.fail_after(RUN_TIMEOUT_S):
            async with self.pool.checkout(limits=_monty_limits()) as session:
                return await session.feed_run(code, external_lookup={"call": host_call},
                                              print_callback=CollectStreams())


class MontyEngine:
    name = "monty"
    one_plus_one = "1 + 1"

    def loop(self, calls: int) -> str:
        return f"r = None\nfor i in range({calls}):\n    r = await call('echo', {{'i': i}})\nr"

    @asynccontextmanager
    async def started(self) -> AsyncIterator[_MontyRunning]:
        """A pool of one worker (so every checkout meets the same process), stopped on the way out."""
        async with AsyncMonty(min_processes=1, max_processes=1, checkout_timeout=START_TIMEOUT_S) as pool:
            yield _MontyRunning(pool, _monty_worker_pid())


def _monty_limits() -> ResourceLimits:
    """The gateway's default limits (`gateway.sandbox.monty` maps them the same way)."""
    return {"max_feed_duration_secs": LIMITS.timeout_ms / 1000, "max_memory": LIMITS.max_memory_bytes,
            "max_recursion_depth": LIMITS.max_recursion_depth, "max_suspensions": CALLS * 2 + 100,
            "max_total_sleep_secs": LIMITS.timeout_ms / 1000}


def _monty_worker_pid() -> int:
    workers = descendants(lambda cmd: Path(cmd[0]).name == "monty" and "subprocess" in cmd)
    if len(workers) != 1:
        raise RuntimeError(f"expected one monty worker, found {len(workers)}")
    return int(workers[0].pid)


class _DenoRunning:
    """A running ``_deno_runner.ts``: one JSON line per snippet, host calls answered as they come."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._lines = BufferedByteReceiveStream(process.stdout)
        self.pid = process.pid

    async def run(self, code: str, *, fresh: bool = False) -> Any:
        """In the runner's own isolate (its globals outlive the run), or `fresh` in a new Worker's isolate."""
        with anyio.fail_after(RUN_TIMEOUT_S):
            await self._send({"code": code, "fresh": fresh})
            while True:
                message = json.loads(await self._lines.receive_until(b"\n", MAX_LINE))
                if "call" in message:
                    await self._send({"id": message["id"], "value": await host_call(message["call"], message["args"])})
                elif "result" in message:
                    return message["result"]
                else:
                    raise RuntimeError(f"deno: {message.get('error', message)}")

    async def _send(self, message: dict[str, Any]) -> None:
        await self._stdin.send(json.dumps(message).encode() + b"\n")


class DenoEngine:
    name = "deno"
    one_plus_one = "return 1 + 1;"

    def __init__(self, *, binary: str, deno_dir: Path, errlog: Path) -> None:
        self._command = [binary, *DENO_FLAGS, str(RUNNER)]
        self._env = clean_env(DENO_DIR=str(deno_dir), NO_COLOR="1", DENO_NO_UPDATE_CHECK="1")
        self._errlog = errlog

    def loop(self, calls: int) -> str:
        return f"let r = null; for (let i = 0; i < {calls}; i++) {{ r = await call('echo', {{i}}); }} return r;"

    @asynccontextmanager
    async def started(self) -> AsyncIterator[_DenoRunning]:
        """The runner with no permission granted; at exit its stdin is closed, then it is killed if still alive."""
        with self._errlog.open("ab") as err:
            process = await anyio.open_process(self._command, env=self._env, stderr=err)
        try:
            yield _DenoRunning(process)
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)


async def _stop(process: anyio.abc.Process) -> None:
    """EOF first (the runner's loop ends); a process still alive after `CLOSE_S` is killed."""
    if process.stdin is not None:
        await process.stdin.aclose()
    with anyio.move_on_after(CLOSE_S):
        await process.wait()
        return
    process.kill()
    with anyio.move_on_after(CLOSE_S):
        await process.wait()


def memory_mb(pid: int) -> dict[str, float]:
    """Resident and unique set size of one process, in MB."""
    info = psutil.Process(pid).memory_full_info()
    return {"rss": info.rss / 2**20, "uss": info.uss / 2**20}


async def cold_round(engine: Engine) -> dict[str, Any]:
    """From nothing to the value of ``1 + 1``; then the idle engine's memory."""
    started = time.perf_counter()
    async with engine.started() as running:
        value = await running.run(engine.one_plus_one)
        elapsed = timed_ms(started)
        memory = memory_mb(running.pid)
    if value != 2:
        raise RuntimeError(f"{engine.name}: 1 + 1 gave {value!r}")
    return {"cold_ms": elapsed, "idle_after_start": memory}


async def warm_round(engine: Engine, *, warm_runs: int, loops: int) -> dict[str, Any]:
    """Trivial runs on a started engine, then `loops` pairs of a `CALLS`-call loop and the same loop with none."""
    async with engine.started() as running:
        for _ in range(3):
            await running.run(engine.one_plus_one)
            await running.run(engine.loop(CALLS))
        warm = [await _timed_run(running, engine.one_plus_one, 2) for _ in range(warm_runs)]
        fresh = [await _timed_run(running, engine.one_plus_one, 2, fresh=True) for _ in range(warm_runs)]
        per_call = []
        for _ in range(loops):
            empty = await _timed_run(running, engine.loop(0), None)
            full = await _timed_run(running, engine.loop(CALLS), {"ok": True, "tool": "echo", "i": CALLS - 1})
            per_call.append((full - empty) * 1e3 / CALLS)
        memory = memory_mb(running.pid)
    return {"warm_ms": warm, "warm_fresh_ms": fresh, "per_call_us": per_call, "idle_after_use": memory}


async def _timed_run(running: Running, code: str, expected: Any, *, fresh: bool = False) -> float:
    started = time.perf_counter()
    value = await running.run(code, fresh=fresh)
    elapsed = timed_ms(started)
    if value != expected:
        raise RuntimeError(f"{code!r} gave {value!r}, not {expected!r}")
    return elapsed


async def first_deno_start(engine: DenoEngine) -> float:
    """The first start ever (an empty ``DENO_DIR``: the runner is transpiled and cached)."""
    return float((await cold_round(engine))["cold_ms"])


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    deno = DenoEngine(binary=find_deno_bin(), deno_dir=tmp / "deno_dir", errlog=tmp / "stderr.log")
    engines: list[Engine] = [MontyEngine(), deno]
    with anyio.fail_after(ROUND_TIMEOUT_S):
        first = await first_deno_start(deno)
    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(args.rounds):
        order = engines if number % 2 == 0 else engines[::-1]
        with anyio.fail_after(ROUND_TIMEOUT_S):
            cold = {e.name: await cold_round(e) for e in order}
            warm = {e.name: await warm_round(e, warm_runs=args.warm_runs, loops=args.loops) for e in order}
        rounds.append({name: {**cold[name], **warm[name]} for name in cold})
    return {"deno_first_start_ms": first, "rounds": rounds}


def summary(rounds: Sequence[dict[str, dict[str, Any]]], engine: str) -> dict[str, Any]:
    """Median and P95 of each measure over every sample of every round."""
    mine = [r[engine] for r in rounds]

    def stats(samples: Sequence[float]) -> dict[str, float]:
        return {"p50": statistics.median(samples), "p95": percentile(samples, 95), "n": len(samples)}

    return {
        "cold_ms": stats([r["cold_ms"] for r in mine]),
        "warm_ms": stats([x for r in mine for x in r["warm_ms"]]),
        "warm_fresh_ms": stats([x for r in mine for x in r["warm_fresh_ms"]]),
        "per_call_us": stats([x for r in mine for x in r["per_call_us"]]),
        **{f"{when}_{kind}_mb": stats([r[when][kind] for r in mine])
           for when in ("idle_after_start", "idle_after_use") for kind in ("rss", "uss")},
    }


def report(numbers: dict[str, dict[str, Any]], first_deno_ms: float, args: argparse.Namespace) -> None:
    monty, deno = numbers["monty"], numbers["deno"]
    labels = [("cold start, ms", "cold_ms"), ("warm run, ms", "warm_ms"),
              ("warm run, fresh isolate, ms", "warm_fresh_ms"), ("per host call, us", "per_call_us"),
              ("RSS idle after start, MB", "idle_after_start_rss_mb"),
              ("RSS idle after use, MB", "idle_after_use_rss_mb"),
              ("USS idle after start, MB", "idle_after_start_uss_mb"),
              ("USS idle after use, MB", "idle_after_use_uss_mb")]
    rows = [[label, monty[key]["p50"], monty[key]["p95"], deno[key]["p50"], deno[key]["p95"],
             f"{deno[key]['p50'] / monty[key]['p50']:.2f}x"] for label, key in labels]
    print(f"\n{args.rounds} rounds alternating; per round {args.warm_runs} warm runs and {args.loops} loops of "
          f"{CALLS} host calls per engine")
    print(table(["measure", "monty P50", "monty P95", "deno P50", "deno P95", "deno/monty"], rows))
    print(f"deno's first start with an empty DENO_DIR (transpiles the runner): {first_deno_ms:.1f} ms")


def versions() -> dict[str, str]:
    deno = subprocess.run([find_deno_bin(), "--version"], capture_output=True, text=True, check=True, timeout=30)
    return {"pydantic_monty": monty_version, "deno": deno.stdout.splitlines()[0]}


def leftovers() -> list[int]:
    """Engine processes still alive after the run (none expected); they are killed."""
    found = descendants(lambda cmd: Path(cmd[0]).name in {"monty", "deno"})
    for process in found:
        process.kill()
    return [p.pid for p in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer warm runs (a few seconds)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.rounds = 3
    args.warm_runs, args.loops = (10, 2) if args.quick else (30, 5)
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), {start['memory_gb']} GB, load {start['loadavg']}, "
          f"Python {start['python']}; {versions()}")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="pml-bench-sandbox-"))
    try:
        with logs_shown_on_failure(tmp / "stderr.log"):
            out = anyio.run(measure, args, tmp)
    finally:
        left = leftovers()
        shutil.rmtree(tmp, ignore_errors=True)
    numbers = {engine: summary(out["rounds"], engine) for engine in ("monty", "deno")}
    report(numbers, out["deno_first_start_ms"], args)
    if left:
        print(f"WARNING: engine processes left running (killed): {left}")
    path = write_results("sandbox", {"machine_start": start, "machine_end_load": machine()["loadavg"],
                                      "args": vars(args), "versions": versions(), "calls_per_loop": CALLS,
                                      "summary": numbers, "deno_first_start_ms": out["deno_first_start_ms"],
                                      "rounds": out["rounds"], "left_running": left,
                                      "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
