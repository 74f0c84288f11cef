"""The numbers ranking and suggestion take from the graph: mixing weight, candidate widening, path confidence.

The design's hybrid: ``final = a x semantic + (1 - a) x graph`` with ``a = adaptive_alpha(density)``.
"""

from __future__ import annotations

PATH_CONFIDENCE = (0.95, 0.80, 0.65, 0.50)
"""Confidence of a learned dependency by its path's hops: 1, 2, 3, 4 or more."""

MIN_ALPHA = 0.5
SPARSE_DENSITY = 0.01
DENSE_DENSITY = 0.1


def path_confidence(hops: int) -> float:
    """0.95 / 0.80 / 0.65 / 0.50 for 1 / 2 / 3 / 4+ hops; ValueError below one hop."""
    if hops < 1:
        raise ValueError(f"a path has at least one hop, got {hops}")
    return PATH_CONFIDENCE[min(hops, len(PATH_CONFIDENCE)) - 1]


def adaptive_alpha(density: float) -> float:
    """The semantic share ``max(0.5, 1 - 2 x density)``: the denser the graph, the more its score counts."""
    return max(MIN_ALPHA, 1.0 - 2.0 * density)


def candidate_multiplier(density: float) -> float:
    """How much wider the semantic candidate pool is drawn before graph re-ranking.

    Reading of "widened 1.5x / 2x / 3x as density passes 0.01 / 0.1": the pool is always widened, 1.5x up to
    and including a density of 0.01, 2x above it up to and including 0.1, 3x above 0.1 ("passes" = exceeds).
    """
    if density <= SPARSE_DENSITY:
        return 1.5
    if density <= DENSE_DENSITY:
        return 2.0
    return 3.0
