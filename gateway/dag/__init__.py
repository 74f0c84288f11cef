"""The `execute_dag` model, pure: validating a DAG, its layers, and `$OUTPUT` references between tasks.

No I/O here: the executor runs the layers, and calls `resolve_arguments` and `check_resolved` on each task
as its turn comes.
"""

from gateway.dag.arguments import check_resolved
from gateway.dag.model import Dag, DagOptions, Task, to_document
from gateway.dag.parse import parse_dag, replan
from gateway.dag.references import as_text, output_value, resolve_arguments

__all__ = [
    "Dag",
    "DagOptions",
    "Task",
    "as_text",
    "check_resolved",
    "output_value",
    "parse_dag",
    "replan",
    "resolve_arguments",
    "to_document",
]
