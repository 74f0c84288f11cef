"""DAG suggestion from an intent, pure: which tools, in which order, and how sure we are.

Built as the design says: candidates ranked by ``0.8 x hybrid + 0.2 x PageRank``; task i depends
on task j when the learned graph links j to i (directly, else by a path of at most 4 nodes, cost 1/weight);
the heavier direction of a two-way pair wins; the edges implied by others are dropped (a chain a -> b -> c
does not also get a -> c). Confidence = ``hybrid x w_h + mean PageRank(top 3) x w_pr + path x w_path`` with
weights moving from 0.55/0.30/0.15 at alpha 0.5 to 0.85/0.05/0.10 at alpha 1.

Whose past counts: `recalled` and `tool_votes` are given only the past intents the asking user may learn from
(their own, and those whose maker shared a capability of the same tools; stdio's one user: all), so another
user's private workflow is never proposed whole. The learned graph that `suggest` reads is shared learning, not
per user: its edges count every user's workflows, so a DAG built from the ranking and the graph (when no visible
past intent is near) may link, order or add tools as other users' workflows did (a tool often used after one
the intent found). The tool prior is fitted on every intent too; it only weighs the workflows the user may see.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.graph import ToolGraph, adaptive_alpha, path_confidence, reaches
from gateway.services.lexical import words
from gateway.services.ranking import Ranked

NO_SUGGESTION_BELOW = 0.60
WARN_BELOW = 0.65
MAX_TASKS = 6
MEMBER_RATIO = 0.72
"""A candidate joins the suggested DAG when its score is at least this share of the best one's."""
RECALL_MIN = 0.55
"""How near (cosine) a past intent must be for its workflow to be proposed again."""
RECALL_K = 10
"""How many of the nearest past intents vote."""
CONSENSUS_K = 20
"""How many of the nearest past intents weigh in on the workflow proposed again."""
CONSENSUS_TEMPERATURE = 0.1
"""How sharply belief in a past intent falls with its closeness (0.1 closer: e times the belief)."""
ORDER_WEIGHT = 1.0
"""Weight of the shared wording, half by half, in a past intent's closeness."""
NAME_WEIGHT = 0.2
"""Weight of the share of the workflow's tool names that the intent says, in a past intent's closeness."""
PRIOR_WEIGHT = 4.0
"""Weight of the agreement with the `tool_prior` (soft F1 of the workflow's tools against its probabilities)."""
SEMANTIC_FULL = 0.45
"""A cosine similarity from which a match counts as fully meaningful (MiniLM scores relevant tools 0.3-0.7)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Suggestion:
    tools: list[str]
    edges: list[tuple[str, str]]
    confidence: float
    warnings: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)

    @property
    def confident(self) -> bool:
        return self.confidence >= NO_SUGGESTION_BELOW and bool(self.tools)


def suggest(ranked: Sequence[Ranked], graph: ToolGraph, *, use_graph: bool = True) -> Suggestion:
    """A suggested DAG over the best-ranked tools (empty when nothing was ranked)."""
    if not ranked:
        return Suggestion(tools=[], edges=[], confidence=0.0, warnings=["no tool matches this intent"])
    chosen = _members(ranked, graph if use_graph else None)
    edges = _edges(chosen, graph) if use_graph else _chain(chosen)
    confidence = _confidence(ranked, chosen, edges, graph)
    warnings = [f"low confidence ({confidence:.2f})"] if confidence < WARN_BELOW else []
    return Suggestion(tools=_ordered(chosen, edges), edges=edges, confidence=round(confidence, 4),
                      warnings=warnings, alternatives=_alternatives(chosen, ranked, graph))


class Recollection(Protocol):
    """A past intent near the query, with the tools and edges of the workflow that served it."""

    @property
    def intent(self) -> str: ...
    @property
    def tools(self) -> tuple[str, ...]: ...
    @property
    def edges(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def similarity(self) -> float: ...


def tool_votes(memories: Sequence[Recollection]) -> dict[str, float]:
    """Each tool's share of the votes of the `RECALL_K` nearest past intents at or above `RECALL_MIN`."""
    nearest = [m for m in sorted(memories, key=lambda m: -m.similarity)[:RECALL_K] if m.similarity >= RECALL_MIN]
    total = sum(m.similarity**4 for m in nearest) or 1.0
    votes: dict[str, float] = {}
    for memory in nearest:
        for tool in set(memory.tools):
            votes[tool] = votes.get(tool, 0.0) + memory.similarity**4 / total
    return votes


