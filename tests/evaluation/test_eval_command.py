"""`pml-gateway eval` end to end on a tiny data set whose rankings leave no doubt, as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ROOT, gateway_command, gateway_env

DATA = Path(__file__).parent / "data"
TOOLS, QUERIES, HISTORY, BAD_QUERIES = (DATA / f for f in ("tools.jsonl", "queries.jsonl", "history.jsonl",
                                                             "bad_queries.jsonl"))

# By hand, per query (weather, translate, weather + mail, currency + a tool not in the catalog): each relevant
# tool of the catalog is a clear top hit, so all but the last query score 1 everywhere; the last finds one of
# its two tools, first: recall 1/2, completeness 0, NDCG 1 / (1 + 1/log2(3)) = 0.613147.
EXPECTED_RETRIEVAL = {
    "queries": 4, "tools": 8, "hit@1": 1.0, "mrr@10": 1.0, "recall@5": 0.875, "recall@10": 0.875,
    "ndcg@10": 0.9033, "comp@5": 0.75, "comp@10": 0.75,
}


def run_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway_command("eval", *args), capture_output=True, text=True, env=gateway_env(),
                          cwd=ROOT, timeout=100, stdin=subprocess.DEVNULL, check=False)


def last_json_line(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("extra", [(), ("--history", str(HISTORY))], ids=["no history", "with history"])
def test_eval_retrieval_prints_the_metrics_worked_out_by_hand_as_one_json_line(extra: tuple[str, ...]) -> None:
    metrics = last_json_line(run_eval("retrieval", "--tools", str(TOOLS), "--queries", str(QUERIES), "--json", *extra))

    latency = metrics.pop("latency_ms")
    assert metrics == EXPECTED_RETRIEVAL
    assert set(latency) == {"p50", "p95"}
    assert 0 < latency["p50"] <= latency["p95"]


def test_eval_dag_suggests_each_past_task_back_exactly() -> None:
    # Each history task is also a query: its own intent is recalled with similarity 1.
    metrics = last_json_line(
        run_eval("dag", "--tools", str(TOOLS), "--queries", str(HISTORY), "--history", str(HISTORY), "--json")
    )

    assert metrics == {"queries": 2, "node_f1": 1.0, "edge_f1": 1.0, "exact": 1.0, "suggested": 1.0}


def test_eval_dag_without_history_reports_shares_between_zero_and_one() -> None:
    metrics = last_json_line(run_eval("dag", "--tools", str(TOOLS), "--queries", str(QUERIES), "--json"))

    assert set(metrics) == {"queries", "node_f1", "edge_f1", "exact", "suggested"}
    assert metrics["queries"] == 4
    assert all(0.0 <= metrics[key] <= 1.0 for key in ("node_f1", "edge_f1", "exact", "suggested"))


def test_a_queries_file_with_bad_json_on_line_two_fails_naming_that_line() -> None:
    done = run_eval("retrieval", "--tools", str(TOOLS), "--queries", str(BAD_QUERIES), "--json")

    assert done.returncode == 2
    assert f"{BAD_QUERIES}:2: invalid JSON" in done.stderr
    assert done.stdout == ""
