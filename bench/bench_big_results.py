"""What a huge downstream answer costs: the refused one (over ``maxResultBytes``), an accepted one, and the calls
of another server meanwhile.

Run: ``python bench/bench_big_results.py [--mb 20] [--rounds 3]``. Starts two copies of the fault-injection
server (tests/faults/hostile_server.py) under one `Supervisor`, and per round asks one of them for a text of
`--mb` MB while the other is called in a loop (`echo`). Measures the big call's time, the other server's echo
latency while it runs (P50 and max), and this process's resident memory before, at the end of the call and after.
Twice: with the default limit (4 MiB, the answer is refused) and with the limit raised above the answer (it is
accepted). Prints medians over the rounds; writes ``bench/results/big_results.json``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
from _common import machine, table, write_results

from gateway.config import DEFAULT_MAX_RESULT_BYTES, ServerSpec
from gateway.downstream import Supervisor
from gateway.errors import ResultTooLargeError

HOSTILE = str(Path(__file__).resolve().parents[1] / "tests" / "faults" / "hostile_server.py")


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


async def one_round(limit: int, size: int) -> dict[str, float]:
    specs = [ServerSpec(name=n, command=sys.executable, args=(HOSTILE,), max_result_bytes=limit, call_timeout_s=120)
             for n in ("big", "other")]

    async def ignore(*_: Any) -> None:
        return None

    supervisor = Supervisor(servers=specs, on_tools=ignore)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        await supervisor.wait_settled(60)
        await supervisor.call_tool("big", "big", {"size": 10})
        gc.collect()
        before, echoes, busy = rss_mb(), [], True

        async def echo_meanwhile() -> None:
            while busy:
                began = time.perf_counter()
                await supervisor.call_tool("other", "echo", {"text": "x"})
                echoes.append((time.perf_counter() - began) * 1000)

        tg.start_soon(echo_meanwhile)
        began = time.perf_counter()
        try:
            await supervisor.call_tool("big", "big", {"size": size})
        except ResultTooLargeError:
            pass
        took_s, at_end = time.perf_counter() - began, rss_mb()
        busy = False
        await anyio.sleep(0.2)
        gc.collect()
        after = rss_mb()
        tg.cancel_scope.cancel()
    return {"call_s": took_s, "echo_p50_ms": statistics.median(echoes or [0.0]), "echo_max_ms": max(echoes or [0.0]),
            "rss_before_mb": before, "rss_end_mb": at_end, "rss_after_mb": after, "echoes": float(len(echoes))}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = int(args.mb * 1e6)
    results: dict[str, Any] = {"machine": machine(), "mb": args.mb}
    rows = []
    for label, limit in (("refused (4 MiB limit)", DEFAULT_MAX_RESULT_BYTES), ("accepted", 4 * size + 1_000_000)):
        runs = [await one_round(limit, size) for _ in range(args.rounds)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[label] = med
        rows.append([label, f"{med['call_s']:.2f}", f"{med['echo_p50_ms']:.1f}", f"{med['echo_max_ms']:.0f}",
                     f"{med['rss_before_mb']:.0f}", f"{med['rss_end_mb']:.0f}", f"{med['rss_after_mb']:.0f}"])
    print(table(["answer", "call s", "other P50 ms", "other max ms", "RSS before", "at end", "after"], rows))
    write_results("big_results", results)


if __name__ == "__main__":
    anyio.run(main)
