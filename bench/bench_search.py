"""`search_tools` latency at about 500, 4,000 and 10,000 tools, in process and through the gateway over stdio.

Run: ``python bench/bench_search.py [--quick]``.
The catalog is the real sealtools one (4,076 tools over 20 fake servers), grown to 10,000 with ``_vN`` copies
whose descriptions carry a qualifier. It is loaded at the store level (`ToolStore.sync_server`, then
`save_embeddings` with vectors from the real embedder, cached in ``bench/results/search_embeddings_*.npy``:
the first run embeds 10,000 texts, a minute or two), into an embedded Postgres in a temporary directory.

What is timed is the real path: `SearchService.search` (query embedding included; every query distinct, so
its LRU never answers), the index query alone (`ToolStore.search` on precomputed vectors, with and without a
server filter) and the query embedding alone, in rounds; the tables print each statistic's median over rounds.
Then the gateway is spawned (``python -m gateway serve --database-url <bench db>``, its servers file listing
the 20 catalog servers, which list the stored tools) and `search_tools` is timed through the SDK's client.
Whole task statements (``--tasks``, MCP-Bench's ~1,000-character tasks by default) are searched at the largest
size beside the short queries, for the ratio of their P95 to a short query's (issue 19: at most 2).
Writes ``bench/results/search.json``. Target: P95 <= 10 ms in process at 10,000 tools.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import psycopg
from _catalog import MCPBENCH, SEALTOOLS, SERVERS, Tool, catalog, queries
from _common import (
    RESULTS,
    call,
    catalog_servers,
    gateway_command,
    logs_shown_on_failure,
    machine,
    median_of_runs,
    percentile,
    servers_file,
    spread,
    stdio_session,
    table,
    timed_ms,
    write_results,
)
from mcp import Client
from numpy.typing import NDArray
from psycopg import sql

from gateway.db import Database, ToolStore, open_database
from gateway.db.embedded import DATABASE, EmbeddedPostgres
from gateway.db.queries import query as named_query
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.models import ToolDef
from gateway.server.meta import search_payload
from gateway.services import SearchService

SIZES = (500, 4000, 10_000)
LIMIT = 5
SAVE_BATCH = 500
CACHE_THREADS = 2
WARMUP = 20
SETTLE_TIMEOUT_S = 120.0
TARGET_P95_MS = 10.0
EMBED_ONLY = "query embedding alone"
FULL = "search (embed + index)"
CACHED = "search, query embedding cached"
SHORT_WORDS = 16
SHORT, LONG = f"<= {SHORT_WORDS} words", f"> {SHORT_WORDS} words"
TASK = "task (MCP-Bench, ~1,000 chars)"
TASK_GOAL_RATIO = 2.0
"""Issue 19: a whole multi-step task pasted as the query costs at most this times a short query (P95)."""
_COPY_SUFFIX = re.compile(r"_v\d+$")


def cached_vectors(tools: list[Tool], model_id: str) -> NDArray[np.float32]:
    """The embedding of every tool's ``name | description``, from the cache or computed (and cached) now."""
    texts = [embed_text(t) for t in tools]
    key = hashlib.sha256("\n".join([model_id, *texts]).encode()).hexdigest()[:12]
    path = RESULTS / f"search_embeddings_{key}.npy"
    if path.exists():
        cached: NDArray[np.float32] = np.load(path)
        return cached
    print(f"embedding {len(texts)} tool texts once (cached in {path.name})...", flush=True)
    embedder = load_embedder(threads=CACHE_THREADS)
    started = time.perf_counter()
    vectors = np.concatenate([embedder.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    print(f"  {len(texts) / (time.perf_counter() - started):.0f} tools/s with {CACHE_THREADS} threads", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def tool_defs(tools: list[Tool]) -> list[ToolDef]:
    return [ToolDef(server=t["server"], name=t["name"], description=t["description"], input_schema=t["input_schema"])
            for t in tools]


def embed_text(tool: Tool) -> str:
    return ToolDef(server=tool["server"], name=tool["name"], description=tool["description"]).embed_text


async def load(store: ToolStore, tools: list[Tool], vectors: NDArray[np.float32], model_id: str) -> dict[str, float]:
    """Make the index hold exactly `tools`; seconds spent syncing schemas and saving embeddings."""
    by_server: dict[str, list[ToolDef]] = defaultdict(list)
    for t in tool_defs(tools):
        by_server[t.server].append(t)
    started = time.perf_counter()
    for server, defs in sorted(by_server.items()):
        await store.sync_server(server, defs)
    synced = time.perf_counter()
    row_of = {f"{t['server']}:{t['name']}": i for i, t in enumerate(tools)}
    pending = await store.pending_embeddings(model_id)
    rows = [(p.tool_id, vectors[row_of[p.tool_id]], p.text_hash) for p in pending]
    for start in range(0, len(rows), SAVE_BATCH):
        await store.save_embeddings(model_id, rows[start : start + SAVE_BATCH])
    return {"sync_s": synced - started, "save_s": time.perf_counter() - synced, "new_embeddings": float(len(rows))}


async def plan(store_pool: Any, vector: NDArray[np.float32], model_id: str) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the unfiltered search: whether the HNSW index answers, and its own timing."""
    params = {"query": vector, "model": model_id, "pool": LIMIT, "extra": []}
    async with store_pool.connection() as conn:
        cursor = await conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + named_query("search_pool"), params)
        lines = [row[0] for row in await cursor.fetchall()]
    return {
        "uses_hnsw": any("tool_embedding_hnsw_idx" in line for line in lines),
        "execution_ms": next((float(x.split(":")[1].split()[0]) for x in lines if x.startswith("Execution Time")), -1),
        "plan": lines,
    }


class Rounds:
    """Latency samples per path, one list per round, and the bench process's CPU ms per query in each round.

    The CPU time (all of this process's threads, so the ONNX run and the client side of the query, not the
    Postgres backend) moves much less than wall time when other work shares the two cores.
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[list[float]]] = defaultdict(list)
        self.texts: dict[str, list[list[str]]] = defaultdict(list)
        self.cpu_ms: dict[str, list[float]] = defaultdict(list)

    async def run(self, path: str, texts: list[str], one: Callable[[str], Awaitable[None]]) -> None:
        samples = []
        cpu = time.process_time()
        for text in texts:
            started = time.perf_counter()
            await one(text)
            samples.append(timed_ms(started))
        self.cpu_ms[path].append((time.process_time() - cpu) * 1e3 / len(texts))
        self.samples[path].append(samples)
        self.texts[path].append(texts)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            path: {**median_of_runs([spread(r) for r in runs]), "cpu_ms": statistics.median(self.cpu_ms[path])}
            for path, runs in self.samples.items()
        }

    def by_length(self, path: str) -> dict[str, dict[str, float]]:
        """`path`'s samples pooled over rounds, for short and for long queries apart."""
        pools: dict[str, list[float]] = {SHORT: [], LONG: []}
        for texts, samples in zip(self.texts[path], self.samples[path], strict=True):
            for text, ms in zip(texts, samples, strict=True):
                pools[SHORT if len(text.split()) <= SHORT_WORDS else LONG].append(ms)
        return {name: spread(pool) for name, pool in pools.items() if pool}

    def pooled(self, path: str) -> dict[str, float]:
        """`path`'s samples pooled over rounds."""
        return spread([ms for samples in self.samples[path] for ms in samples])


@dataclass
class Sized:
    """One index size: its database, its search service (own LRU), and what was measured on it."""

    size: int
    db: Database
    service: SearchService
    load: dict[str, float]
    rounds: Rounds = field(default_factory=Rounds)
    hits: list[list[str]] = field(default_factory=list)


@asynccontextmanager
async def bench_databases(tmp: Path, sizes: Sequence[int]) -> AsyncIterator[dict[int, Database]]:
    """One embedded Postgres in `tmp`, one migrated database per size (the rounds visit every size in turn)."""
    server = EmbeddedPostgres(tmp / "pgdata")
    base = await anyio.to_thread.run_sync(server.start)
    try:
        async with AsyncExitStack() as stack:
            databases = {}
            for size in sizes:
                url = await _create_database(base, f"bench_{size}")
                databases[size] = await stack.enter_async_context(open_database(url=url, pgdata=tmp / "unused"))
            yield databases
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.stop)


