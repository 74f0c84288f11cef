"""The learned graph, pure: edge weights, what a run teaches, and `ToolGraph` snapshots with PageRank,
Louvain communities, Adamic-Adar and cheapest short paths.

No I/O and no async here; scipy and networkx live only in this package. `build_graph` is CPU-bound: run it
off the event loop.
"""

from gateway.graph.learning import workflow_edges
from gateway.graph.paths import reaches
from gateway.graph.scoring import adaptive_alpha, candidate_multiplier, path_confidence
from gateway.graph.snapshot import ToolGraph, build_graph
from gateway.graph.weights import (
    EDGE_TYPE_WEIGHT,
    MIN_WEIGHT,
    PROMOTE_AFTER,
    SOURCE_FACTOR,
    Edge,
    edge_weight,
    promoted,
)

__all__ = [
    "EDGE_TYPE_WEIGHT",
    "MIN_WEIGHT",
    "PROMOTE_AFTER",
    "SOURCE_FACTOR",
    "Edge",
    "ToolGraph",
    "adaptive_alpha",
    "build_graph",
    "candidate_multiplier",
    "edge_weight",
    "path_confidence",
    "promoted",
    "reaches",
    "workflow_edges",
]
