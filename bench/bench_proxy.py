"""What the gateway adds to one tool call: `echo` of examples/faulty_server.py, direct vs through the gateway.

Run: ``python bench/bench_proxy.py [--quick] [--profiler py-spy|cprofile|none]``.
A third path, the SDK's minimal pass-through (`_passthrough.py`: the SDK's low-level server forwarding to one
SDK client session, nothing else), is run beside them so that the gateway's hop is read against what the SDK
costs by itself, in the same run. All paths use the SDK's client over stdio (legacy initialize) and send raw
``tools/call`` requests, so the only difference is the hop (`faulty__echo`, servers file holding only faulty,
embedded Postgres in a temporary directory). The paths alternate run by run to spread the machine's noise.
Prints sequential latency (P50/P95/P99, medians over runs), the added ms and ratios, then throughput with 50
concurrent callers and each process's CPU time per call (on two cores the client and faulty, not the gateway,
set the ceiling), then the SDK's own `Client.call_tool` on both paths; writes ``bench/results/proxy.json``.
Targets: <= 1 ms added at P50, >= 600 calls/s proxied. A profile of the gateway during a proxied throughput
run (not counted) goes to ``bench/results/`` (py-spy, ``pip install py-spy``, or cProfile without it).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
from _common import (
    RESULTS,
    call,
    clean_env,
    descendants,
    faulty_server,
    gateway_command,
    logs_shown_on_failure,
    machine,
    median_of_runs,
    postgres_on,
    servers_file,
    spread,
    stdio_session,
    table,
    timed_ms,
    write_results,
)
from _profile import start_py_spy, stop_py_spy, summarise_cprofile, summarise_raw
from mcp import Client

ECHO = "echo"
PROXIED = "faulty__echo"
TEXT = "hello from the bench"
ROUTE_TIMEOUT_S = 60.0
TARGET_ADDED_P50_MS = 1.0
TARGET_PROXIED_RATE = 600.0
PROCS = ("client", "gateway", "faulty")
"""The processes of a path, for CPU per call ("gateway": the proxy in between, ours or the SDK pass-through)."""
PASS = "SDK pass-through"
PASSTHROUGH = Path(__file__).with_name("_passthrough.py")


async def sequential_ms(client: Client, name: str, calls: int) -> list[float]:
    """Latency of `calls` calls made one after the other."""
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await call(client, name, {"text": TEXT})
        samples.append(timed_ms(started))
        _check(result, name)
    return samples


async def calls_per_s(client: Client, name: str, total: int, concurrency: int) -> float:
    """`total` calls spread over `concurrency` callers; calls per second of the whole batch."""
    remaining = total
    assert concurrency <= total

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            _check(await call(client, name, {"text": TEXT}), name)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(caller)
    return total / (time.perf_counter() - started)


def _check(result: Any, name: str) -> None:
    text = getattr(result.content[0], "text", "") if result.content else ""
    if result.is_error or text != TEXT:
        raise RuntimeError(f"{name} answered {'an error' if result.is_error else 'a wrong text'}: {text!r}")


async def wait_routed(gateway: Client) -> float:
    """Ms until the gateway answers `faulty__echo` (faulty started and its tools listed)."""
    started = time.perf_counter()
    with anyio.fail_after(ROUTE_TIMEOUT_S):
        while True:
            result = await call(gateway, PROXIED, {"text": TEXT})
            if not result.is_error:
                return timed_ms(started)
            await anyio.sleep(0.1)


async def sdk_call_tool_ms(client: Client, name: str, calls: int) -> float:
    """P50 of the SDK's own `Client.call_tool`, which re-lists tools when `name` is not in its listing."""
    samples = []
    sdk_logger = logging.getLogger("client")  # the SDK client session's logger
    level, sdk_logger.level = sdk_logger.level, logging.ERROR  # it warns "not listed by server" on every call
    try:
        for _ in range(calls):
            started = time.perf_counter()
            _check(await client.call_tool(name, {"text": TEXT}), name)
            samples.append(timed_ms(started))
    finally:
        sdk_logger.setLevel(level)
    return statistics.median(samples)


