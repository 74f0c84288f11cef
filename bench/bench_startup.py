"""Indexing throughput and time to ready: how long until a new catalog is searchable, and a restart answers.

Run: ``python bench/bench_startup.py [--quick]``.
1. Indexing the sealtools catalog (4,076 tools over 20 fake servers) into an embedded Postgres in a temporary
   directory, in process, step by step as `Indexer.sync` does them: `sync_server` (schemas), the embedding
   (64-tool batches in a worker thread, on `default_threads()` as the gateway runs it; timed on the first run only,
   it takes about half a minute) and `save_embeddings`; then the real ``pml-gateway index`` end to end on a
   fresh data directory (initdb, 20 servers spawned, every tool embedded).
2. Time to ready with an EXISTING data directory: ``pml-gateway index`` once on a servers file holding faulty,
   then the gateway is spawned again and again (``serve --data-dir``) and timed from spawn to the handshake,
   the first `tools/list`, the first `search_tools` answered and the first one listing faulty's tools, and the
   first proxied call; also ``python -m gateway --version`` (the interpreter's floor) and a restart on the
   4,076-tool directory of step 1 with its 20 servers. Target: ready (first search answered) in under 2 s.
Writes ``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from _catalog import SEALTOOLS, SERVERS, catalog
from _common import (
    ROOT,
    call,
    catalog_servers,
    clean_env,
    faulty_server,
    gateway_command,
    logs_shown_on_failure,
    machine,
    postgres_on,
    servers_file,
    stdio_session,
    table,
    timed_ms,
    write_results,
)

from gateway.db import ToolStore, open_database
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.embed.onnx import default_threads
from gateway.models import ToolDef
from gateway.services.indexer import EMBED_BATCH, Indexer

READY_TIMEOUT_S = 120.0
STOP_WAIT_S = 20.0
TARGET_READY_S = 2.0
SEARCH_QUERY = "echo a text back unchanged"
SERVE_IMPORTS = "import gateway.cli, gateway.app"


def tool_defs(size: int, catalog_dir: Path) -> dict[str, list[ToolDef]]:
    by_server: dict[str, list[ToolDef]] = defaultdict(list)
    for t in catalog(size, directory=catalog_dir):
        by_server[t["server"]].append(ToolDef(server=t["server"], name=t["name"], description=t["description"],
                                              input_schema=t["input_schema"]))
    return dict(sorted(by_server.items()))


async def index_run(store: ToolStore, embedder: OnnxEmbedder, tools: dict[str, list[ToolDef]],
                    vectors: dict[str, Any]) -> dict[str, Any]:
    """One full index of `tools` from an empty index; embeds only when `vectors` is empty (then fills it)."""
    for server in tools:
        await store.sync_server(server, [])
    started = time.perf_counter()
    for server, defs in tools.items():
        await store.sync_server(server, defs)
    sync_s = time.perf_counter() - started
    started = time.perf_counter()
    pending = await store.pending_embeddings(embedder.model_id)
    pending_s = time.perf_counter() - started
    embed_s, save_s, batch_rates, embedding = 0.0, 0.0, [], not vectors
    limiter = anyio.CapacityLimiter(2)
    for start in range(0, len(pending), EMBED_BATCH):
        batch = pending[start : start + EMBED_BATCH]
        if embedding:
            began = time.perf_counter()
            rows = await anyio.to_thread.run_sync(embedder.embed, [p.text for p in batch], limiter=limiter)
            took = time.perf_counter() - began
            embed_s += took
            batch_rates.append(len(batch) / took)
            computed = {p.tool_id: rows[i] for i, p in enumerate(batch)}
        else:
            computed = {p.tool_id: vectors[p.tool_id] for p in batch}
        began = time.perf_counter()
        await store.save_embeddings(embedder.model_id, [(p.tool_id, computed[p.tool_id], p.text_hash) for p in batch])
        save_s += time.perf_counter() - began
        if embedding:
            vectors.update(computed)
    return {"tools": len(pending), "sync_s": sync_s, "pending_s": pending_s, "embed_s": embed_s, "save_s": save_s,
            "embed_batch_rates": batch_rates}


async def indexing(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    tools = tool_defs(args.size, args.catalog)
    embedder = await anyio.to_thread.run_sync(load_embedder)
    embedder.embed(["warm up"])
    vectors: dict[str, Any] = {}
    runs = []
    async with open_database(url=None, pgdata=tmp / "index" / "pgdata") as db:
        for _ in range(args.index_runs):
            runs.append(await index_run(db.tools, embedder, tools, vectors))
        pipelined = await indexer_run(db.tools, embedder, tools)
    first, count = runs[0], runs[0]["tools"]
    sync_s = statistics.median(r["sync_s"] for r in runs)
    save_s = statistics.median(r["save_s"] for r in runs)
    total_s = first["sync_s"] + first["pending_s"] + first["embed_s"] + first["save_s"]
    return {
        "tools": count, "runs": len(runs),
        "sync_tools_per_s": count / sync_s, "embed_tools_per_s": count / first["embed_s"],
        "embed_batch_tools_per_s_median": statistics.median(first["embed_batch_rates"]),
        "save_tools_per_s": count / save_s, "pending_ms": 1e3 * statistics.median(r["pending_s"] for r in runs),
        "first_run_total_s": total_s, "first_run_tools_per_s": count / total_s,
        "sync_s_runs": [r["sync_s"] for r in runs], "save_s_runs": [r["save_s"] for r in runs],
        "indexer_s": pipelined, "indexer_tools_per_s": count / pipelined,
    }


async def indexer_run(store: ToolStore, embedder: OnnxEmbedder, tools: dict[str, list[ToolDef]]) -> float:
    """Seconds of the gateway's own path from an empty index: `Indexer.sync` of every server in turn (schemas,
    then embedding by length-sorted batches, each saved while the next is embedded)."""
    for server in tools:
        await store.sync_server(server, [])
    indexer = Indexer(index=store, embedder=embedder, limiter=anyio.CapacityLimiter(2))
    started = time.perf_counter()
    for server, defs in tools.items():
        await indexer.sync(server, defs)
    return time.perf_counter() - started


def cli_index(config: Path, data_dir: Path, log: Path) -> float:
    """Seconds of one ``pml-gateway index`` (its progress bars and logs go to `log`)."""
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as err:
        subprocess.run(gateway_command("index", "--config", str(config), "--data-dir", str(data_dir)),
                       check=True, stdout=err, stderr=err, env=clean_env(), cwd=ROOT, timeout=600)
    return time.perf_counter() - started


async def one_start(config: Path, data_dir: Path, log: Path, *, expect: str | None) -> dict[str, float]:
    """Ms from spawn to each milestone of one gateway start; `expect` is a tool id the first search must list."""
    command = gateway_command("serve", "--config", str(config), "--data-dir", str(data_dir))
    marks: dict[str, float] = {}
    started = time.perf_counter()
    async with stdio_session(command, errlog=log) as gateway:
        marks["handshake"] = timed_ms(started)
        await gateway.list_tools()
        marks["tools_list"] = timed_ms(started)
        with anyio.fail_after(READY_TIMEOUT_S):
            while "servers_running" not in marks or "search_lists_tools" not in marks:
                result = await call(gateway, "search_tools", {"query": SEARCH_QUERY, "limit": 10})
                payload = result.structured_content or {}
                ids = [r["tool_id"] for r in payload.get("results", [])]
                marks.setdefault("first_search", timed_ms(started))
                if not result.is_error and ids and (expect is None or expect in ids):
                    marks.setdefault("search_lists_tools", timed_ms(started))
                if not result.is_error and not payload.get("unavailable_servers"):
                    marks.setdefault("servers_running", timed_ms(started))
                await anyio.sleep(0.02)
        if expect is not None:
            result = await call(gateway, "faulty__echo", {"text": "ready"})
            marks["first_proxied_call"] = timed_ms(started)
        stopping = time.perf_counter()
    marks["client_exit"] = timed_ms(stopping)
    with anyio.move_on_after(STOP_WAIT_S):
        while postgres_on(data_dir):  # noqa: ASYNC110 - a process's exit sends us no event: poll
            await anyio.sleep(0.05)
    marks["postgres_stopped_after_exit"] = timed_ms(stopping)
    marks["postgres_left_running"] = float(len(postgres_on(data_dir)))
    return marks


def floors_ms() -> dict[str, float]:
    """The interpreter's part of a start: ``--version`` (the CLI only) and importing what `serve` imports."""
    commands = {"version": gateway_command("--version"), "imports": [sys.executable, "-c", SERVE_IMPORTS]}
    samples = {}
    for name, command in commands.items():
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=clean_env(), cwd=ROOT)
        samples[name] = timed_ms(started)
    return samples