def recalled(memories: Sequence[Recollection], ranked: Sequence[Ranked], *, intent: str = "",
             prior: Mapping[str, float] | None = None) -> Suggestion | None:
    """The workflow, among those that served the nearest past intents, that best agrees with all of them.

    Each of the `CONSENSUS_K` nearest is believed in proportion to ``exp(closeness / CONSENSUS_TEMPERATURE)``
    (`_closeness`: the cosine, plus how much `intent` shares its wording half by half, plus how much it names
    the workflow's tools); the workflow proposed is the one with the highest expected node F1 + edge F1 against
    the others under that belief, so it stays a whole, coherent workflow. With a `prior` (the `tool_prior`'s
    probabilities for this intent, learned from all past workflows) each workflow also gains `PRIOR_WEIGHT` x
    the soft F1 of its tools against those probabilities. None when the nearest past intent is below
    `RECALL_MIN`. Choosing a whole workflow beat voting tool by tool and edge by edge on public data (figures
    in docs/evaluation.md).
    """
    nearest = sorted((m for m in memories if m.tools), key=lambda m: -m.similarity)[:CONSENSUS_K]
    if not nearest or nearest[0].similarity < RECALL_MIN:
        return None
    belief = _belief(nearest, intent)
    workflows = [(frozenset(m.tools), frozenset(m.edges)) for m in nearest]
    tools, edges = max(dict.fromkeys(workflows),
                       key=lambda w: _expected_f1(w, workflows, belief) + PRIOR_WEIGHT * _soft_f1(w[0], prior or {}))
    order = {r.tool_id: i for i, r in enumerate(ranked)}
    chosen = sorted(tools, key=lambda t: (order.get(t, len(order)), t))
    pairs = sorted(edges)
    confidence = min(0.99, 0.5 + 0.5 * nearest[0].similarity)
    return Suggestion(tools=_ordered(chosen, pairs), edges=pairs, confidence=round(confidence, 4),
                      warnings=[f"low confidence ({confidence:.2f})"] if confidence < WARN_BELOW else [],
                      alternatives=[r.tool_id for r in ranked if r.tool_id not in tools][:5])


def _belief(nearest: Sequence[Recollection], intent: str) -> list[float]:
    """How much each past intent is trusted to speak for `intent` (a softmax, summing to 1)."""
    said = words(intent)
    closeness = [_closeness(m, said) for m in nearest]
    top = max(closeness)
    weights = [math.exp((c - top) / CONSENSUS_TEMPERATURE) for c in closeness]
    total = sum(weights)
    return [w / total for w in weights]


def _closeness(memory: Recollection, said: Sequence[str]) -> float:
    """Cosine, plus shared wording of the first and second halves (the order of the steps), plus tools named."""
    if not said:
        return memory.similarity
    halves = statistics.fmean(_jaccard(a, b) for a, b in zip(_halves(said), _halves(words(memory.intent)),
                                                                  strict=True))
    spoken = set(said)
    named = statistics.fmean(_share(words(_name(tool)), spoken) for tool in set(memory.tools))
    return memory.similarity + ORDER_WEIGHT * halves + NAME_WEIGHT * named


def _halves(text: Sequence[str]) -> tuple[set[str], set[str]]:
    middle = len(text) // 2
    return set(text[:middle]), set(text[middle:])


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _share(part: Sequence[str], whole: set[str]) -> float:
    return sum(1 for w in set(part) if w in whole) / len(set(part)) if part else 0.0


def _name(tool_id: str) -> str:
    return tool_id.split(":", 1)[-1]


Workflow = tuple[frozenset[str], frozenset[tuple[str, str]]]


def _expected_f1(candidate: Workflow, workflows: Sequence[Workflow], belief: Sequence[float]) -> float:
    return sum(b * (_f1(candidate[0], w[0]) + _f1(candidate[1], w[1])) for w, b in zip(workflows, belief, strict=True))


