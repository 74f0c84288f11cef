"""How long `WorkflowStore.save_checkpoint` takes: insert plus prune to five, one transaction, pooled connection.

Run: ``python bench/bench_checkpoint.py [--saves 500] [--workflows 50]``. Starts an embedded Postgres in a
temporary directory, migrates it, then saves `saves` checkpoints round-robin over `workflows` workflows (so
pruning deletes a row on almost every save) for two states shaped like `WorkflowState.to_json`: ten tasks with
small outputs, and the same plus one task whose output is 100 KB of text. Prints P50/P95/P99/max in ms.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from gateway.db import WorkflowStore, migrate, open_pool  # noqa: E402
from gateway.db.embedded import EmbeddedPostgres  # noqa: E402

WARMUP = 20
WORDS = "read file line commit branch status ok error path json value row table time zone user note".split()


def task_state(task_id: str, layer: int, output: Any) -> dict[str, Any]:
    return {"id": task_id, "status": "ok", "layer": layer, "output": output, "error": None, "duration_ms": 12.5}


def workflow_state(workflow_id: str, layer: int, *, big_output_bytes: int, rng: random.Random) -> dict[str, Any]:
    """A state like `WorkflowState.to_json`: a ten-task DAG, their small outputs, optionally one large one."""
    tasks = [
        {"id": f"t{i}", "tool": f"fs:{rng.choice(WORDS)}", "arguments": {"path": f"/repo/src/{i}.py"},
         "depends_on": [f"t{i - 1}"] if i else []}
        for i in range(10)
    ]
    outputs = {"lines": [" ".join(rng.choices(WORDS, k=8)) for _ in range(5)], "count": rng.randint(0, 99)}
    results = [task_state(f"t{i}", i // 2, outputs) for i in range(10)]
    if big_output_bytes:
        text = " ".join(rng.choices(WORDS, k=big_output_bytes // 5))[:big_output_bytes]
        results.append(task_state("t_big", 5, {"content": text}))
    return {
        "workflow_id": workflow_id, "dag": {"intent": "refactor the repo", "tasks": tasks}, "status": "running",
        "next_layer": layer, "results": results, "approved_layers": [], "pending_approval": [], "wall_ms": 812.0,
        "owner": None,
    }


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100)."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def measure(store: WorkflowStore, *, saves: int, workflows: int, big: int, tag: str) -> list[float]:
    """Milliseconds per `save_checkpoint`, after `WARMUP` unmeasured saves."""
    rng = random.Random(7)
    states = [workflow_state(f"{tag}{w}", 0, big_output_bytes=big, rng=rng) for w in range(workflows)]
    samples: list[float] = []
    for i in range(WARMUP + saves):
        doc = states[i % workflows]
        doc["next_layer"] = i // workflows
        started = time.perf_counter()
        await store.save_checkpoint(doc["workflow_id"], doc["next_layer"], doc)
        if i >= WARMUP:
            samples.append((time.perf_counter() - started) * 1e3)
    return samples


async def main(saves: int, workflows: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="pml-bench-pg-"))  # outside /tmp/pytest-of-*: see tests/conftest.py
    server = EmbeddedPostgres(directory / "pgdata")
    try:
        url = await anyio.to_thread.run_sync(server.start)
        await migrate(url)
        pool = await open_pool(url, max_size=2)
        try:
            store = WorkflowStore(pool)
            rows = []
            for label, big in (("10 small tasks", 0), ("10 small + one 100 KB output", 100_000)):
                size = len(json.dumps(workflow_state("w", 0, big_output_bytes=big, rng=random.Random(7))))
                samples = await measure(store, saves=saves, workflows=workflows, big=big, tag=f"b{big}_")
                stats = [percentile(samples, q) for q in (50, 95, 99)] + [max(samples)]
                rows.append([label, f"{size / 1024:.1f}", str(len(samples)), *(f"{v:.2f}" for v in stats)])
        finally:
            await pool.close()
    finally:
        await anyio.to_thread.run_sync(server.stop)
        shutil.rmtree(directory, ignore_errors=True)
    print(render(["state", "KiB", "saves", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--workflows", type=int, default=50)
    args = parser.parse_args()
    anyio.run(main, args.saves, args.workflows)
