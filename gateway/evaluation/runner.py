"""The evaluation command's runs: a scratch database, the real indexing, learning, ranking and suggestion.

Every run starts an embedded Postgres in a temporary directory (never the user's data), indexes the tools as
`pml-gateway index` does, replays each history task as a successful workflow through the learning path (its
`edges` as dependencies, else its `tool_sequence` as a chain), then sends each query through `search_tools`'
ranking (and, for `dag`, through the suggestion) and scores the answers.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from gateway.config import normalise_server_name
from gateway.dag import Dag, Task
from gateway.dag.state import RunStatus, TaskResult, TaskStatus, WorkflowState
from gateway.db import Database, IntentMemory, open_database
from gateway.embed import load_embedder
from gateway.evaluation.data import EvalQuery, EvalTool
from gateway.evaluation.metrics import averaged, f1, latency, retrieval_row
from gateway.graph import reaches
from gateway.models import ToolDef
from gateway.ports import Embedder
from gateway.services import Indexer, SearchService
from gateway.services.learning import LearningService
from gateway.services.planner import Planner
from gateway.services.ranking import RankWeights

SERVER = ""
"""The server of a catalog whose data names none: nameless, so nothing of it is embedded with the tools."""
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalInputs:
    tools: Sequence[EvalTool]
    queries: Sequence[EvalQuery]
    history: Sequence[EvalQuery] = ()
    use_graph: bool = True
    signals: str = "hybrid"
    """``hybrid`` (meaning and words), or a baseline arm: ``dense`` (meaning only) or ``bm25`` (words only)."""
    model_dir: Path | None = None
    threads: int | None = None
    """onnxruntime threads per embedding call (None: the embedder's default)."""


async def evaluate_retrieval(inputs: EvalInputs, progress: Progress) -> dict[str, Any]:
    """hit@1, mrr@10, recall@5/10, ndcg@10, comp@5/10 and search latency over the queries."""
    async with _prepared(inputs, progress) as (search, _, _):
        rows, times = [], []
        for i, query in enumerate(inputs.queries, 1):
            began = time.perf_counter()
            result = await search.search(query.query, limit=10)
            times.append((time.perf_counter() - began) * 1000)
            rows.append(retrieval_row([_plain(h.tool_id) for h in result.hits], set(query.relevant)))
            progress("queries", i, len(inputs.queries))
    return {"queries": len(inputs.queries), "tools": len(inputs.tools), **averaged(rows), "latency_ms": latency(times)}


async def evaluate_dag(inputs: EvalInputs, progress: Progress) -> dict[str, Any]:
    """Node and edge F1 of the suggested DAGs, exact matches, and the share of queries that got one."""
    async with _prepared(inputs, progress) as (search, memory, learning):
        planner = Planner(search=search, memory=memory, use_graph=inputs.use_graph,
                          prior=lambda: learning.tool_prior)
        nodes, edges, exact, suggested = [], [], [], []
        for i, query in enumerate(inputs.queries, 1):
            s = await planner.suggest(query.query)
            tools = {_plain(t) for t in s.tools} if s.confident else set()
            pairs = {(_plain(a), _plain(b)) for a, b in s.edges} if s.confident else set()
            gold_nodes, gold_edges = set(query.relevant), query.gold_edges
            nodes.append(f1(set(tools), set(gold_nodes)) if tools else 0.0)
            edges.append(f1(set(pairs), set(gold_edges)) if tools else 0.0)
            exact.append(1.0 if tools and tools == gold_nodes and pairs == gold_edges else 0.0)
            suggested.append(1.0 if tools else 0.0)
            progress("queries", i, len(inputs.queries))
    n = len(inputs.queries)
    return {"queries": n, "node_f1": round(sum(nodes) / n, 4), "edge_f1": round(sum(edges) / n, 4),
            "exact": round(sum(exact) / n, 4), "suggested": round(sum(suggested) / n, 4)}


@asynccontextmanager
async def _prepared(inputs: EvalInputs,
                    progress: Progress) -> AsyncIterator[tuple[SearchService, IntentMemory, LearningService]]:
    with tempfile.TemporaryDirectory(prefix="pml-eval-") as scratch:
        async with open_database(url=None, pgdata=Path(scratch) / "pgdata") as db:
            embedder = await anyio.to_thread.run_sync(lambda: load_embedder(inputs.model_dir, threads=inputs.threads))
            limiter = anyio.CapacityLimiter(2)
            tools = [_tool_def(t) for t in inputs.tools]
            indexer = Indexer(index=db.tools, embedder=embedder, limiter=limiter)
            for server in dict.fromkeys(t.server for t in tools):
                await indexer.sync(server, [t for t in tools if t.server == server],
                                   progress=lambda done, total: progress("embedding", done, total))
            qualified = {t.id: d.tool_id for t, d in zip(inputs.tools, tools, strict=True)}
            learning = await _learned(db, embedder, inputs.history, limiter, progress, qualified)
            search = SearchService(index=db.tools, embedder=embedder, limiter=limiter,
                                   graph=lambda: learning.graph, reliability=learning.reliability,
                                   weights=_weights(inputs), memory=db.memory)
            await search.set_tools(tools)
            yield search, db.memory, learning


async def _learned(db: Database, embedder: Embedder, history: Sequence[EvalQuery], limiter: anyio.CapacityLimiter,
                   progress: Progress, qualified: dict[str, str]) -> LearningService:
    learning = LearningService(store=db.learning, limiter=limiter, memory=db.memory, embedder=embedder)
    for i, task in enumerate(history, 1):
        await learning.learn(_replayed(task, i, qualified))
        progress("history", i, len(history))
    progress("learning", 0, 1)  # the graph and the tool prior (seconds for thousands of intents)
    await learning.refresh()
    progress("learning", 1, 1)
    return learning


def _replayed(task: EvalQuery, number: int, qualified: dict[str, str]) -> WorkflowState:
    """A history task as a finished, successful workflow: edges as dependencies, else a chain."""
    sequence = list(dict.fromkeys(task.sequence or task.relevant))
    ids = {tool: f"t{i}" for i, tool in enumerate(sequence)}
    pairs = _acyclic(task.edges or tuple(itertools.pairwise(sequence)))
    for a, b in pairs:
        for tool in (a, b):
            ids.setdefault(tool, f"t{len(ids)}")
    deps = {tool: tuple(ids[a] for a, b in pairs if b == tool and a != b) for tool in ids}
    tasks = tuple(Task(id=ids[tool], tool=qualified.get(tool, f"{SERVER}:{tool}"), depends_on=deps[tool])
                  for tool in ids)
    dag = Dag(tasks=tasks, intent=task.query)
    layer = {t: n for n, layer_ids in enumerate(dag.layers) for t in layer_ids}
    results = {t.id: TaskResult(id=t.id, status=TaskStatus.OK, layer=layer[t.id]) for t in tasks}
    return WorkflowState(workflow_id=f"history-{number}", dag=dag, status=RunStatus.COMPLETED,
                         next_layer=len(dag.layers), results=results)


def _weights(inputs: EvalInputs) -> RankWeights:
    """The ranking mix of a run; the baseline arms rank by one raw signal (linear, no names) and learn nothing."""
    if inputs.signals == "dense":
        return RankWeights(semantic=1.0, lexical=0.0, named=0.0, phrases=0.0, semantic_spread=None, graph=False,
                           server_lift=0.0)
    if inputs.signals == "bm25":
        return RankWeights(semantic=0.0, lexical=1.0, named=0.0, phrases=0.0, lexical_spread=None, graph=False,
                           server_lift=0.0, lexical_floor=1.0)
    return RankWeights(graph=inputs.use_graph)


def _acyclic(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs in order, leaving out self-loops and any pair that would close a cycle (a few tasks have one)."""
    kept: list[tuple[str, str]] = []
    after: dict[str, set[str]] = {}
    for a, b in pairs:
        if a != b and (a, b) not in kept and not reaches(after, b, a):
            kept.append((a, b))
            after.setdefault(a, set()).add(b)
    return kept


def _tool_def(tool: EvalTool) -> ToolDef:
    """The tool as a server lists it, named by its id, on its own server when the data names one; a `name` that is
    not the id (a readable name beside an opaque id) is its title, embedded and matched with it."""
    server = normalise_server_name(tool.server, "eval") if tool.server else SERVER
    return ToolDef(server=server, name=tool.id, title=tool.name if tool.name != tool.id else None,
                   description=tool.description, input_schema=tool.input_schema or {"type": "object"})


def _plain(tool_id: str) -> str:
    """The data's own id of an indexed tool (``server:id``)."""
    return tool_id.split(":", 1)[1] if ":" in tool_id else tool_id