async def _create_database(base_url: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(base_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return base_url.replace(f"@/{DATABASE}?", f"@/{name}?")


async def loaded(
    db: Database, tools: list[Tool], vectors: NDArray[np.float32], embedder: OnnxEmbedder,
    limiter: anyio.CapacityLimiter, warm: list[str],
) -> Sized:
    """`db` holding `tools`, and a warmed search service over it (its word index built from `tools`, as the
    gateway builds it from the listed tools) with its own (still cold for our queries) LRU."""
    timings = await load(db.tools, tools, vectors, embedder.model_id)
    service = SearchService(index=db.tools, embedder=embedder, limiter=limiter, memory=db.memory)  # as the gateway
    await service.set_tools(tool_defs(tools))
    for text in warm:
        await service.search(text, limit=LIMIT)
    return Sized(size=len(tools), db=db, service=service, load=timings)


async def embed_round(
    rounds: Rounds, embedders: dict[str, OnnxEmbedder], batch: list[str], limiter: anyio.CapacityLimiter,
    vectors: dict[str, NDArray[np.float32]],
) -> None:
    """The query embedding alone, as `SearchService` runs it (worker thread, limiter), by each embedder."""
    for path, embedder in embedders.items():

        async def embed(text: str, embedder: OnnxEmbedder = embedder) -> None:
            vectors[text] = (await anyio.to_thread.run_sync(embedder.embed, [text], limiter=limiter))[0]

        await rounds.run(path, batch, embed)


async def search_round(sized: Sized, batch: list[str], vectors: dict[str, Any], model_id: str,
                       tasks: Sequence[str] = ()) -> None:
    """The full search (of the batch, then of `tasks`: whole task statements), then the index alone, then the index
    filtered to one server, on one size."""
    servers = {text: f"srv{i % SERVERS + 1:02d}" for i, text in enumerate(batch)}
    store = sized.db.tools

    async def full(text: str) -> None:
        result = await sized.service.search(text, limit=LIMIT)
        sized.hits.append([h.name for h in result.hits])
        if len(result.hits) != LIMIT:
            raise RuntimeError(f"search returned {len(result.hits)} hits, not {LIMIT}, for {text!r}")

    async def task(text: str) -> None:
        await sized.service.search(text, limit=LIMIT)

    async def index(text: str) -> None:
        await store.search(vectors[text], model_id=model_id, limit=LIMIT)

    async def filtered(text: str) -> None:
        await store.search(vectors[text], model_id=model_id, limit=LIMIT, server=servers[text])

    await sized.rounds.run(FULL, batch, full)
    await sized.rounds.run(CACHED, batch, task)  # the LRU holds each query's embedding now
    limit, sized.service.memory_limit = sized.service.memory_limit, 0
    try:
        await sized.rounds.run(f"{CACHED}, pgvector pools", batch, task)
    finally:
        sized.service.memory_limit = limit
    if tasks:
        await sized.rounds.run(TASK, tasks, task)
    await sized.rounds.run("index only", batch, index)
    await sized.rounds.run("index only, one server", batch, filtered)


STAGES = ("embed", "words", "memory of past intents (round trip)", "meaning pools", "ranking", "rendering")


async def stage_round(sized: Sized, batch: list[str]) -> dict[str, list[float]]:
    """Where one search's time goes: the service's own steps timed by wrapping them (on queries whose embedding is
    not cached yet), then the answer rendered as the meta-tool renders it. Ms per search, per stage."""
    service = sized.service
    spent: dict[str, float] = defaultdict(float)

    def timed(stage: str, fn: Callable[..., Any], *, awaited: bool) -> Callable[..., Any]:
        if awaited:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    spent[stage] += timed_ms(began)
            return wrapper

        def plain(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += timed_ms(began)
        return plain

    originals = {name: getattr(service, name) for name in ("_embed_query", "_words", "_recall", "_pool", "_rank")}
    service._embed_query = timed("embed", originals["_embed_query"], awaited=True)  # type: ignore[method-assign]
    service._words = timed("words", originals["_words"], awaited=False)  # type: ignore[method-assign]
    service._recall = timed(STAGES[2], originals["_recall"], awaited=True)  # type: ignore[method-assign]
    service._pool = timed("meaning pools", originals["_pool"], awaited=True)  # type: ignore[method-assign]
    service._rank = timed("ranking", originals["_rank"], awaited=False)  # type: ignore[method-assign]
    per_search: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    try:
        for text in batch:
            spent.clear()
            began = time.perf_counter()
            result = await service.search(f"{text} (stages)", limit=LIMIT)
            rendered = time.perf_counter()
            search_payload(result, {h.tool_id: h.tool_id for h in result.hits})
            spent["rendering"] += timed_ms(rendered)
            total = timed_ms(began)
            for stage in STAGES:
                per_search[stage].append(spent.get(stage, 0.0))
            per_search["total"].append(total)
    finally:
        for name, fn in originals.items():
            setattr(service, name, fn)
    return per_search


def hit_rate(hits: list[list[str]], texts: list[str], relevant: dict[str, list[str]], present: set[str]) -> float:
    """Share of answerable queries (a relevant tool is indexed) whose top hits hold a relevant tool or copy."""
    scored = [
        any(_COPY_SUFFIX.sub("", name) in relevant[text] for name in names)
        for names, text in zip(hits, texts, strict=True)
        if present & set(relevant[text])
    ]
    return sum(scored) / max(len(scored), 1)


@asynccontextmanager
async def settled_gateway(url: str, size: int, warm: list[str], tmp: Path, catalog_dir: Path
                          ) -> AsyncIterator[tuple[Client, float]]:
    """A gateway spawned over the bench database, once its 20 catalog servers run; ms it took to settle."""
    config = servers_file(tmp / "servers.json", catalog_servers(size, SERVERS, catalog_dir))
    command = gateway_command("serve", "--config", str(config), "--database-url", url)
    started = time.perf_counter()
    async with stdio_session(command, errlog=tmp / "stderr.log") as gateway:
        with anyio.fail_after(SETTLE_TIMEOUT_S):
            while True:  # settled: every catalog server listed its tools, none is reported unavailable
                result = await call(gateway, "search_tools", {"query": warm[0]})
                payload = result.structured_content or {}
                if not result.is_error and not payload.get("unavailable_servers") and payload.get("results"):
                    break
                await anyio.sleep(0.2)
        settled_ms = timed_ms(started)
        for text in warm:
            await call(gateway, "search_tools", {"query": text})
        yield gateway, settled_ms


async def stdio_round(rounds: Rounds, gateway: Client, batch: list[str]) -> None:
    async def search(text: str) -> None:
        result = await call(gateway, "search_tools", {"query": text})
        if result.is_error or len((result.structured_content or {}).get("results", [])) != LIMIT:
            raise RuntimeError(f"search_tools over stdio failed for {text!r}: {result.content}")

    await rounds.run(FULL, batch, search)


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    tools = catalog(max(args.sizes), directory=args.catalog)
    embedder = load_embedder()  # default_threads(), as the gateway runs it
    vectors = cached_vectors(tools, embedder.model_id)
    rows = queries(args.catalog)
    texts = [r["query"] for r in rows]
    tasks = [r["query"] for r in queries(args.tasks)] if args.tasks and (args.tasks / "queries.jsonl").exists() else []
    relevant = {r["query"]: r["relevant_tool_ids"] for r in rows}
    warm, measured = texts[-WARMUP:], texts[: args.runs * args.per_run]
    batches = [measured[i * args.per_run : (i + 1) * args.per_run] for i in range(args.runs)]
    limiter = anyio.CapacityLimiter(2)
    embedders = {EMBED_ONLY: embedder, f"{EMBED_ONLY}, 1 ONNX thread": load_embedder(threads=1)}
    for each in embedders.values():
        for text in warm:
            await anyio.to_thread.run_sync(each.embed, [text], limiter=limiter)
    query_vectors: dict[str, NDArray[np.float32]] = {}
    embed_rounds, stdio_rounds = Rounds(), Rounds()
    out: dict[str, Any] = {}
    async with bench_databases(tmp, args.sizes) as databases, AsyncExitStack() as stack:
        sized = {
            size: await loaded(db, tools[:size], vectors, embedder, limiter, warm) for size, db in databases.items()
        }
        print(f"  loaded {', '.join(map(str, args.sizes))} tools", flush=True)
        gateway = None
        if not args.no_stdio:
            url, size = databases[max(args.sizes)].url, max(args.sizes)
            gateway, out["stdio_settled_ms"] = await stack.enter_async_context(
                settled_gateway(url, size, warm, tmp, args.catalog)
            )
        for run, batch in enumerate(batches):  # every path on the same queries, sizes in ABBA order
            await embed_round(embed_rounds, embedders, batch, limiter, query_vectors)
            some = [tasks[(run * args.per_run + i) % len(tasks)] for i in range(args.per_run // 3)] if tasks else []
            if some:
                await embed_round(embed_rounds, {f"{EMBED_ONLY}, {TASK}": embedder}, some, limiter, {})
            for size in args.sizes if run % 2 == 0 else args.sizes[::-1]:
                await search_round(sized[size], batch, query_vectors, embedder.model_id,
                                   some if size == max(args.sizes) else ())
            if gateway is not None:
                await stdio_round(stdio_rounds, gateway, batch)
            print(f"  round {run + 1}/{len(batches)} done", flush=True)
        stages = await stage_round(sized[max(args.sizes)], measured[: args.per_run])
        out["stages_ms"] = {stage: spread(samples) for stage, samples in stages.items()}
        for size, entry in sized.items():
            out.setdefault("sizes", {})[size] = {
                "load": entry.load, "latency_ms": entry.rounds.summary(),
                "search_by_length_ms": entry.rounds.by_length(FULL)
                | ({TASK: entry.rounds.pooled(TASK)} if TASK in entry.rounds.samples else {}),
                "hit_at_5": hit_rate(entry.hits, measured, relevant, {t["name"] for t in tools[:size]}),
                "plan": await plan(entry.db.pool, query_vectors[measured[0]], embedder.model_id),
            }
    out["embed_only_ms"] = embed_rounds.summary()
    out["embed_only_by_length_ms"] = embed_rounds.by_length(EMBED_ONLY)
    words = [len(text.split()) for text in measured]
    out["query_words"] = {"median": statistics.median(words), "p95": percentile(words, 95)}
    if gateway is not None:
        out["stdio"] = {
            "size": max(args.sizes), "settled_ms": out.pop("stdio_settled_ms"),
            "latency_ms": stdio_rounds.summary()[FULL], "by_length_ms": stdio_rounds.by_length(FULL),
        }
    return out


def report(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    words = out["query_words"]
    print(f"\nin process: {args.runs} rounds x {args.per_run} distinct queries ({words['median']:.0f} words median, "
          f"P95 {words['p95']:.0f}), limit {LIMIT}; medians over rounds, ms; CPU ms = this process's CPU time per "
          "query (ONNX + client side, not Postgres)")
    rows = []
    for size, entry in out["sizes"].items():
        for path, s in entry["latency_ms"].items():
            rows.append([size, path, s["p50"], s["p95"], s["p99"], s["p95_max"], s["cpu_ms"]])
    for path, e in sorted(out["embed_only_ms"].items()):
        rows.append(["-", path, e["p50"], e["p95"], e["p99"], e["p95_max"], e["cpu_ms"]])
    print(table(["tools", "path", "P50", "P95", "P99", "worst P95", "CPU ms"], rows))
    top = out["sizes"][max(out["sizes"])]
    p95 = top["latency_ms"][FULL]["p95"]
    small = out["sizes"][min(out["sizes"])]["latency_ms"][FULL]
    full = top["latency_ms"][FULL]
    ratios = {
        "p50_largest_over_smallest": full["p50"] / small["p50"],
        "index_share_of_p50": top["latency_ms"]["index only"]["p50"] / full["p50"],
    }
    print(
        f"P95 at {max(out['sizes'])} tools: {p95:.2f} ms (target <= {TARGET_P95_MS:g} ms: "
        f"{'met' if p95 <= TARGET_P95_MS else 'NOT met'}); P50 {max(out['sizes'])}/{min(out['sizes'])} tools "
        f"x{ratios['p50_largest_over_smallest']:.2f}; index share of P50 {100 * ratios['index_share_of_p50']:.0f}%"
    )
    rows = [[size, "yes" if e["plan"]["uses_hnsw"] else "NO", e["plan"]["execution_ms"], f"{100 * e['hit_at_5']:.0f}%",
             e["load"]["sync_s"], e["load"]["save_s"]] for size, e in out["sizes"].items()]
    print(table(["tools", "HNSW used", "EXPLAIN ms", "hit@5", "load: sync s", "save s"], rows))
    lengths = [
        ("in process, embedding alone", out["embed_only_by_length_ms"]),
        (f"in process, search at {max(out['sizes'])} tools", top["search_by_length_ms"]),
    ]
    if "stdio" in out:
        lengths.append((f"over stdio, search at {out['stdio']['size']} tools", out["stdio"]["by_length_ms"]))
    rows = [[where, group, s["p50"], s["p95"], s["n"]] for where, split in lengths for group, s in split.items()]
    print("by query length (samples pooled over rounds), ms\n" + table(["path", "query", "P50", "P95", "n"], rows))
    stages = out["stages_ms"]
    rows = [[stage, s["p50"], s["p95"]] for stage, s in stages.items()]
    print(f"where a search's time goes at {max(out['sizes'])} tools (ms per search, {stages['total']['n']:.0f} "
          "searches; the pools and the memory are each a sum over the search)\n"
          + table(["stage", "P50", "P95"], rows))
    by_length = top["search_by_length_ms"]
    if TASK in by_length and SHORT in by_length:
        ratios["task_p95_over_short_p95"] = by_length[TASK]["p95"] / by_length[SHORT]["p95"]
        ratios["task_p50_over_short_p50"] = by_length[TASK]["p50"] / by_length[SHORT]["p50"]
        print(f"whole tasks against short queries at {max(out['sizes'])} tools: P95 "
              f"x{ratios['task_p95_over_short_p95']:.2f} (goal <= {TASK_GOAL_RATIO:g}), "
              f"P50 x{ratios['task_p50_over_short_p50']:.2f}")
    if "stdio" in out:
        s = out["stdio"]["latency_ms"]
        print(f"\nover stdio (gateway spawned on the {out['stdio']['size']}-tool database, 20 catalog servers; "
              f"settled in {out['stdio']['settled_ms']:.0f} ms): P50 {s['p50']:.2f} ms, P95 {s['p95']:.2f} ms, "
              f"P99 {s['p99']:.2f} ms (worst round P95 {s['p95_max']:.2f})")
    return {"ratios": ratios, "meets_target": p95 <= TARGET_P95_MS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 30 queries (about 30 s once cached)")
    parser.add_argument("--catalog", type=Path, default=SEALTOOLS, help="folder with tools.jsonl, queries.jsonl")
    parser.add_argument("--no-stdio", action="store_true", help="skip the spawned gateway")
    parser.add_argument("--tasks", type=Path, default=MCPBENCH,
                        help="folder with a queries.jsonl of whole tasks, searched beside the short queries")
    args = parser.parse_args()
    args.sizes = SIZES
    args.runs, args.per_run = (3, 30) if args.quick else (5, 120)
    start = machine()
    print(f"machine: {start['cpus']} CPUs ({start['cpu_model']}), load {start['loadavg']}, Python {start['python']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pml-bench-search-") as tmp:
        with logs_shown_on_failure(Path(tmp) / "stderr.log"):
            out = anyio.run(measure, args, Path(tmp))
    numbers = report(out, args)
    args.catalog, args.tasks = str(args.catalog), str(args.tasks)
    path = write_results("search", {"machine_start": start, "args": vars(args), **out, **numbers,
                                    "wall_s": time.perf_counter() - started})
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {path}")


if __name__ == "__main__":
    main()
