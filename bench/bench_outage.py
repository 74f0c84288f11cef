"""What a Postgres outage costs a caller: the gateway's pool against a plain psycopg_pool, side by side.

Run: ``python bench/bench_outage.py [--rounds 2] [--down 30]``. Starts an embedded Postgres in a temporary
directory, migrates it, and opens two pools on it: the gateway's (`gateway.db.pool.Pool`, as `open_pool` makes
it) and a plain ``psycopg_pool.AsyncConnectionPool`` with the library's defaults (30 s wait for a connection,
5 min of reconnect backoff), which is what the gateway had before. Each round stops Postgres, times calls
through each pool while it is down (a one-row read through `IntentMemory.count`, the stores' own path), keeps it
down for `--down` seconds, starts it again and times how long each pool takes to answer again (polling every
0.1 s). Prints medians over the rounds; writes ``bench/results/outage.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg_pool
from _common import machine, table, timed_ms, write_results

from gateway.db import migrate, open_pool
from gateway.db.embedded import EmbeddedPostgres
from gateway.db.memory import IntentMemory
from gateway.db.pool import connection_kwargs
from gateway.errors import DatabaseError

CALLS_DOWN = {"gateway": 5, "plain": 2}
"""Calls timed while Postgres is down: the plain pool's second call already waits out its 30 s timeout."""
POLL_S = 0.1


async def timed_call(memory: IntentMemory) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        await memory.count(model_id="m")
        outcome = "ok"
    except DatabaseError as exc:
        outcome = str(exc)[:80]
    return timed_ms(started), outcome


async def back_after(memory: IntentMemory, started: float) -> float:
    """Seconds from `started` (Postgres answering again) until a call through `memory` passes."""
    while True:
        _, outcome = await timed_call(memory)
        if outcome == "ok":
            return time.perf_counter() - started
        await anyio.sleep(POLL_S)


async def round_(server: EmbeddedPostgres, stores: dict[str, IntentMemory], down_s: float) -> dict[str, Any]:
    for memory in stores.values():
        await timed_call(memory)  # each pool holds a working connection before the outage
    await anyio.to_thread.run_sync(server.stop)
    stopped = time.perf_counter()
    during: dict[str, list[float]] = {name: [] for name in stores}

    async def calls(name: str) -> None:
        for _ in range(CALLS_DOWN[name]):
            during[name].append((await timed_call(stores[name]))[0])

    async with anyio.create_task_group() as tg:
        for name in stores:
            tg.start_soon(calls, name)
    await anyio.sleep(max(0.0, down_s - (time.perf_counter() - stopped)))
    await anyio.to_thread.run_sync(server.start)
    answering = time.perf_counter()
    back: dict[str, float] = {}

    async def recover(name: str) -> None:
        back[name] = await back_after(stores[name], answering)

    async with anyio.create_task_group() as tg:
        for name in stores:
            tg.start_soon(recover, name)
    return {"down_s": time.perf_counter() - stopped, "during_ms": during, "back_s": back}


async def main(rounds: int, down_s: float) -> None:
    directory = Path(tempfile.mkdtemp(prefix="pml-bench-outage-"))
    server = EmbeddedPostgres(directory / "pgdata")
    url = await anyio.to_thread.run_sync(server.start)
    plain: psycopg_pool.AsyncConnectionPool[Any] | None = None
    try:
        await migrate(url)
        gateway = await open_pool(url, max_size=2)
        plain = psycopg_pool.AsyncConnectionPool(url, min_size=1, max_size=2, kwargs=connection_kwargs(), open=False)
        await plain.open(wait=True)
        stores = {"gateway": IntentMemory(gateway), "plain": IntentMemory(plain)}  # type: ignore[arg-type]
        results = [await round_(server, stores, down_s) for _ in range(rounds)]
        await gateway.close()
    finally:
        if plain is not None:
            await plain.close()
        await anyio.to_thread.run_sync(server.stop)
        shutil.rmtree(directory, ignore_errors=True)

    rows = []
    summary: dict[str, Any] = {}
    for name in ("plain", "gateway"):
        first = [r["during_ms"][name][0] for r in results]
        later = [ms for r in results for ms in r["during_ms"][name][1:]]
        back = [r["back_s"][name] for r in results]
        summary[name] = {"first_call_ms": statistics.median(first), "later_calls_ms": statistics.median(later),
                         "back_s": statistics.median(back)}
        rows.append([name, f"{statistics.median(first):.0f}", f"{statistics.median(later):.0f}",
                     f"{statistics.median(back):.2f}"])
    print(f"Postgres down {statistics.median(r['down_s'] for r in results):.0f} s, {rounds} rounds, medians")
    print(table(["pool", "first call down (ms)", "later calls down (ms)", "answering again after (s)"], rows))
    path = write_results("outage", {"machine": machine(), "rounds": rounds, "down_s": down_s, "summary": summary,
                                    "rounds_raw": results})
    print(f"numbers in {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--down", type=float, default=30.0, help="seconds Postgres stays down each round")
    args = parser.parse_args()
    anyio.run(main, args.rounds, args.down)
