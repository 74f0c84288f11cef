"""How long the tool prior takes to fit, from scratch and warm after the memory grew by 5%, and its size.

Run: ``python bench/bench_prior.py [--history PATH] [--runs 3] [--synthetic 5000 1000]``.
The real case embeds UltraTool's history intents (2,527, 248 tools) with the default model, as the gateway
remembers them; the synthetic case draws `rows` random unit vectors whose tools (1-4 of `tools`) follow their
nearest of `tools` random directions, the size at which the gateway caps the fit (`PRIOR_ROWS`, `MAX_TOOLS`).
Prints the median wall time over `runs` of a cold fit, a warm refit after 5% more rows, and one
`probabilities` call, the peak of memory allocated during a fit (tracemalloc, which sees numpy's arrays), and
storing the fit in a temporary embedded Postgres and reading it back (what a restart does instead of a cold fit);
writes ``bench/results/prior.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import _common
import anyio
import numpy as np
from _catalog import eval_data

from gateway.db import IntentMemory, open_database
from gateway.embed import load_embedder
from gateway.models import StoredPrior
from gateway.services.learning import REFIT_SHARE
from gateway.services.tool_prior import ToolPrior, fit

HISTORY = eval_data("ultratool") / "history.jsonl"


def ultratool(path: Path) -> tuple[np.ndarray, list[list[str]]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    vectors = load_embedder(threads=2).embed([r["query"] for r in rows])
    return np.asarray(vectors), [list(dict.fromkeys(r["tool_sequence"])) for r in rows]


def synthetic(rows: int, tools: int, *, seed: int = 7) -> tuple[np.ndarray, list[list[str]]]:
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((tools, 384))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    vectors = rng.standard_normal((rows, 384))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    nearest = np.argsort(-(vectors @ directions.T), axis=1)
    used = [[f"s:tool_{k}" for k in nearest[i, : int(rng.integers(1, 5))]] for i in range(rows)]
    return vectors, used


def measure(name: str, vectors: np.ndarray, tools: list[list[str]], runs: int) -> tuple[dict[str, Any], ToolPrior]:
    grown = max(1, int(len(tools) * REFIT_SHARE))
    base_vectors, base_tools = vectors[:-grown], tools[:-grown]
    cold, warm, ask = [], [], []
    prior: ToolPrior | None = None
    tracemalloc.start()
    fit(base_vectors, base_tools, max_iterations=5)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    for _ in range(runs):
        started = time.perf_counter()
        first = fit(base_vectors, base_tools)
        cold.append(_common.timed_ms(started))
        started = time.perf_counter()
        prior = fit(vectors, tools, previous=first)
        warm.append(_common.timed_ms(started))
        assert prior is not None
        started = time.perf_counter()
        for v in vectors[:200]:
            prior.probabilities(v)
        ask.append(_common.timed_ms(started) / 200)
    assert prior is not None
    return {"case": name, "rows": len(tools), "tools": len(prior.tools),
            "cold_fit_ms": statistics.median(cold), "warm_refit_ms": statistics.median(warm),
            "probabilities_ms": statistics.median(ask), "weights_mb": prior.weights.nbytes / 2**20,
            "fit_peak_mb": peak_mb}, prior


async def stored(measured: list[tuple[dict[str, Any], ToolPrior]], runs: int) -> None:
    """Median ms to store each case's fit and to read it back, in a fresh embedded Postgres (into its result)."""
    with tempfile.TemporaryDirectory(prefix="pml-bench-prior-") as scratch:
        async with open_database(url=None, pgdata=Path(scratch) / "pgdata") as db:
            memory: IntentMemory = db.memory
            for result, prior in measured:
                kept = StoredPrior(tools=prior.tools, weights=prior.weights, samples=prior.samples,
                                   intents=prior.samples)
                store, read = [], []
                for _ in range(runs):
                    started = time.perf_counter()
                    await memory.store_prior(kept, model_id=result["case"])
                    store.append(_common.timed_ms(started))
                    started = time.perf_counter()
                    back = await memory.stored_prior(model_id=result["case"])
                    read.append(_common.timed_ms(started))
                    assert back is not None and np.array_equal(back.weights, prior.weights)
                result["store_ms"], result["read_back_ms"] = statistics.median(store), statistics.median(read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=Path, default=HISTORY)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--synthetic", type=int, nargs=2, default=[5000, 1000], metavar=("ROWS", "TOOLS"))
    args = parser.parse_args()
    machine = _common.machine()
    measured = []
    if args.history.exists():
        measured.append(measure("ultratool history", *ultratool(args.history), args.runs))
    measured.append(measure("synthetic", *synthetic(*args.synthetic), args.runs))
    anyio.run(stored, measured, args.runs)
    results = [result for result, _ in measured]
    headers = ["case", "rows", "tools", "cold fit ms", "warm refit ms", "probabilities ms", "weights MB",
               "fit peak MB", "store ms", "read back ms"]
    keys = ["case", "rows", "tools", "cold_fit_ms", "warm_refit_ms", "probabilities_ms", "weights_mb", "fit_peak_mb",
            "store_ms", "read_back_ms"]
    print(_common.table(headers, [[r[k] for k in keys] for r in results]))
    path = _common.write_results("prior", {"machine_start": machine, "runs": args.runs, "results": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