def processes(config: Path) -> dict[str, dict[str, psutil.Process]]:
    """The processes each path runs on, for CPU time per call: the bench client, the gateway, faulty."""
    me = psutil.Process()
    gateway = descendants(lambda cmd: "gateway" in cmd and "serve" in cmd and str(config) in cmd)
    if len(gateway) != 1:
        raise RuntimeError(f"expected one gateway process, found {gateway}")
    relay = descendants(lambda cmd: any(part.endswith(PASSTHROUGH.name) for part in cmd))
    if len(relay) != 1:
        raise RuntimeError(f"expected one pass-through process, found {relay}")
    faulty = descendants(lambda cmd: cmd[-1:] != [] and cmd[-1].endswith("faulty_server.py")
                         and not any(part.endswith(PASSTHROUGH.name) for part in cmd))
    behind = {p.pid for p in gateway[0].children(recursive=True)}
    relayed = {p.pid for p in relay[0].children(recursive=True)}
    direct_faulty = [p for p in faulty if p.pid not in behind | relayed]
    proxied_faulty = [p for p in faulty if p.pid in behind]
    relayed_faulty = [p for p in faulty if p.pid in relayed]
    if len(direct_faulty) != 1 or len(proxied_faulty) != 1 or len(relayed_faulty) != 1:
        raise RuntimeError(f"expected one faulty server per path, found {faulty}")
    return {
        "direct": {"client": me, "faulty": direct_faulty[0]},
        "proxied": {"client": me, "gateway": gateway[0], "faulty": proxied_faulty[0]},
        PASS: {"client": me, "gateway": relay[0], "faulty": relayed_faulty[0]},
    }


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    config = servers_file(tmp / "servers.json", {"faulty": faulty_server()})
    gateway_cmd = gateway_command("serve", "--config", str(config), "--data-dir", str(tmp / "data"))
    direct_cmd = [sys.executable, *faulty_server()["args"]]
    passthrough_cmd = [sys.executable, str(PASSTHROUGH), *direct_cmd]
    log = tmp / "stderr.log"
    out: dict[str, Any] = {}
    async with stdio_session(direct_cmd, errlog=log) as direct, stdio_session(gateway_cmd, errlog=log) as gateway, \
            stdio_session(passthrough_cmd, errlog=log) as passthrough:
        out["first_proxied_call_ms"] = await wait_routed(gateway)
        clients = {"direct": (direct, ECHO), "proxied": (gateway, PROXIED), PASS: (passthrough, ECHO)}
        for client, name in clients.values():
            await sequential_ms(client, name, args.warmup)
        procs = processes(config)

        async def throughput(key: str, client: Client, name: str) -> dict[str, float]:
            before = {label: cpu_s(p) for label, p in procs[key].items()}
            rate = await calls_per_s(client, name, args.total, args.concurrency)
            used = {f"{label}_cpu_us_per_call": (cpu_s(p) - before[label]) / args.total * 1e6
                    for label, p in procs[key].items()}
            return {"calls_per_s": rate, **used}

        out["sequential"] = await _alternating(clients, args.runs, lambda k, c, n: sequential_ms(c, n, args.calls))
        out["throughput"] = await _alternating(clients, args.runs, throughput)
        out["sdk_call_tool_p50_ms"] = {k: await sdk_call_tool_ms(c, n, args.sdk_calls) for k, (c, n) in clients.items()}
        if args.profiler == "py-spy":
            out["profile"] = await _py_spy_pass(gateway, config, args)
    if args.profiler == "cprofile":
        out["profile"] = await _cprofile_pass(config, tmp, args)
    with anyio.move_on_after(15):  # the gateway stops its Postgres after the client leaves: give it time
        while postgres_on(tmp):  # noqa: ASYNC110 - a process's exit sends us no event: poll
            await anyio.sleep(0.1)
    out["postgres_left_running"] = postgres_on(tmp)
    return out


