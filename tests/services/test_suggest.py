"""Suggesting a DAG: a learned workflow is recalled for its intent, else the graph orders the best-ranked tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import pytest

from gateway.dag import parse_dag
from gateway.dag.state import RunStatus, TaskResult, TaskStatus, WorkflowState
from gateway.db import IntentMemory, LearningStore, ToolStore, open_pool
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.graph import Edge, build_graph, path_confidence
from gateway.models import ToolDef
from gateway.services import Indexer, SearchService
from gateway.services.learning import LearningService
from gateway.services.planner import Planner
from gateway.services.ranking import Ranked
from gateway.services.suggest import recalled, suggest

pytestmark = pytest.mark.anyio

INTENT = "fetch the report, convert it to pdf, then email it"
FETCH, CONVERT, MAIL = "office:fetch_report", "office:convert_to_pdf", "office:send_email"
TOOLS = [
    ToolDef(server="office", name="fetch_report", description="Fetch a report document by its name"),
    ToolDef(server="office", name="convert_to_pdf", description="Convert a document to PDF format"),
    ToolDef(server="office", name="send_email", description="Send an email with an attachment to a recipient"),
    ToolDef(server="office", name="get_weather", description="Get the current weather forecast for a city"),
    ToolDef(server="office", name="resize_image", description="Resize an image to the given width and height"),
    ToolDef(server="office", name="translate_text", description="Translate text into another language"),
]


@dataclass(frozen=True)
class Memory:
    tools: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    similarity: float
    intent: str = ""


@dataclass
class Stack:
    """The real services over one test database, as the gateway wires them."""

    learning: LearningService
    memory: IntentMemory
    search: SearchService


def dependency(source: str, target: str) -> Edge:
    return Edge(source, target, "dependency", "observed")


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder()


@pytest.fixture
async def stack(
    tool_store: ToolStore, learning_store: LearningStore, database_url: str, embedder: OnnxEmbedder
) -> AsyncIterator[Stack]:
    """The six tools indexed and embedded; nothing learned yet."""
    limiter = anyio.CapacityLimiter(2)
    await Indexer(index=tool_store, embedder=embedder, limiter=limiter).sync("office", TOOLS)
    pool = await open_pool(database_url, max_size=2)
    try:
        memory = IntentMemory(pool)
        learning = LearningService(store=learning_store, limiter=limiter, memory=memory, embedder=embedder)
        search = SearchService(index=tool_store, embedder=embedder, limiter=limiter,
                               graph=lambda: learning.graph, reliability=learning.reliability)
        await search.set_tools(TOOLS)
        yield Stack(learning=learning, memory=memory, search=search)
    finally:
        await pool.close()


def report_workflow() -> WorkflowState:
    """fetch -> convert -> mail, all OK, serving `INTENT`."""
    document = {"intent": INTENT, "tasks": [
        {"id": "fetch", "tool": FETCH},
        {"id": "convert", "tool": CONVERT, "depends_on": ["fetch"]},
        {"id": "mail", "tool": MAIL, "depends_on": ["convert"]},
    ]}
    dag = parse_dag(document, tool_schemas={FETCH: None, CONVERT: None, MAIL: None})
    results = {t.id: TaskResult(id=t.id, status=TaskStatus.OK, layer=n) for n, t in enumerate(dag.tasks)}
    return WorkflowState(workflow_id="report", dag=dag, status=RunStatus.COMPLETED, next_layer=3, results=results)


@pytest.mark.parametrize("intent", [INTENT, "get the report, turn it into a PDF and mail it"])
async def test_a_learned_workflow_is_suggested_back_for_its_intent_and_a_paraphrase(stack: Stack, intent: str) -> None:
    await stack.learning.learn(report_workflow())
    await stack.learning.refresh()

    ranked = (await stack.search.search(intent, limit=10)).ranked
    vector = await stack.search.embed_query(intent)
    found = recalled(await stack.memory.recall(vector, model_id=stack.search.model_id, limit=20), ranked, intent=intent)

    assert found is not None
    assert found.tools == [FETCH, CONVERT, MAIL]
    assert set(found.edges) == {(FETCH, CONVERT), (CONVERT, MAIL)}
    assert len(found.edges) == 2
    assert found.confident
    assert found.warnings == []


async def test_with_nothing_learned_an_unrelated_intent_gets_no_confident_suggestion(stack: Stack) -> None:
    intent = "bake a chocolate cake for the birthday party"
    ranked = (await stack.search.search(intent, limit=10)).ranked
    vector = await stack.search.embed_query(intent)

    memories = await stack.memory.recall(vector, model_id=stack.search.model_id, limit=10)
    fallback = suggest(ranked, stack.search.current_graph())

    assert memories == []
    assert recalled(memories, ranked) is None
    assert not fallback.confident, fallback
    assert fallback.confidence < 0.60
    assert fallback.warnings == [f"low confidence ({fallback.confidence:.2f})"]


def test_a_chain_in_the_graph_is_suggested_in_dependency_order_without_the_transitive_edge() -> None:
    graph = build_graph([], [dependency("s:a", "s:b"), dependency("s:b", "s:c")])
    ranked = [Ranked(tool_id="s:c", score=0.9, semantic=0.6), Ranked(tool_id="s:b", score=0.85, semantic=0.5),
              Ranked(tool_id="s:a", score=0.8, semantic=0.5), Ranked(tool_id="s:x", score=0.3, semantic=0.2)]

    suggestion = suggest(ranked, graph)

    # 3 nodes, 2 edges: density 1/3, alpha 0.5, so weights 0.55 / 0.30 / 0.15; hybrid min(1, 0.6 / 0.45) = 1.
    top_pr = max(graph.pagerank.values())
    mean_pr = sum(graph.pagerank[t] / top_pr for t in ("s:a", "s:b", "s:c")) / 3
    assert suggestion.tools == ["s:a", "s:b", "s:c"]
    assert suggestion.edges == [("s:a", "s:b"), ("s:b", "s:c")]
    assert suggestion.confidence == pytest.approx(0.55 + 0.30 * mean_pr + 0.15 * path_confidence(1), abs=1e-4)
    assert suggestion.alternatives == ["s:x"]


def test_a_well_ranked_tool_the_graph_does_not_link_stays_out_of_the_suggestion() -> None:
    graph = build_graph([], [dependency("s:a", "s:b")])
    ranked = [Ranked(tool_id="s:a", score=0.9, semantic=0.6), Ranked(tool_id="s:loner", score=0.88, semantic=0.6),
              Ranked(tool_id="s:b", score=0.8, semantic=0.5)]

    suggestion = suggest(ranked, graph)

    assert suggestion.tools == ["s:a", "s:b"]
    assert suggestion.edges == [("s:a", "s:b")]


def test_without_the_graph_the_close_hits_are_chained_in_ranking_order() -> None:
    ranked = [Ranked(tool_id="s:c", score=0.9, semantic=0.6), Ranked(tool_id="s:a", score=0.8, semantic=0.5),
              Ranked(tool_id="s:x", score=0.3, semantic=0.2)]

    suggestion = suggest(ranked, build_graph([], []), use_graph=False)

    assert suggestion.tools == ["s:c", "s:a"]
    assert suggestion.edges == [("s:c", "s:a")]


def test_a_weak_match_with_no_graph_is_not_confident() -> None:
    ranked = [Ranked(tool_id="s:a", score=0.2, semantic=0.1), Ranked(tool_id="s:b", score=0.19, semantic=0.1)]

    suggestion = suggest(ranked, build_graph([], []))

    # Empty graph: alpha 1, weights 0.85 / 0.05 / 0.10, the PageRank share moved to the match (no tool is in
    # the graph); one tool, so path confidence 0.95.
    assert suggestion.tools == ["s:a"]
    assert suggestion.confidence == round(0.90 * 0.1 / 0.45 + 0.10 * 0.95, 4)
    assert not suggestion.confident
    assert suggestion.warnings == ["low confidence (0.30)"]


def test_nothing_ranked_gives_an_empty_suggestion() -> None:
    suggestion = suggest([], build_graph([], []))

    assert (suggestion.tools, suggestion.edges, suggestion.confidence) == ([], [], 0.0)
    assert not suggestion.confident


def test_past_intents_below_the_recall_threshold_or_without_tools_are_not_proposed() -> None:
    memories = [Memory(tools=("s:a", "s:b"), edges=(("s:a", "s:b"),), similarity=0.54)]

    assert recalled(memories, []) is None
    assert recalled([Memory(tools=(), edges=(), similarity=0.9), *memories], []) is None
    assert recalled([], []) is None


def test_the_nearest_past_intents_outvote_a_distant_one() -> None:
    memories = [
        Memory(tools=("s:x", "s:y"), edges=(("s:x", "s:y"),), similarity=0.6),
        Memory(tools=("s:a", "s:b"), edges=(("s:a", "s:b"),), similarity=0.9),
        Memory(tools=("s:a", "s:b"), edges=(("s:a", "s:b"),), similarity=0.85),
    ]
    ranked = [Ranked(tool_id="s:b", score=0.9, semantic=0.5), Ranked(tool_id="s:z", score=0.5, semantic=0.3)]

    found = recalled(memories, ranked)

    assert found is not None
    assert found.tools == ["s:a", "s:b"]
    assert found.edges == [("s:a", "s:b")]
    assert found.confidence == 0.95
    assert found.alternatives == ["s:z"]


def test_the_workflow_most_past_intents_agree_with_is_proposed_whole_without_a_two_way_edge() -> None:
    memories = [
        Memory(tools=("s:a", "s:b"), edges=(("s:a", "s:b"),), similarity=0.9),
        Memory(tools=("s:a", "s:b"), edges=(("s:b", "s:a"),), similarity=0.9),
        Memory(tools=("s:a", "s:b", "s:c"), edges=(("s:a", "s:b"), ("s:b", "s:c")), similarity=0.88),
    ]

    found = recalled(memories, [])

    # Beliefs e^0 : e^0 : e^-0.2 (temperature 0.1); a -> b agrees with two of them, b -> a with one.
    assert found is not None
    assert (found.tools, found.edges) == (["s:a", "s:b"], [("s:a", "s:b")])


def test_the_order_in_which_the_intent_says_its_steps_picks_the_direction() -> None:
    memories = [
        Memory(tools=("s:pay", "s:ship"), edges=(("s:pay", "s:ship"),), similarity=0.8,
               intent="pay the invoice today then ship the parcel"),
        Memory(tools=("s:pay", "s:ship"), edges=(("s:ship", "s:pay"),), similarity=0.8,
               intent="ship the parcel today then pay the invoice"),
    ]

    shipped_first = recalled(memories, [], intent="ship my parcel first, then pay the invoice")
    paid_first = recalled(memories, [], intent="pay my invoice first, then ship the parcel")

    assert shipped_first is not None and paid_first is not None
    assert (shipped_first.tools, shipped_first.edges) == (["s:ship", "s:pay"], [("s:ship", "s:pay")])
    assert (paid_first.tools, paid_first.edges) == (["s:pay", "s:ship"], [("s:pay", "s:ship")])


def test_a_workflow_whose_tools_the_intent_names_outweighs_an_equally_near_one() -> None:
    said = "notify the team about the outage"
    memories = [
        Memory(tools=("chat:send_sms",), edges=(), similarity=0.8, intent=said),
        Memory(tools=("chat:send_email",), edges=(), similarity=0.8, intent=said),
    ]

    by_sms = recalled(memories, [], intent="send an sms to the team about the outage")
    by_mail = recalled(memories, [], intent="send an email to the team about the outage")

    assert by_sms is not None and by_mail is not None
    assert by_sms.tools == ["chat:send_sms"]
    assert by_mail.tools == ["chat:send_email"]


def test_the_tool_prior_decides_between_equally_near_workflows_and_alone_does_not_overrule_a_consensus() -> None:
    memories = [
        Memory(tools=("s:a", "s:b"), edges=(("s:a", "s:b"),), similarity=0.9),
        Memory(tools=("s:a", "s:c"), edges=(("s:a", "s:c"),), similarity=0.9),
    ]

    with_b = recalled(memories, [], prior={"s:a": 0.95, "s:b": 0.8, "s:c": 0.1})
    with_c = recalled(memories, [], prior={"s:a": 0.95, "s:b": 0.1, "s:c": 0.8})

    assert with_b is not None and with_c is not None
    assert with_b.tools == ["s:a", "s:b"] and with_b.edges == [("s:a", "s:b")]
    assert with_c.tools == ["s:a", "s:c"] and with_c.edges == [("s:a", "s:c")]

    # Only workflows that served a near intent are proposed: a prior for tools no memory used adds none.
    agreed = [Memory(tools=("s:a", "s:b"), edges=(("s:a", "s:b"),), similarity=0.9)] * 3
    found = recalled(agreed, [], prior={"s:x": 0.99, "s:y": 0.99})
    assert found is not None and found.tools == ["s:a", "s:b"]


async def test_the_planner_recalls_the_learned_workflow_for_a_paraphrase(stack: Stack) -> None:
    await stack.learning.learn(report_workflow())
    await stack.learning.refresh()
    planner = Planner(search=stack.search, memory=stack.memory)

    suggestion = await planner.suggest("get the report, turn it into a PDF and mail it")

    assert suggestion.tools == [FETCH, CONVERT, MAIL]
    assert suggestion.edges == sorted([(FETCH, CONVERT), (CONVERT, MAIL)])
    assert planner.above_threshold(suggestion)
