"""Retrieval and DAG-suggestion metrics, pure, with the definitions of the evaluation command."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def hit_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return 1.0 if any(t in relevant for t in ranked[:k]) else 0.0


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant tools found in the top k."""
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def complete_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 when every relevant tool is in the top k."""
    return 1.0 if relevant and relevant <= set(ranked[:k]) else 0.0


def mrr_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 / rank of the first relevant tool in the top k, 0 if none."""
    return next((1.0 / i for i, t in enumerate(ranked[:k], 1) if t in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary-relevance NDCG."""
    dcg = sum(1.0 / math.log2(i + 1) for i, t in enumerate(ranked[:k], 1) if t in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def f1(predicted: set[object], gold: set[object]) -> float:
    """F1 of two sets; two empty sets agree perfectly."""
    if not predicted and not gold:
        return 1.0
    hits = len(predicted & gold)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


def retrieval_row(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    return {
        "hit@1": hit_at(ranked, relevant, 1), "mrr@10": mrr_at(ranked, relevant, 10),
        "recall@5": recall_at(ranked, relevant, 5), "recall@10": recall_at(ranked, relevant, 10),
        "ndcg@10": ndcg_at(ranked, relevant, 10), "comp@5": complete_at(ranked, relevant, 5),
        "comp@10": complete_at(ranked, relevant, 10),
    }


def averaged(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else ()
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}


def latency(samples_ms: Sequence[float]) -> dict[str, float]:
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0}
    p50, p95 = np.percentile(samples_ms, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}