async def _alternating(clients: dict[str, tuple[Client, str]], runs: int, measure_one: Any) -> dict[str, list[Any]]:
    """`runs` rounds of each path, ABBA order, so drifting load hits both alike."""
    rounds: dict[str, list[Any]] = {k: [] for k in clients}
    for run in range(runs):
        order = list(clients) if run % 2 == 0 else list(reversed(clients))
        for key in order:
            client, name = clients[key]
            rounds[key].append(await measure_one(key, client, name))
    return rounds


async def _py_spy_pass(gateway: Client, config: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One proxied throughput batch with py-spy on the gateway: a raw file summarised, and a flame graph."""
    pids = [p.pid for p in descendants(lambda cmd: "gateway" in cmd and "serve" in cmd and str(config) in cmd)]
    if len(pids) != 1:
        return {"skipped": f"expected one gateway process, found {pids}"}
    summary: dict[str, Any] = {"tool": "py-spy", "pid": pids[0]}
    for fmt, name in (("raw", "proxy_profile.txt"), ("flamegraph", "proxy.svg")):
        spy = await start_py_spy(pids[0], RESULTS / name, fmt)
        summary[f"{fmt}_rate"] = await calls_per_s(gateway, PROXIED, args.total, args.concurrency)
        await stop_py_spy(spy)
    summary.update(summarise_raw(RESULTS / "proxy_profile.txt"))
    return summary


async def _cprofile_pass(config: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A second gateway under cProfile, one proxied throughput batch, then its top functions."""
    dump = RESULTS / "gateway.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(dump), "-m", "gateway", "serve", "--config",
               str(config), "--data-dir", str(tmp / "data-prof")]
    async with stdio_session(command, errlog=tmp / "stderr.log", env=clean_env()) as gateway:
        await wait_routed(gateway)
        rate = await calls_per_s(gateway, PROXIED, args.total, args.concurrency)
    with anyio.fail_after(30):
        while not dump.exists():  # noqa: ASYNC110 - written by another process: poll
            await anyio.sleep(0.1)
    return {"tool": "cProfile", "rate_under_profiler": rate, **summarise_cprofile(dump)}


