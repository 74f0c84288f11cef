"""`pml-gateway eval`: retrieval and DAG-suggestion quality on public data, through the real code paths."""

from gateway.evaluation.data import load_queries, load_tools
from gateway.evaluation.runner import EvalInputs, evaluate_dag, evaluate_retrieval

__all__ = ["EvalInputs", "evaluate_dag", "evaluate_retrieval", "load_queries", "load_tools"]
