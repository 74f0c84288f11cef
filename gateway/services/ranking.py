"""Ranking, pure: mix meaning, words and the learned graph into one ordered list of tools.

The reference ranked by ``min(semantic x reliability, 0.95)`` and, given context tools, by
``a x semantic + (1 - a) x graph`` with ``a = max(0.5, 1 - 2 x density)``. Measured on public catalogs, meaning
alone loses to plain BM25 where queries reuse the tools' wording, so a lexical signal is weighed in (not fused
by rank: reciprocal-rank fusion cost points elsewhere). Each signal counts by how close a tool comes to that
signal's best candidate, decaying exponentially (``exp(-gap / spread)``): a signal whose best hit stands clear
of the rest decides, one whose top hits are bunched together leaves the choice to the other. A third, small
signal rewards a tool whose name the query spells out word for word. The learned graph then lifts the
companions of the strongest hits, which is what queries needing several tools want, and a small PageRank
prior breaks ties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.graph import ToolGraph, adaptive_alpha


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A tool found by meaning or by words, with both raw scores (0 when a signal did not find it)."""

    tool_id: str
    semantic: float
    lexical: float = 0.0
    named: float = 0.0
    """The share of the tool's name words the query contains (`lexical.name_coverage`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RankWeights:
    """The mix; `graph=False` ranks by text alone (the evaluation's ``--no-graph``).

    A spread of ``None`` scores that signal linearly, relative to its best candidate (the baseline arms).
    """

    semantic: float = 0.5
    lexical: float = 0.5
    named: float = 0.45
    semantic_spread: float | None = 0.05
    """Cosine gap below the best candidate that costs a factor e."""
    lexical_spread: float | None = 0.3
    """Share of the best BM25 score below it that costs a factor e."""
    lexical_floor: float = 0.3
    """The words' weight is `lexical` x (floor + (1 - floor) x the best name coverage among the candidates): full
    when the query spells out a tool's name (catalogs whose requests reuse names), down to the floor when it
    names none (everyday requests, where a shared word like "commit" would outvote meaning)."""
    phrases: float = 0.5
    """Weight of adjacent query words found side by side in a tool's text, beside single words (`Bm25Index`)."""
    companion: float = 0.35
    companion_seeds: int = 3
    server_lift: float = 0.5
    """Every tool of a server with a tool among the `server_seeds` best gains this times that tool's score: a
    task that matches one server strongly keeps that server's tools above lookalikes from unrelated ones."""
    server_seeds: int = 3
    pagerank: float = 0.05
    memory: float = 1.5
    graph: bool = True


NAME_POWER = 4
"""Raising the name coverage to this power counts names spelled out in full, barely half of one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranked:
    tool_id: str
    score: float
    semantic: float


def rank(
    candidates: Sequence[Candidate],
    *,
    graph: ToolGraph | None,
    reliability: Callable[[str], float],
    weights: RankWeights,
    context: Sequence[str] = (),
    recalled: Mapping[str, float] | None = None,
) -> list[Ranked]:
    """Every candidate with its final score, best first.

    `recalled` holds, per tool, its share of the votes of the workflows that served the nearest past intents
    (see `suggest.recalled`); it lifts the tools that answered questions like this one before.
    """
    text = _text_scores(candidates, weights)
    scores = {tool: s * reliability(tool) for tool, s in text.items()}
    if weights.graph and recalled:
        scores = {tool: s + weights.memory * recalled.get(tool, 0.0) for tool, s in scores.items()}
    if weights.graph and graph is not None and graph.nodes:
        scores = _with_graph(scores, graph, weights, context)
    semantic = {c.tool_id: c.semantic for c in candidates}
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Ranked(tool_id=t, score=min(s, 1.0), semantic=semantic.get(t, 0.0)) for t, s in ordered]


def companions(graph: ToolGraph, seeds: Sequence[str], limit: int) -> list[str]:
    """Tools linked to the seeds in the learned graph, strongest link first (to widen the candidate pool)."""
    found: dict[str, float] = {}
    for seed in seeds:
        before, after = graph.neighbours(seed, limit)
        for tool, weight in [*before, *after]:
            if tool not in seeds:
                found[tool] = max(found.get(tool, 0.0), weight)
    return [t for t, _ in sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _text_scores(candidates: Sequence[Candidate], weights: RankWeights) -> dict[str, float]:
    """Meaning, words and names mixed, scaled so that the best candidate scores 1."""
    semantic = _closeness([max(c.semantic, 0.0) for c in candidates], weights.semantic_spread, relative=False)
    lexical = _closeness([c.lexical for c in candidates], weights.lexical_spread, relative=True)
    named = max((c.named for c in candidates), default=0.0)
    lexical_weight = weights.lexical * (weights.lexical_floor + (1 - weights.lexical_floor) * named)
    mixed = {
        c.tool_id: weights.semantic * s + lexical_weight * w + weights.named * c.named**NAME_POWER
        for c, s, w in zip(candidates, semantic, lexical, strict=True)
    }
    top = max(mixed.values(), default=0.0) or 1.0
    return {tool: score / top for tool, score in mixed.items()}


def _closeness(scores: Sequence[float], spread: float | None, *, relative: bool) -> list[float]:
    """Each score against the best one: ``exp(-gap / spread)``, or ``score / best`` without a spread.

    The gap is in the signal's own units (cosine), or, with `relative`, a share of the best score (BM25 scores
    have no fixed scale).
    """
    best = max(scores, default=0.0)
    if spread is None or best <= 0.0:
        return [s / best if best > 0.0 else 0.0 for s in scores]
    scale = best if relative else 1.0
    return [math.exp((s - best) / scale / spread) for s in scores]


def _with_graph(
    scores: Mapping[str, float], graph: ToolGraph, weights: RankWeights, context: Sequence[str]
) -> dict[str, float]:
    if context:
        return _with_context(scores, graph, context)
    seeds = sorted(scores, key=lambda t: -scores[t])[: weights.companion_seeds]
    top_pr = max(graph.pagerank.values(), default=0.0) or 1.0
    boosted = {}
    for tool, score in scores.items():
        link = max((scores[s] * _link(graph, s, tool) for s in seeds if s != tool), default=0.0)
        prior = graph.pagerank.get(tool, 0.0) / top_pr
        boosted[tool] = score + weights.companion * link + weights.pagerank * prior
    return boosted


def _with_context(scores: Mapping[str, float], graph: ToolGraph, context: Sequence[str]) -> dict[str, float]:
    """The reference's hybrid: ``a x text + (1 - a) x graph``, graph = 1 on a direct edge, else Adamic-Adar."""
    alpha = adaptive_alpha(graph.density)
    top = max(scores.values(), default=0.0) or 1.0
    mixed = {}
    for tool, score in scores.items():
        direct = any(graph.edge(c, tool) > 0 or graph.edge(tool, c) > 0 for c in context)
        aa = max((graph.adamic_adar(c, tool) for c in context), default=0.0)
        graph_score = 1.0 if direct else min(aa / 2.0, 1.0)
        mixed[tool] = alpha * score / top + (1 - alpha) * graph_score
    return mixed