def _soft_f1(tools: frozenset[str], probability: Mapping[str, float]) -> float:
    """F1 of `tools` against tools drawn with `probability` each, in expectation (ratio of expected counts)."""
    expected = sum(probability.values())
    return 2 * sum(probability.get(t, 0.0) for t in tools) / (len(tools) + expected) if tools or expected else 0.0


def _f1(a: frozenset[Any], b: frozenset[Any]) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def _members(ranked: Sequence[Ranked], graph: ToolGraph | None) -> list[str]:
    top = ranked[0]
    chosen = [top.tool_id]
    for hit in ranked[1:MAX_TASKS * 2]:
        if len(chosen) >= MAX_TASKS or hit.score < MEMBER_RATIO * top.score:
            break
        if graph is None or any(_linked(graph, c, hit.tool_id) for c in chosen):
            chosen.append(hit.tool_id)
    return chosen


def _linked(graph: ToolGraph, a: str, b: str) -> bool:
    return graph.path(a, b) is not None or graph.path(b, a) is not None


def _edges(chosen: Sequence[str], graph: ToolGraph) -> list[tuple[str, str]]:
    weights: dict[tuple[str, str], float] = {}
    for a in chosen:
        for b in chosen:
            if a != b and (w := _strength(graph, a, b)) > 0:
                weights[(a, b)] = w
    kept = {(a, b) for (a, b), w in weights.items() if w >= weights.get((b, a), 0.0) and (a, b) != (b, a)}
    kept = {(a, b) for a, b in kept if not ((b, a) in kept and a > b)}
    return sorted(_reduce(kept))


def _strength(graph: ToolGraph, a: str, b: str) -> float:
    direct = graph.edge(a, b)
    if direct > 0:
        return direct
    path = graph.path(a, b)
    return path_confidence(len(path) - 1) * 0.5 if path else 0.0


def _reduce(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Drop a -> c when a longer route a -> ... -> c exists among the kept edges."""
    after: dict[str, set[str]] = {}
    for a, b in edges:
        after.setdefault(a, set()).add(b)
    return {(a, c) for a, c in edges if not any(reaches(after, b, c, avoid={a}) for b in after.get(a, ()) if b != c)}


def _chain(chosen: Sequence[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(chosen))


def _confidence(ranked: Sequence[Ranked], chosen: Sequence[str], edges: Sequence[tuple[str, str]],
                graph: ToolGraph) -> float:
    alpha = adaptive_alpha(graph.density)
    share = (alpha - 0.5) / 0.5
    w_h, w_pr, w_path = 0.55 + 0.30 * share, 0.30 - 0.25 * share, 0.15 - 0.05 * share
    hybrid = min(1.0, max(ranked[0].semantic, 0.0) / SEMANTIC_FULL)
    top_pr = max(graph.pagerank.values(), default=0.0) or 1.0
    known = [t for t in chosen[:3] if t in graph.index]
    if not known:  # tools the graph never saw: no prior either way, so its weight goes to the match itself
        w_h, w_pr = w_h + w_pr, 0.0
    pagerank = sum(graph.pagerank.get(t, 0.0) / top_pr for t in known) / max(len(known), 1)
    hops = [len(p) - 1 for a, b in edges if (p := graph.path(a, b))]
    path = path_confidence(max(hops)) if hops else (0.95 if len(chosen) == 1 else 0.5)
    return w_h * hybrid + w_pr * pagerank + w_path * path


def _ordered(chosen: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Topological order, ties in ranking order."""
    indegree = {t: sum(1 for _, b in edges if b == t) for t in chosen}
    order, ready = [], [t for t in chosen if indegree[t] == 0]
    while ready:
        tool = ready.pop(0)
        order.append(tool)
        for a, b in edges:
            if a == tool:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    return order + [t for t in chosen if t not in order]


def _alternatives(chosen: Sequence[str], ranked: Sequence[Ranked], graph: ToolGraph) -> list[str]:
    """Other tools of the top tool's Louvain community, else the next ranked tools."""
    community = graph.community_of(chosen[0]) if chosen[0] in graph.index else None
    peers = [t for t in graph.members(community) if t not in chosen] if community is not None else []
    rest = [r.tool_id for r in ranked if r.tool_id not in chosen]
    return (peers or rest)[:5]
