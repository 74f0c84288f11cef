"""The isolation engine `execute_code` runs the client's code in: pydantic-monty's worker processes."""

from gateway.sandbox.monty import CodeRun, MontySandbox

__all__ = ["CodeRun", "MontySandbox"]