def _link(graph: ToolGraph, a: str, b: str) -> float:
    return max(graph.edge(a, b), graph.edge(b, a))


def reliability_factor(calls: int, successes: int, *, min_samples: int = 5) -> float:
    """0.1 below a 50% success rate, 1.2 above 90%, else 1.0 (neutral until `min_samples` calls)."""
    if calls < min_samples:
        return 1.0
    rate = successes / calls
    return 0.1 if rate < 0.5 else 1.2 if rate > 0.9 else 1.0


def server_strength(ranked: Sequence[Ranked], seeds: int) -> dict[str, float]:
    """Per server of the `seeds` best hits, the score of its best one (tool ids are ``server:tool``)."""
    strength: dict[str, float] = {}
    for r in ranked[:seeds]:
        home = r.tool_id.split(":", 1)[0]
        strength[home] = max(strength.get(home, 0.0), r.score)
    return strength


def lift_servers(ranked: Sequence[Ranked], strength: Mapping[str, float], lift: float) -> list[Ranked]:
    """Every tool of a server in `strength` gains `lift` times that server's strength; best first, the best
    scaled back to 1.0. A task that matches one server strongly keeps that server's tools above lookalikes
    from unrelated servers (`mcpbench`: COMP@10 23.3 -> 34.0)."""
    lifted = sorted((replace(r, score=r.score + lift * strength.get(r.tool_id.split(":", 1)[0], 0.0))
                     for r in ranked), key=lambda r: -r.score)
    top = lifted[0].score if lifted and lifted[0].score > 0 else 1.0
    return [replace(r, score=r.score / top) for r in lifted]