def report(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    seq = {k: median_of_runs([spread(r) for r in runs]) for k, runs in out["sequential"].items()}
    added = [
        statistics.median(p) - statistics.median(d)
        for d, p in zip(out["sequential"]["direct"], out["sequential"]["proxied"], strict=True)
    ]
    rates = {k: [r["calls_per_s"] for r in runs] for k, runs in out["throughput"].items()}
    rate = {k: statistics.median(v) for k, v in rates.items()}
    cpu = {
        k: {label: statistics.median(r[label] for r in runs) for label in runs[0] if label.endswith("_per_call")}
        for k, runs in out["throughput"].items()
    }
    added_sdk = [
        statistics.median(p) - statistics.median(d)
        for d, p in zip(out["sequential"]["direct"], out["sequential"][PASS], strict=True)
    ]
    summary = {
        "added_p50_ms": statistics.median(added),
        "sdk_passthrough_added_p50_ms": statistics.median(added_sdk),
        "ratio_p50_over_passthrough": seq["proxied"]["p50"] / seq[PASS]["p50"],
        "rate_ratio_over_passthrough": rate["proxied"] / rate[PASS],
        "ratio_p50": seq["proxied"]["p50"] / seq["direct"]["p50"],
        "ratio_p95": seq["proxied"]["p95"] / seq["direct"]["p95"],
        "rate_ratio": rate["proxied"] / rate["direct"],
        "meets_added_p50": statistics.median(added) <= TARGET_ADDED_P50_MS,
        "meets_rate": rate["proxied"] >= TARGET_PROXIED_RATE,
    }
    print(f"sequential: {args.runs} runs x {args.calls} calls (after {args.warmup} warm-up), medians over runs, ms")
    rows = [[k, s["p50"], s["p95"], s["p99"], s["p95_max"]] for k, s in seq.items()]
    rows.append(["proxied/direct", summary["ratio_p50"], summary["ratio_p95"], "", ""])
    rows.append([f"proxied/{PASS}", summary["ratio_p50_over_passthrough"], "", "", ""])
    print(table(["path", "P50", "P95", "P99", "worst P95"], rows))
    print(f"added at P50: {summary['added_p50_ms']:.2f} ms by the gateway, "
          f"{summary['sdk_passthrough_added_p50_ms']:.2f} ms by the {PASS} (target <= {TARGET_ADDED_P50_MS:g} ms)")
    print(f"\nthroughput: {args.concurrency} concurrent callers, {args.total} calls per run, {args.runs} runs, calls/s")
    rows = [[k, rate[k], min(v), max(v), *(f"{cpu[k].get(f'{p}_cpu_us_per_call', 0):.0f}" for p in PROCS)]
            for k, v in rates.items()]
    rows.append(["proxied/direct", summary["rate_ratio"], "", "", "", "", ""])
    rows.append([f"proxied/{PASS}", summary["rate_ratio_over_passthrough"], "", "", "", "", ""])
    print(table(["path", "median", "min", "max", *(f"{p} CPU us/call" for p in PROCS)], rows))
    print(f"target: >= {TARGET_PROXIED_RATE:.0f} calls/s proxied")
    sdk = out["sdk_call_tool_p50_ms"]
    print(
        f"\nSDK Client.call_tool P50: direct {sdk['direct']:.2f} ms, proxied {sdk['proxied']:.2f} ms, "
        f"{PASS} {sdk[PASS]:.2f} ms "
        "(proxied names are not in the gateway's tools/list in search mode: the SDK re-lists on every call)"
    )
    print(f"first proxied call answered {out['first_proxied_call_ms']:.0f} ms after the handshake")
    if out["postgres_left_running"]:
        print(f"WARNING: Postgres still running after the gateway exited: pids {out['postgres_left_running']}")
    _print_profile(out.get("profile"))
    return {"sequential_ms": seq, "throughput_calls_per_s": rate, "cpu_us_per_call": cpu, "summary": summary}


def _print_profile(profile: dict[str, Any] | None) -> None:
    if not profile or "skipped" in profile:
        print(f"\nprofile: {profile['skipped'] if profile else 'not run'}")
        return
    unit = "%" if profile["tool"] == "py-spy" else "s"
    cumulative, own = ("cumulative_pct", "self_pct") if unit == "%" else ("cumulative_s", "self_s")
    print(f"\nprofile ({profile['tool']}) of the gateway during a proxied throughput batch, top 15 ({unit}):")
    rows = [[f"{c[1]:.1f}", c[0], f"{o[1]:.1f}", o[0]] for c, o in zip(profile[cumulative], profile[own], strict=False)]
    print(table(["cum", "function (cumulative)", "self", "function (self)"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs and calls (about 30 s)")
    parser.add_argument("--profiler", choices=("py-spy", "cprofile", "none"), default=None)
    args = parser.parse_args()
    args.runs, args.calls, args.warmup = (2, 300, 100) if args.quick else (5, 400, 200)
    args.total, args.concurrency, args.sdk_calls = (1500 if args.quick else 5000), 50, (50 if args.quick else 200)
    if args.profiler is None:
        args.profiler = "none" if args.quick else ("py-spy" if shutil.which("py-spy") else "cprofile")
    RESULTS.mkdir(parents=True, exist_ok=True)
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), load {start['loadavg']}, Python {start['python']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pml-bench-proxy-") as tmp:
        with logs_shown_on_failure(Path(tmp) / "stderr.log"):
            out = anyio.run(measure, args, Path(tmp))
    numbers = report(out, args)
    path = write_results("proxy", {"machine_start": start, "args": vars(args), "raw": out, **numbers,
                                   "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
