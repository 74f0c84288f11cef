"""Learning from finished workflows: edges promoted after three sightings, reliability, and recalled intents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio
import numpy as np
import pytest

from gateway.dag import parse_dag
from gateway.dag.state import RunStatus, TaskResult, TaskStatus, WorkflowState
from gateway.db import IntentMemory, LearningStore, Pool, open_pool
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.services import learning as learning_module
from gateway.services.learning import LearningService
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

INTENT = "fetch the weather for Paris and email it to me"


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder()


@pytest.fixture
async def memory(learning_store: LearningStore, database_url: str) -> AsyncIterator[IntentMemory]:
    """An `IntentMemory` over the database the `learning_store` fixture migrated."""
    pool = await open_pool(database_url, max_size=2)
    try:
        yield IntentMemory(pool)
    finally:
        await pool.close()


def finished(
    tasks: Sequence[tuple[str, str, Sequence[str]]], *, intent: str | None = None,
    failed: frozenset[str] = frozenset(), number: int = 1,
) -> WorkflowState:
    """A run of ``(task_id, tool, depends_on)`` tasks that got to the end; the `failed` tasks errored."""
    document = {"tasks": [{"id": t, "tool": tool, "depends_on": list(deps)} for t, tool, deps in tasks],
                "intent": intent}
    dag = parse_dag(document, tool_schemas={tool: None for _, tool, _ in tasks})
    layer = {task: n for n, ids in enumerate(dag.layers) for task in ids}
    results = {
        t.id: TaskResult(id=t.id, layer=layer[t.id], status=TaskStatus.ERROR if t.id in failed else TaskStatus.OK,
                         error="boom" if t.id in failed else None, duration_ms=5.0)
        for t in dag.tasks
    }
    return WorkflowState(workflow_id=f"run-{number}", dag=dag, next_layer=len(dag.layers), results=results,
                         status=RunStatus.FAILED if failed else RunStatus.COMPLETED)


A_THEN_B = [("a", "s:a", ()), ("b", "s:b", ("a",))]


def service(
    store: LearningStore, *, memory: IntentMemory | None = None, embedder: OnnxEmbedder | None = None,
    refresh_every_s: float = 60.0,
) -> LearningService:
    return LearningService(store=store, limiter=anyio.CapacityLimiter(2), memory=memory, embedder=embedder,
                           refresh_every_s=refresh_every_s)


async def test_a_dependency_seen_twice_stays_inferred_and_weighs_seven_tenths(learning_store: LearningStore) -> None:
    learning = service(learning_store)

    for n in range(2):
        await learning.learn(finished(A_THEN_B, number=n))
    graph = await learning.refresh()

    [edge] = await learning_store.edges()
    assert (edge.from_tool_id, edge.to_tool_id, edge.edge_type) == ("s:a", "s:b", "dependency")
    assert (edge.source, edge.observed_count) == ("inferred", 2)
    assert edge.confidence_score == pytest.approx(0.7)
    assert graph.edge("s:a", "s:b") == pytest.approx(0.7)


async def test_a_dependency_seen_three_times_is_observed_and_weighs_one_after_refresh(
    learning_store: LearningStore,
) -> None:
    learning = service(learning_store)

    for n in range(3):
        await learning.learn(finished(A_THEN_B, number=n))
    before = learning.graph
    graph = await learning.refresh()

    [edge] = await learning_store.edges()
    assert (edge.edge_type, edge.source, edge.observed_count) == ("dependency", "observed", 3)
    assert edge.confidence_score == pytest.approx(1.0)
    assert before.nodes == ()
    assert graph.nodes == ("s:a", "s:b")
    assert dict(graph.edge_types("s:a", "s:b")) == {"dependency": 1.0}
    assert graph.edge("s:b", "s:a") == 0.0
    assert learning.graph is graph


async def test_tasks_of_one_layer_followed_by_a_later_one_teach_sequence_edges(learning_store: LearningStore) -> None:
    learning = service(learning_store)

    await learning.learn(finished([("x", "s:x", ()), ("y", "s:y", ()), ("z", "s:z", ("x",))]))

    found = {(e.from_tool_id, e.to_tool_id, e.edge_type) for e in await learning_store.edges()}
    assert found == {("s:x", "s:z", "dependency"), ("s:y", "s:z", "sequence")}


async def test_a_tool_that_succeeded_once_in_five_calls_has_reliability_one_tenth(
    learning_store: LearningStore,
) -> None:
    learning = service(learning_store)

    for n in range(5):
        await learning.learn(finished([("f", "s:flaky", ())], failed=frozenset() if n == 0 else frozenset({"f"}),
                                      number=n))
        await learning.learn(finished([("g", "s:good", ())], number=10 + n))
    stale = learning.reliability("s:flaky")
    await learning.refresh()

    assert await learning_store.usage() == {"s:flaky": (5, 1), "s:good": (5, 5)}
    assert stale == 1.0
    assert learning.reliability("s:flaky") == 0.1
    assert learning.reliability("s:good") == 1.2
    assert learning.reliability("s:never-called") == 1.0


async def test_a_failed_dependency_teaches_no_edge_but_counts_its_call(learning_store: LearningStore) -> None:
    learning = service(learning_store)

    await learning.learn(finished(A_THEN_B, failed=frozenset({"a"})))

    assert await learning_store.edges() == []
    assert await learning_store.usage() == {"s:a": (1, 0), "s:b": (1, 1)}


async def test_a_learned_intent_is_recalled_by_a_paraphrase(
    learning_store: LearningStore, memory: IntentMemory, embedder: OnnxEmbedder
) -> None:
    learning = service(learning_store, memory=memory, embedder=embedder)
    await learning.learn(finished(A_THEN_B, intent=INTENT))

    query = embedder.embed(["get the Paris forecast and send it to me by mail"])[0]
    [found] = await memory.recall(query, model_id=embedder.model_id, limit=5)

    assert found.intent == INTENT
    assert found.tools == ("s:a", "s:b")
    assert found.edges == (("s:a", "s:b"),)
    assert found.similarity > 0.55


async def test_neither_a_failed_run_nor_a_run_without_intent_is_recalled(
    learning_store: LearningStore, memory: IntentMemory, embedder: OnnxEmbedder
) -> None:
    learning = service(learning_store, memory=memory, embedder=embedder)
    await learning.learn(finished(A_THEN_B, intent=INTENT, failed=frozenset({"b"})))
    await learning.learn(finished(A_THEN_B))

    query = embedder.embed([INTENT])[0]

    assert await memory.recall(query, model_id=embedder.model_id, limit=5) == []


async def test_the_tool_prior_learns_which_tools_each_kind_of_intent_needs_and_refits_only_on_growth(
    learning_store: LearningStore, memory: IntentMemory, embedder: OnnxEmbedder
) -> None:
    learning = service(learning_store, memory=memory, embedder=embedder)
    assert await learning.refit_prior() is None  # nothing remembered yet
    weather = [("a", "s:forecast", ()), ("b", "s:email", ("a",))]
    files = [("a", "s:read_file", ()), ("b", "s:compress", ("a",))]
    n = 0
    for intent, tasks in [(INTENT, weather), ("get tomorrow's forecast for Lyon and mail it", weather),
                          ("read the log file and zip it", files), ("open report.txt and compress it", files)]:
        n += 1
        await learning.learn(finished(tasks, intent=intent, number=n))
    await learning.learn(finished(files, intent="read and zip the file", failed=frozenset({"b"}), number=9))

    await learning.refresh()

    prior = learning.tool_prior
    assert prior is not None
    assert prior.samples == 4  # the failed run taught nothing
    assert set(prior.tools) == {"s:forecast", "s:email", "s:read_file", "s:compress"}
    asked = prior.probabilities(embedder.embed(["weather in Paris by email please"])[0])
    assert asked["s:forecast"] > asked.get("s:compress", 0.0)
    assert asked["s:email"] > asked.get("s:read_file", 0.0)

    assert await learning.refit_prior() is prior  # nothing new remembered: the same fit
    assert await learning.refit_prior(force=True) is not prior


async def test_a_restart_reads_the_stored_prior_back_and_refits_only_once_the_memory_has_grown(
    learning_store: LearningStore, memory: IntentMemory, embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    weather = [("a", "s:forecast", ()), ("b", "s:email", ("a",))]
    files = [("a", "s:read_file", ()), ("b", "s:compress", ("a",))]
    first = service(learning_store, memory=memory, embedder=embedder)
    for n, (intent, tasks) in enumerate([(INTENT, weather), ("read the log file and zip it", files)], 1):
        await first.learn(finished(tasks, intent=intent, number=n))
    fitted = await first.refit_prior()
    assert fitted is not None

    fits: list[object] = []
    real_fit = learning_module.tool_prior.fit

    def counted_fit(*args: object, **kwargs: object) -> object:
        fits.append(kwargs.get("previous"))
        return real_fit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(learning_module.tool_prior, "fit", counted_fit)
    restarted = service(learning_store, memory=memory, embedder=embedder)

    read = await restarted.refit_prior()

    assert fits == []  # read back, not refitted
    assert read is not None and read is restarted.tool_prior
    assert read.tools == fitted.tools and read.samples == 2
    assert np.array_equal(read.weights, fitted.weights)
    asked = embedder.embed(["weather in Paris by email please"])[0]
    assert read.probabilities(asked) == fitted.probabilities(asked)

    await restarted.learn(finished(files, intent="open report.txt and compress it", number=3))
    refitted = await restarted.refit_prior()

    assert refitted is not None and refitted.samples == 3
    assert len(fits) == 1 and fits[0] is read  # warm-started from what was read back
    stored = await memory.stored_prior(model_id=embedder.model_id)
    assert stored is not None and stored.intents == 3 and np.array_equal(stored.weights, refitted.weights)


async def until_learned(learning: LearningService, u: str, v: str) -> None:
    """Until the snapshot (a rebuild announces itself to nobody) holds the edge ``u -> v``."""
    await eventually(lambda: learning.graph.edge(u, v) > 0.0, what=f"the edge {u} -> {v} in the graph")


async def test_what_another_gateway_learned_is_in_the_graph_once_it_says_so(
    learning_store: LearningStore, pool: Pool
) -> None:
    here, elsewhere = service(learning_store), service(LearningStore(pool))
    async with anyio.create_task_group() as tg:
        await tg.start(here.run)
        await elsewhere.learn(finished(A_THEN_B))
        here.changed_elsewhere()
        await until_learned(here, "s:a", "s:b")
        tg.cancel_scope.cancel()


async def test_the_graph_is_rebuilt_periodically_even_when_no_notice_came(
    learning_store: LearningStore, pool: Pool
) -> None:
    here, elsewhere = service(learning_store, refresh_every_s=0.1), service(LearningStore(pool))
    async with anyio.create_task_group() as tg:
        await tg.start(here.run)
        await elsewhere.learn(finished(A_THEN_B))
        await until_learned(here, "s:a", "s:b")
        tg.cancel_scope.cancel()