def heaviest_imports(top: int = 8) -> list[tuple[str, float]]:
    """The packages that cost most to import in `serve` (``-X importtime``: each module's own ms, by package)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", SERVE_IMPORTS], check=True, capture_output=True,
                          text=True, env=clean_env(), cwd=ROOT)
    costs: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].split(":")[-1].strip().isdigit():
            costs[parts[2].strip().split(".")[0]] += int(parts[0].split(":")[-1]) / 1e3
    return sorted(costs.items(), key=lambda kv: kv[1], reverse=True)[:top]


async def startups(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    log = tmp / "stderr.log"
    small = servers_file(tmp / "faulty.json", {"faulty": faulty_server()})
    await anyio.to_thread.run_sync(cli_index, small, tmp / "small", log)
    out: dict[str, Any] = {"small": [], "large": [], "floors": []}
    for _ in range(args.starts):  # each start next to its floors, so both see the same machine load
        out["floors"].append(await anyio.to_thread.run_sync(floors_ms))
        out["small"].append(await one_start(small, tmp / "small", log, expect="faulty:echo"))
    large = tmp / "catalog.json"
    if large.exists():
        for _ in range(args.large_starts):
            out["large"].append(await one_start(large, tmp / "cli", log, expect=None))
    return out


def median_marks(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} if runs else {}


def report(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    ix = out["indexing"]
    print(f"\nindexing {ix['tools']} tools over {SERVERS} servers, in process (sync and save: median of "
          f"{ix['runs']} runs; embedding: first run, {default_threads()} ONNX threads)")
    rows = [
        ["sync_server (schemas)", ix["sync_tools_per_s"]],
        ["embed (64-tool batches)", ix["embed_tools_per_s"]],
        ["save_embeddings", ix["save_tools_per_s"]],
        ["all steps, first run", ix["first_run_tools_per_s"]],
        ["Indexer.sync, server by server (the gateway's path)", ix["indexer_tools_per_s"]],
    ]
    print(table(["step", "tools/s"], rows))
    print(
        f"pending_embeddings: {ix['pending_ms']:.0f} ms; first run total {ix['first_run_total_s']:.1f} s; "
        f"median embedding batch {ix['embed_batch_tools_per_s_median']:.0f} tools/s"
    )
    if "cli_index_s" in out:
        print(
            f"pml-gateway index, fresh data dir (initdb, 20 servers, embed): {out['cli_index_s']:.1f} s = "
            f"{ix['tools'] / out['cli_index_s']:.0f} tools/s"
        )
    version, imports = (statistics.median(f[k] for f in out["startups"]["floors"]) for k in ("version", "imports"))
    small = median_marks(out["startups"]["small"])
    print(
        f"\nstart with an existing data dir (faulty, 9 tools): median of {len(out['startups']['small'])} spawns, "
        f"ms from spawn; `python -m gateway --version` alone {version:.0f} ms, importing serve's modules "
        f"{imports:.0f} ms"
    )
    print(
        "heaviest imports (ms of own import time by package, one run): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in out["heaviest_imports_ms"])
    )
    keys = ["handshake", "tools_list", "first_search", "search_lists_tools", "servers_running", "first_proxied_call",
            "client_exit", "postgres_stopped_after_exit"]
    rows = [[k, small[k], min(r[k] for r in out["startups"]["small"]), max(r[k] for r in out["startups"]["small"])]
            for k in keys]
    print(table(["milestone", "median", "min", "max"], rows))
    large = median_marks(out["startups"]["large"])
    if large:
        print(f"restart on the {ix['tools']}-tool data dir with its 20 servers ({len(out['startups']['large'])} "
              f"spawns): first search {large['first_search']:.0f} ms, all servers running "
              f"{large['servers_running']:.0f} ms, exit {large['client_exit']:.0f} ms")
    left = [r["postgres_left_running"] for r in out["startups"]["small"] + out["startups"]["large"]]
    if any(left):
        print(f"WARNING: an embedded Postgres outlived its gateway in {sum(1 for x in left if x)} of {len(left)} runs")
    ready_s = small["first_search"] / 1e3
    print(
        f"ready (first search answered): {ready_s:.2f} s (target < {TARGET_READY_S:g} s: "
        f"{'met' if ready_s < TARGET_READY_S else 'NOT met'})"
    )
    return {"startup_small_median_ms": small, "startup_large_median_ms": large, "ready_s": ready_s,
            "meets_target": ready_s < TARGET_READY_S}


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"indexing": await indexing(args, tmp)}
    print("  in-process indexing measured", flush=True)
    if not args.no_cli:
        config = servers_file(tmp / "catalog.json", catalog_servers(args.size, SERVERS, args.catalog))
        out["cli_index_s"] = await anyio.to_thread.run_sync(cli_index, config, tmp / "cli", tmp / "stderr.log")
        print("  pml-gateway index measured", flush=True)
    out["heaviest_imports_ms"] = await anyio.to_thread.run_sync(heaviest_imports)
    out["startups"] = await startups(args, tmp)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="400 tools, 3 starts (about 35 s)")
    parser.add_argument("--catalog", type=Path, default=SEALTOOLS, help="folder with tools.jsonl")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end `pml-gateway index` run")
    args = parser.parse_args()
    args.size, args.index_runs = (400, 2) if args.quick else (4076, 5)
    args.starts, args.large_starts = (3, 1) if args.quick else (7, 3)
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), load {start['loadavg']}, Python {start['python']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pml-bench-startup-") as tmp:
        with logs_shown_on_failure(Path(tmp) / "stderr.log"):
            out = anyio.run(measure, args, Path(tmp))
    numbers = report(out, args)
    args.catalog = str(args.catalog)
    for entry in ("sync_s_runs", "save_s_runs"):
        out["indexing"][entry] = [round(x, 4) for x in out["indexing"][entry]]
    path = write_results("startup", {"machine_start": start, "args": vars(args), **out, **numbers,
                                     "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
