"""Which tools an intent needs, read from its embedding by a model fitted on every past workflow, pure.

The nearest past intents say what served intents like this one, but only the few nearest speak, and near neighbours
often disagree (near-identical requests in public data carry different workflows). A multi-label logistic
regression over the intent embeddings of all past successful workflows (one sigmoid per tool, L2-penalised, fitted
by L-BFGS) learns which directions of the embedding space call for which tool, from the whole memory.
`suggest.recalled` weighs its probabilities beside the neighbours' agreement; what that gained, measured with
`eval dag`, is in docs/evaluation.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

L2 = 0.03
"""The L2 penalty on the weights (the bias is not penalised), per sample: 1 / C in scikit-learn's terms."""
MAX_ITERATIONS = 500
MAX_TOOLS = 1000
"""Only the most used tools get a model: a fit holds a few (intents x tools) float64 arrays at once, so the tool
count bounds its memory."""
MIN_PROBABILITY = 0.05
"""Tools below this probability are left out of `probabilities` (they weigh nothing in practice)."""

Matrix = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class ToolPrior:
    """P(tool in the workflow | intent embedding) for the tools seen in past workflows."""

    tools: tuple[str, ...]
    weights: Matrix
    """``(dimensions + 1) x len(tools)``; the last row is the bias."""
    samples: int

    @property
    def dimensions(self) -> int:
        return int(self.weights.shape[0]) - 1

    def probabilities(self, vector: Sequence[float] | NDArray[np.float32]) -> dict[str, float]:
        """Each tool's probability for this intent embedding, at least `MIN_PROBABILITY` (others left out)."""
        x = np.asarray(vector, dtype=np.float64).ravel()
        if x.shape[0] != self.dimensions:
            return {}
        from scipy.special import expit  # scipy's optimiser and special functions load on first use, not at start

        p = expit(x @ self.weights[:-1] + self.weights[-1])
        return {self.tools[k]: float(p[k]) for k in np.flatnonzero(p >= MIN_PROBABILITY)}


def fit(vectors: NDArray[np.floating], tool_sets: Sequence[Sequence[str]], *, previous: ToolPrior | None = None,
        l2: float = L2, max_iterations: int = MAX_ITERATIONS, max_tools: int = MAX_TOOLS) -> ToolPrior | None:
    """Fit the prior on past intents (`vectors`, one row each) and the tools that served them.

    `previous` warm-starts the weights of the tools it knew (a refit after a few more workflows converges in
    fewer steps). Only the `max_tools` most used tools are modelled. None when there is nothing to learn from.
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[0] != len(tool_sets):
        return None
    uses = Counter(t for s in tool_sets for t in set(s))
    tools = tuple(sorted(sorted(uses, key=lambda t: (-uses[t], t))[:max_tools]))
    if not tools:
        return None
    column = {t: k for k, t in enumerate(tools)}
    n, d = x.shape
    y = np.zeros((n, len(tools)))
    for row, used in enumerate(tool_sets):
        y[row, [column[t] for t in set(used) if t in column]] = 1.0
    xb = np.hstack([x, np.ones((n, 1))])
    penalised = np.ones((d + 1, 1))
    penalised[-1] = 0.0

    def objective(flat: Matrix) -> tuple[float, Matrix]:
        w = flat.reshape(d + 1, len(tools))
        z = xb @ w
        loss = float((np.logaddexp(0.0, z) - y * z).sum()) / n + 0.5 * l2 / n * float(((w * penalised) ** 2).sum())
        gradient = xb.T @ (expit(z) - y) / n + l2 / n * w * penalised
        return loss, gradient.ravel()

    start = _warm_start(previous, tools, d)
    result = minimize(objective, start.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": max_iterations})
    return ToolPrior(tools=tools, weights=np.asarray(result.x).reshape(d + 1, len(tools)), samples=n)


def _warm_start(previous: ToolPrior | None, tools: tuple[str, ...], dimensions: int) -> Matrix:
    start = np.zeros((dimensions + 1, len(tools)))
    if previous is not None and previous.dimensions == dimensions:
        known = {t: k for k, t in enumerate(previous.tools)}
        for k, tool in enumerate(tools):
            if tool in known:
                start[:, k] = previous.weights[:, known[tool]]
    return start
