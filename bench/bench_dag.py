"""What the DAG executor gains and costs: parallel speedup, overhead per task and per layer, checkpoint saves.

Run: ``python bench/bench_dag.py [--quick] [--no-e2e]``.
Everything is real: the `Executor` as the gateway builds it (`Runtime._call_for_dag` over the `Supervisor`, the
`Runtime._checkpoint` into `WorkflowStore`, episodic events), examples/faulty_server.py over stdio (twice:
``faulty`` and ``faulty2``, to tell the server's limits from the executor's), and an embedded Postgres in a
temporary directory, stopped at the end. Sections:

1. speedup: one layer of `width` ``faulty:sleep`` tasks of `SLEEP_MS` (max_concurrency = width) against their
   sum and against the same DAG at max_concurrency 1; the same calls made directly and concurrently through
   `Supervisor.call_tool` show what the server alone allows. Also a 5-task chain+fan a -> [b, c, d] -> e.
   Target: speedup >= 0.9 x the width up to width 10.
2. overhead: ``faulty:echo`` DAGs against the same calls made directly through `Supervisor.call_tool`
   (one wide layer in parallel; one wide layer at max_concurrency 1; a chain of one-task layers), executor and
   direct alternating (ABBA), medians of the per-repetition differences.
3. checkpoints: `Executor.checkpoint_ms` P50/P95 over the runs above, and chains (10 and 40 echo layers, 10
   layers of 10 ms sleeps) with a no-op checkpoint, the Postgres checkpoint alone, and the gateway's checkpoint
   + events: the `advance` wall (saves drained) and `state.wall_ms` (the last layer's end): do saves stall?
4. end to end: `execute_dag` of five 200 ms sleeps sent to ``python -m gateway serve`` (``--database-url`` of
   the same embedded Postgres) over stdio by the SDK's client: the gateway's wall_ms and speedup.

Prints tables of medians; writes ``bench/results/dag.json``. No gateway code is changed or patched.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from _common import (
    ROOT,
    call,
    faulty_server,
    gateway_command,
    logs_shown_on_failure,
    machine,
    percentile,
    postgres_on,
    servers_file,
    stdio_session,
    table,
    timed_ms,
    write_results,
)

from gateway.config import GatewayConfig, ServerSpec
from gateway.dag import Task, parse_dag
from gateway.dag.executor import Checkpoint, Events, Executor
from gateway.dag.state import RunStatus, TaskStatus, WorkflowState
from gateway.db import Database, open_database
from gateway.runtime import Runtime
from gateway.services.workflows import needs_approval
from gateway.settings import Settings

SLEEP_MS = 100
WIDTHS = (2, 5, 10, 20)
SPLIT_WIDTHS = (10, 20)
TARGET_EFFICIENCY = 0.9
TARGET_UP_TO_WIDTH = 10
ECHO_TASKS = 20
CHAIN_LAYERS = 10
LONG_CHAIN = 40
STALL_SLEEP_MS = 10
E2E_SLEEPS, E2E_SLEEP_MS = 5, 200
SERVERS = ("faulty", "faulty2")
SETTLE_S = 60.0
ROUTE_TIMEOUT_S = 90.0
TEXT = "hello from the bench"

Shape = list[dict[str, Any]]
Timed = Callable[[], Awaitable[float]]


def sleep_task(task_id: str, ms: int, *deps: str, server: str = "faulty") -> dict[str, Any]:
    return {"id": task_id, "tool": f"{server}:sleep", "arguments": {"ms": ms}, "depends_on": list(deps)}


def echo_task(task_id: str, *deps: str, server: str = "faulty") -> dict[str, Any]:
    return {"id": task_id, "tool": f"{server}:echo", "arguments": {"text": TEXT}, "depends_on": list(deps)}


def layer_of_sleeps(width: int, ms: int, servers: Sequence[str] = ("faulty",)) -> Shape:
    return [sleep_task(f"s{i}", ms, server=servers[i % len(servers)]) for i in range(width)]


def chain(layers: int, make: Callable[[str, tuple[str, ...]], dict[str, Any]]) -> Shape:
    return [make(f"c{i}", (f"c{i - 1}",) if i else ()) for i in range(layers)]


def chain_and_fan(ms: int) -> Shape:
    """a -> [b, c, d] -> e: three layers, five tasks."""
    return [sleep_task("a", ms), *(sleep_task(t, ms, "a") for t in "bcd"), sleep_task("e", ms, "b", "c", "d")]


def as_calls(tasks: Shape) -> list[tuple[str, str, dict[str, Any]]]:
    """The (server, tool, arguments) of each task, for the direct path."""
    return [(*t["tool"].split(":", 1), t["arguments"]) for t in tasks]


class Harness:
    """The gateway's `Runtime` with only its supervisor running and its database set: the executor's real
    `call` (`_call_for_dag`) and `checkpoint` (`_checkpoint`), as `Runtime._executor` wires them."""

    def __init__(self, runtime: Runtime, db: Database) -> None:
        self.runtime = runtime
        self.db = db

    @property
    def supervisor(self) -> Any:
        return self.runtime.supervisor

    def executor(self, *, checkpoint: bool = True, events: bool = True) -> Executor:
        """`Runtime._executor(db)` when both are on (exactly the gateway's); else the same with a no-op
        checkpoint and/or without the events sink."""
        if checkpoint and events:
            return self.runtime._executor(self.db)
        runtime = self.runtime

        async def no_checkpoint(state: WorkflowState) -> None:
            return None

        def approval(task: Task) -> bool:  # as in Runtime._executor
            return needs_approval(runtime.known_tools().get(task.tool), runtime._config.approval)

        def schema_of(tool_id: str) -> dict[str, Any] | None:
            tool = runtime.known_tools().get(tool_id)
            return tool.input_schema if tool else None

        saver: Checkpoint = runtime._checkpoint if checkpoint else no_checkpoint
        sink: Events | None = self.db.workflows.record_events if events else None
        return Executor(call=runtime._call_for_dag, checkpoint=saver, events=sink, needs_approval=approval,
                        schema_of=schema_of)

    def state(self, tasks: Shape, **options: Any) -> WorkflowState:
        schemas = {tool_id: tool.input_schema for tool_id, tool in self.runtime.known_tools().items()}
        dag = parse_dag({"tasks": tasks, "options": options}, tool_schemas=schemas)
        return WorkflowState(workflow_id=f"wf_bench_{uuid.uuid4().hex[:12]}", dag=dag)

    async def advance(self, executor: Executor, tasks: Shape, **options: Any) -> tuple[float, WorkflowState]:
        """Wall ms of one `advance` (its saves included: it returns once they are done), and the final state."""
        state = self.state(tasks, **options)
        started = time.perf_counter()
        done = await executor.advance(state)
        wall = timed_ms(started)
        bad = {r.id: r.error for r in done.results.values() if r.status is not TaskStatus.OK}
        if done.status is not RunStatus.COMPLETED or bad:
            raise RuntimeError(f"workflow ended {done.status.value}: {bad}")
        return wall, done

    async def direct_parallel(self, tasks: Shape) -> float:
        """Wall ms of the same calls made at once through `Supervisor.call_tool`."""
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for server, tool, arguments in as_calls(tasks):
                tg.start_soon(self._direct, server, tool, arguments)
        return timed_ms(started)

    async def direct_sequential(self, tasks: Shape) -> float:
        started = time.perf_counter()
        for server, tool, arguments in as_calls(tasks):
            await self._direct(server, tool, arguments)
        return timed_ms(started)

    async def _direct(self, server: str, tool: str, arguments: dict[str, Any]) -> None:
        result = await self.supervisor.call_tool(server, tool, arguments)
        if result.is_error:
            raise RuntimeError(f"{server}:{tool} failed: {result.content}")


async def alternating(pair: dict[str, Timed], runs: int, warmup: int) -> dict[str, list[float]]:
    """`warmup` unmeasured rounds, then `runs` rounds of each, ABBA order."""
    for _ in range(warmup):
        for measure in pair.values():
            await measure()
    rounds: dict[str, list[float]] = {k: [] for k in pair}
    for run in range(runs):
        order = list(pair) if run % 2 == 0 else list(reversed(pair))
        for key in order:
            rounds[key].append(await pair[key]())
    return rounds


def med(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def ckpt_stats(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50": percentile(samples, 50), "p95": percentile(samples, 95),
            "p99": percentile(samples, 99), "max": max(samples)}


# 1. speedup ---------------------------------------------------------------------------------------------------


async def speedup(h: Harness, args: argparse.Namespace) -> dict[str, Any]:
    executor = h.executor()
    widths: dict[str, Any] = {}
    for width in WIDTHS:
        tasks = layer_of_sleeps(width, SLEEP_MS)
        walls, sums, reported = [], [], []
        for _ in range(args.runs):
            wall, done = await h.advance(executor, tasks, max_concurrency=width)
            walls.append(wall)
            sums.append(done.sum_task_ms)
            reported.append(done.wall_ms)
        direct = [await h.direct_parallel(tasks) for _ in range(args.runs)]
        sequential = [(await h.advance(executor, tasks, max_concurrency=1))[0] for _ in range(args.seq_runs)]
        row: dict[str, Any] = {
            "wall_ms": med(walls), "wall_ms_all": walls, "state_wall_ms": med(reported), "sum_task_ms": med(sums),
            "direct_parallel_ms": med(direct), "sequential_wall_ms": med(sequential),
        }
        row["speedup"] = statistics.median(s / w for s, w in zip(sums, walls, strict=True))
        row["efficiency"] = row["speedup"] / width
        row["speedup_vs_mc1"] = row["sequential_wall_ms"] / row["wall_ms"]
        if width in SPLIT_WIDTHS:
            split = layer_of_sleeps(width, SLEEP_MS, SERVERS)
            two = [await h.advance(executor, split, max_concurrency=width) for _ in range(args.runs)]
            row["two_servers_wall_ms"] = med([w for w, _ in two])
            row["two_servers_speedup"] = statistics.median(d.sum_task_ms / w for w, d in two)
            row["two_servers_direct_ms"] = med([await h.direct_parallel(split) for _ in range(args.runs)])
        widths[str(width)] = row
    fan = chain_and_fan(SLEEP_MS)
    runs = [await h.advance(executor, fan, max_concurrency=3) for _ in range(args.runs)]
    fan_row = {
        "wall_ms": med([w for w, _ in runs]), "sum_task_ms": med([d.sum_task_ms for _, d in runs]),
        "speedup": statistics.median(d.sum_task_ms / w for w, d in runs), "ideal_speedup": 5 / 3,
        "ideal_wall_ms": 3 * SLEEP_MS,
    }
    fan_row["efficiency"] = fan_row["speedup"] / fan_row["ideal_speedup"]
    return {"widths": widths, "chain_fan": fan_row, "checkpoint_ms": executor.checkpoint_ms}


# 2. overhead --------------------------------------------------------------------------------------------------


async def overhead(h: Harness, args: argparse.Namespace) -> dict[str, Any]:
    executor = h.executor()
    n = ECHO_TASKS
    layer = [echo_task(f"e{i}") for i in range(n)]
    links = chain(n, lambda i, deps: echo_task(i, *deps))
    shapes: dict[str, tuple[Timed, Timed]] = {
        "1 layer x 20, parallel": (
            lambda: _wall(h.advance(executor, layer, max_concurrency=n)), lambda: h.direct_parallel(layer)),
        "1 layer x 20, mc=1": (
            lambda: _wall(h.advance(executor, layer, max_concurrency=1)), lambda: h.direct_sequential(layer)),
        "20 layers x 1 (chain)": (
            lambda: _wall(h.advance(executor, links, max_concurrency=1)), lambda: h.direct_sequential(links)),
    }
    out: dict[str, Any] = {}
    for name, (through, direct) in shapes.items():
        rounds = await alternating({"executor": through, "direct": direct}, args.oh_runs, args.warmup)
        per_task = [(e - d) / n for e, d in zip(rounds["executor"], rounds["direct"], strict=True)]
        out[name] = {"executor_ms": med(rounds["executor"]), "direct_ms": med(rounds["direct"]),
                     "overhead_per_task_ms": med(per_task), "raw": rounds}
    out["layer_only_ms"] = (
        out["20 layers x 1 (chain)"]["overhead_per_task_ms"] - out["1 layer x 20, mc=1"]["overhead_per_task_ms"]
    )
    out["checkpoint_ms"] = executor.checkpoint_ms
    return out


async def _wall(run: Awaitable[tuple[float, WorkflowState]]) -> float:
    return (await run)[0]


# 3. checkpoint stalls -----------------------------------------------------------------------------------------


async def stalls(h: Harness, args: argparse.Namespace) -> dict[str, Any]:
    variants = {
        "no-op checkpoint": h.executor(checkpoint=False, events=False),
        "Postgres checkpoint": h.executor(checkpoint=True, events=False),
        "checkpoint + events (gateway)": h.executor(),
    }
    shapes = {
        f"{CHAIN_LAYERS} x echo": chain(CHAIN_LAYERS, lambda i, deps: echo_task(i, *deps)),
        f"{LONG_CHAIN} x echo": chain(LONG_CHAIN, lambda i, deps: echo_task(i, *deps)),
        f"{CHAIN_LAYERS} x sleep {STALL_SLEEP_MS} ms": chain(
            CHAIN_LAYERS, lambda i, deps: sleep_task(i, STALL_SLEEP_MS, *deps)),
    }
    out: dict[str, Any] = {}
    for shape, tasks in shapes.items():
        reported: dict[str, list[float]] = {k: [] for k in variants}

        def measure(key: str, executor: Executor, tasks: Shape = tasks, reported: Any = reported) -> Timed:
            async def one() -> float:
                wall, done = await h.advance(executor, tasks, max_concurrency=1)
                reported[key].append(done.wall_ms)
                return wall

            return one

        rounds = await alternating({k: measure(k, e) for k, e in variants.items()}, args.oh_runs, args.warmup)
        last = {k: med(v[args.warmup :]) for k, v in reported.items()}  # state.wall_ms: the last layer's end
        base, layers = med(rounds["no-op checkpoint"]), len(tasks)
        out[shape] = {
            k: {"wall_ms": med(v), "state_wall_ms": last[k], "added_per_layer_ms": (med(v) - base) / layers,
                "added_to_layers_per_layer_ms": (last[k] - last["no-op checkpoint"]) / layers}
            for k, v in rounds.items()
        }
    out["checkpoint_ms"] = {k: e.checkpoint_ms for k, e in variants.items() if k != "no-op checkpoint"}
    return out


# 4. end to end ------------------------------------------------------------------------------------------------


async def end_to_end(db: Database, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    config = servers_file(tmp / "servers.json", {"faulty": faulty_server()})
    command = gateway_command("serve", "--config", str(config), "--database-url", db.url,
                              "--data-dir", str(tmp / "gateway-data"))
    tasks = [sleep_task(f"s{i}", E2E_SLEEP_MS) for i in range(E2E_SLEEPS)]
    payloads, rtts = [], []
    async with stdio_session(command, errlog=tmp / "stderr.log") as client:
        with anyio.fail_after(ROUTE_TIMEOUT_S):  # faulty started and listed (the DAG is validated against it)
            while (await call(client, "faulty__echo", {"text": TEXT})).is_error:  # noqa: ASYNC110 - poll
                await anyio.sleep(0.1)
        for run in range(args.warmup + args.e2e_runs):
            started = time.perf_counter()
            result = await call(client, "execute_dag", {"tasks": tasks, "options": {"max_concurrency": 8}})
            rtt = timed_ms(started)
            payload = _payload(result)
            if run >= args.warmup:
                payloads.append(payload)
                rtts.append(rtt)
    return {
        "client_ms": med(rtts), "wall_ms": med([p["wall_ms"] for p in payloads]),
        "sum_task_ms": med([p["sum_task_ms"] for p in payloads]), "speedup": med([p["speedup"] for p in payloads]),
        "runs": len(payloads), "raw": [{k: p[k] for k in ("wall_ms", "sum_task_ms", "speedup")} for p in payloads],
        "client_ms_all": rtts,
    }


def _payload(result: types.CallToolResult) -> dict[str, Any]:
    payload: dict[str, Any] | None = result.structured_content
    if result.is_error or not payload or payload.get("status") != "completed":
        raise RuntimeError(f"execute_dag failed: {payload or result.content}")
    return payload


# the run ------------------------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    script = str(ROOT / "examples" / "faulty_server.py")
    specs = tuple(ServerSpec(name=name, command=sys.executable, args=(script,)) for name in SERVERS)
    runtime = Runtime(settings=Settings(data_dir=tmp / "unused"), config=GatewayConfig(servers=specs))
    out: dict[str, Any] = {}
    async with open_database(url=None, pgdata=tmp / "pgdata") as db:
        runtime._db = db  # what Runtime._open_index sets: `_checkpoint` saves through it
        h = Harness(runtime, db)
        async with anyio.create_task_group() as tg:
            await tg.start(runtime.supervisor.run)
            await runtime.supervisor.wait_settled(SETTLE_S)
            missing = [
                f"{s}:{t}" for s in SERVERS for t in ("sleep", "echo") if f"{s}:{t}" not in runtime.known_tools()
            ]
            if missing:
                raise RuntimeError(f"tools not listed: {missing}")
            out["speedup"] = await speedup(h, args)
            out["overhead"] = await overhead(h, args)
            out["stalls"] = await stalls(h, args)
            tg.cancel_scope.cancel()
        if args.e2e:
            out["e2e"] = await end_to_end(db, tmp, args)
    with anyio.move_on_after(15):
        while postgres_on(tmp):  # noqa: ASYNC110 - a process's exit sends us no event: poll
            await anyio.sleep(0.1)
    out["postgres_left_running"] = postgres_on(tmp)
    return out


def report(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    sp = out["speedup"]
    print(f"\n1. speedup: one layer of faulty:sleep({SLEEP_MS}) x width, max_concurrency = width, "
          f"medians of {args.runs} runs (mc=1: {args.seq_runs}), ms")
    rows = []
    for width, r in sp["widths"].items():
        split = (f"{r['two_servers_wall_ms']:.1f} / {r['two_servers_speedup']:.2f}x"
                 if "two_servers_wall_ms" in r else "")
        rows.append(
            [
                width,
                r["direct_parallel_ms"],
                r["wall_ms"],
                r["sum_task_ms"],
                f"{r['speedup']:.2f}x",
                f"{r['efficiency']:.2f}",
                r["sequential_wall_ms"],
                f"{r['speedup_vs_mc1']:.2f}x",
                split,
            ]
        )
    print(table(["width", "direct ||", "executor", "sum tasks", "speedup", "/width", "mc=1 wall", "mc1/exec",
                 "2 servers wall / speedup"], rows))
    f = sp["chain_fan"]
    print(f"a -> [b,c,d] -> e (5 x {SLEEP_MS} ms, ideal {f['ideal_wall_ms']} ms, {f['ideal_speedup']:.2f}x): "
          f"wall {f['wall_ms']:.1f} ms, sum {f['sum_task_ms']:.1f} ms, speedup {f['speedup']:.2f}x "
          f"= {f['efficiency']:.2f} of ideal")
    meets = all(r["efficiency"] >= TARGET_EFFICIENCY for w, r in sp["widths"].items() if int(w) <= TARGET_UP_TO_WIDTH)
    print(f"target speedup >= {TARGET_EFFICIENCY} x width up to width {TARGET_UP_TO_WIDTH}: "
          f"{'met' if meets else 'NOT met'}")

    oh = out["overhead"]
    print(f"\n2. overhead: faulty:echo, executor vs Supervisor.call_tool, ABBA, medians of {args.oh_runs} runs, ms")
    rows = [[k, v["direct_ms"], v["executor_ms"], v["overhead_per_task_ms"]]
            for k, v in oh.items() if isinstance(v, dict)]
    print(table(["shape", "direct", "executor", "added per task"], rows))
    print(f"per layer beyond per task (chain - mc=1 layer): {oh['layer_only_ms']:.3f} ms")

    st = out["stalls"]
    saves = [*out["speedup"]["checkpoint_ms"], *oh["checkpoint_ms"]]
    cp = ckpt_stats(saves)
    print(
        f"\n3. checkpoint saves seen by the executor (sections 1-2, gateway executor): n {cp['n']}, "
        f"P50 {cp['p50']:.2f} ms, P95 {cp['p95']:.2f} ms, P99 {cp['p99']:.2f} ms, max {cp['max']:.2f} ms"
    )
    rows = []
    for shape, variants in st.items():
        if shape == "checkpoint_ms":
            continue
        for k, v in variants.items():
            rows.append([shape, k, v["wall_ms"], v["added_per_layer_ms"], v["state_wall_ms"],
                         v["added_to_layers_per_layer_ms"]])
    print(table(["chain (mc=1)", "checkpoint", "advance wall", "added/layer", "last layer done",
                 "added/layer"], rows))
    stall_ckpt = {k: ckpt_stats(v) for k, v in st["checkpoint_ms"].items()}
    for k, v in stall_ckpt.items():
        print(f"  saves, {k}: n {v['n']}, P50 {v['p50']:.2f} ms, P95 {v['p95']:.2f} ms")

    e2e = out.get("e2e")
    if e2e:
        print(f"\n4. gateway over stdio: execute_dag of {E2E_SLEEPS} x sleep({E2E_SLEEP_MS}), "
              f"medians of {e2e['runs']} runs: client round trip {e2e['client_ms']:.1f} ms, gateway wall_ms "
              f"{e2e['wall_ms']:.1f}, sum_task_ms {e2e['sum_task_ms']:.1f}, speedup {e2e['speedup']:.2f}x "
              f"(ideal {E2E_SLEEPS}x)")
    if out["postgres_left_running"]:
        print(f"WARNING: Postgres still running: pids {out['postgres_left_running']}")
    return {"checkpoint_ms_sections_1_2": cp, "checkpoint_ms_stall_runs": stall_ckpt, "meets_target": meets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 30 s)")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip the gateway over stdio")
    args = parser.parse_args()
    args.runs, args.seq_runs, args.oh_runs, args.warmup, args.e2e_runs = (
        (3, 1, 5, 1, 3) if args.quick else (7, 3, 15, 2, 7)
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), {start['memory_gb']} GB, load {start['loadavg']}, "
          f"Python {start['python']}")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="pml-bench-dag-"))  # outside /tmp/pytest-of-*: see tests/conftest.py
    try:
        with logs_shown_on_failure(tmp / "stderr.log"):
            out = anyio.run(measure, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    numbers = report(out, args)
    end = machine()
    print(f"load at end {end['loadavg']}")
    path = write_results("dag", {"machine_start": start, "args": vars(args), "raw": out, **numbers,
                                 "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
