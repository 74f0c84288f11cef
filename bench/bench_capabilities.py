"""Capabilities learned from UltraTool's history, and how often the right one is the top match for a query.

Run: ``python bench/bench_capabilities.py [--data DATA/ultratool] (default: $PML_EVAL_DATA/ultratool) [--runs 3]``.
On a scratch embedded Postgres: the tools are indexed, each history task is replayed as a finished workflow
with literal-free tasks (its edges as dependencies, else its tool sequence as a chain) through the real
`CapabilityService.register`; then each query is matched (`CapabilityService.match`, what `search_tools` and
`execute_dag {intent}` use). A capability is *right* for a query when it calls exactly the query's gold tools
(and, for the stricter count, with exactly its gold dependency pairs). Prints the number of capabilities, the
share of queries whose top match is right, the share that have a right capability at all (the ceiling), the
share whose top match passes the default suggestion threshold 0.70 and how often that one is right, and the
match latency (median over runs of P50/P95; with the query embedding, and the store part alone). Writes
``bench/results/capabilities.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import anyio
import anyio.to_thread
from _catalog import eval_data

from gateway.db import open_database
from gateway.embed import load_embedder
from gateway.evaluation import load_queries, load_tools
from gateway.evaluation.runner import SERVER, _replayed, _tool_def
from gateway.services import Indexer
from gateway.services.capabilities import CapabilityService
from gateway.services.thresholds import Thresholds

DEFAULT_DATA = eval_data("ultratool")


def _plain(tool: str) -> str:
    return tool.split(":", 1)[1]


def _edges(document: dict[str, Any]) -> set[tuple[str, str]]:
    tool_of = {t["id"]: _plain(t["tool"]) for t in document["tasks"]}
    return {(tool_of[d], _plain(t["tool"])) for t in document["tasks"] for d in t.get("depends_on", ())}


async def run(data: Path, runs: int) -> dict[str, Any]:
    tools, history = load_tools(data / "tools.jsonl"), load_queries(data / "history.jsonl")
    queries = load_queries(data / "queries.jsonl")
    with tempfile.TemporaryDirectory(prefix="pml-bench-caps-") as scratch:
        async with open_database(url=None, pgdata=Path(scratch) / "pgdata") as db:
            embedder = await anyio.to_thread.run_sync(lambda: load_embedder(None, threads=1))
            limiter = anyio.CapacityLimiter(1)
            defs = {f"{SERVER}:{t.id}": _tool_def(t) for t in tools}
            await Indexer(index=db.tools, embedder=embedder, limiter=limiter).sync(SERVER, list(defs.values()))
            service = CapabilityService(store=db.capabilities, edges=db.learning, embedder=embedder, limiter=limiter)
            began = time.perf_counter()
            for i, task in enumerate(history, 1):
                await service.register(_replayed(task, i), defs)
            learn_s = time.perf_counter() - began
            _, total = await service.list(pattern=None, unnamed_only=False, limit=1, offset=0)
            all_rows, _ = await service.list(pattern=None, unnamed_only=False, limit=500, offset=0)
            rows = list(all_rows)
            while len(rows) < total:
                page, _ = await service.list(pattern=None, unnamed_only=False, limit=500, offset=len(rows))
                rows += page
            shapes = [(frozenset(map(_plain, r.tools)), _edges(r.document)) for r in rows]
            threshold = Thresholds().suggestion
            counts = {"top_tools": 0, "top_exact": 0, "has_tools": 0, "has_exact": 0, "above": 0, "above_right": 0}
            full_runs: list[dict[str, float]] = []
            store_runs: list[dict[str, float]] = []
            for repeat in range(runs):
                full, store = [], []
                for query in queries:
                    started = time.perf_counter()
                    vector = (await anyio.to_thread.run_sync(embedder.embed, [query.query]))[0]
                    middle = time.perf_counter()
                    matches = await service.match(vector, limit=5)
                    full.append(_common.timed_ms(started))
                    store.append(_common.timed_ms(middle))
                    if repeat == 0:
                        _count(counts, query, matches, shapes, threshold)
                full_runs.append(_common.spread(full))
                store_runs.append(_common.spread(store))
    n = len(queries)
    shares = {k: round(v / n, 4) for k, v in counts.items() if k != "above_right"}
    shares["above_right_of_above"] = round(counts["above_right"] / max(counts["above"], 1), 4)
    multi = sum(1 for h in history if len(set(h.sequence or h.relevant)) > 1)
    return {
        "history_tasks": len(history), "multi_task_history": multi, "capabilities": total, "queries": n,
        "learn_s": round(learn_s, 1), **shares, "match_ms_with_embedding": _common.median_of_runs(full_runs),
        "match_ms_store": _common.median_of_runs(store_runs),
    }


def _count(counts: dict[str, int], query: Any, matches: list[Any], shapes: list[Any], threshold: float) -> None:
    gold_tools, gold_edges = frozenset(query.relevant), set(query.gold_edges)
    top = matches[0] if matches else None
    top_right = top is not None and frozenset(map(_plain, top.row.tools)) == gold_tools
    counts["top_tools"] += top_right
    counts["top_exact"] += top_right and _edges(top.row.document) == gold_edges if top else 0
    counts["has_tools"] += any(tools == gold_tools for tools, _ in shapes)
    counts["has_exact"] += any(tools == gold_tools and edges == gold_edges for tools, edges in shapes)
    if top is not None and top.score >= threshold:
        counts["above"] += 1
        counts["above_right"] += top_right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    machine = _common.machine()
    result = anyio.run(run, args.data, args.runs)
    rows = [[k, v] for k, v in result.items() if not isinstance(v, dict)]
    for key in ("match_ms_with_embedding", "match_ms_store"):
        rows.append([f"{key} p50 / p95", f"{result[key]['p50']:.2f} / {result[key]['p95']:.2f}"])
    print(_common.table(["measure", "value"], rows))
    path = _common.write_results("capabilities", {"machine_start": machine, "runs": args.runs, "results": result})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
