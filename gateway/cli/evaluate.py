"""`eval retrieval|dag`: measure tool retrieval or DAG suggestion on a public data set, with no database.

The data sets and their JSON Lines format are described in docs/evaluation.md. Metrics print as a table, or with
``--json`` as one object on the last line of stdout; the stages' progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``eval KIND --tools FILE --queries FILE [--history FILE] [--split NAME] [--no-graph] [--signals ARM]``."""
    evaluation = sub.add_parser("eval", parents=[common], help="measure retrieval or DAG suggestion on public data")
    evaluation.add_argument("kind", choices=["retrieval", "dag"])
    evaluation.add_argument("--tools", required=True, type=Path, help="tools.jsonl")
    evaluation.add_argument("--queries", required=True, type=Path, help="queries.jsonl")
    evaluation.add_argument("--history", type=Path, help="history.jsonl: past tasks replayed as workflows")
    evaluation.add_argument("--split", help="only the queries of this split (e.g. test_in_domain)")
    evaluation.add_argument("--no-graph", action="store_true", help="rank without the learned graph")
    evaluation.add_argument("--signals", choices=["hybrid", "dense", "bm25"], default="hybrid",
                            help="baseline arms: meaning only (dense) or words only (bm25), nothing learned")
    evaluation.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")
    evaluation.set_defaults(run=_evaluate)


async def _evaluate(invocation: Invocation) -> int:
    invocation.servers()  # a servers file named but broken is refused, as by every command that reads one
    args, settings = invocation.args, invocation.settings
    return await evaluate(
        args.kind, tools=args.tools, queries=args.queries, history=args.history, split=args.split,
        use_graph=not args.no_graph, as_json=args.json, model_dir=settings.model_dir, signals=args.signals,
        threads=settings.embed_threads,
    )


async def evaluate(kind: str, *, tools: Path, queries: Path, history: Path | None, split: str | None,
                   use_graph: bool, as_json: bool, model_dir: Path | None, signals: str = "hybrid",
                   threads: int | None = None) -> int:
    """`eval retrieval|dag`: metrics as a table, or as one JSON object on the last line with `--json`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gateway.evaluation import EvalInputs, evaluate_dag, evaluate_retrieval, load_queries, load_tools

    inputs = EvalInputs(tools=load_tools(tools), queries=load_queries(queries, split=split),
                        history=load_queries(history) if history else (), use_graph=use_graph, signals=signals,
                        model_dir=model_dir, threads=threads)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        stages: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = bar.add_task(stage, total=total)
            bar.update(stages[stage], completed=done, total=total)

        run = evaluate_retrieval if kind == "retrieval" else evaluate_dag
        metrics = await run(inputs, progress)
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
    else:
        table = Table("metric", "value", title=f"eval {kind} ({'graph' if use_graph else 'no graph'})")
        for key, value in metrics.items():
            table.add_row(key, json.dumps(value))
        Console().print(table)
    return 0
