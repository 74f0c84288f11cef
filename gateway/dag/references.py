"""`$OUTPUT[task_id].path` references: finding them in arguments and substituting finished tasks' outputs.

A string argument, at any depth of the arguments, that is exactly a reference is replaced by the referenced
value itself (any JSON type); a reference inside a longer string is substituted as text (strings as they are,
other values as compact JSON). A path is made of ``.key`` segments, ``[N]`` indices (negative ones count from
the end) and ``["any key"]`` segments. ``$$OUTPUT[`` is no reference: it reaches the tool as a literal
``$OUTPUT[`` (a DAG handed to a chained gateway's `execute_dag` keeps its own references that way).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.dag._json import compact, kind, render_path
from gateway.errors import OutputReferenceError

if TYPE_CHECKING:
    from gateway.dag.model import Task

MARKER = "$OUTPUT["
ESCAPED = "$$OUTPUT["
_ID = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"
_KEY = r"[A-Za-z_][A-Za-z0-9_]*"  # no "-": in running text "$OUTPUT[a].name-suffix" ends at "name"; use ["a-b"]
_SEGMENT = re.compile(rf'\.({_KEY})|\[(-?\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
_REFERENCE = re.compile(rf"(?<!\$)\$OUTPUT\[({_ID})\]((?:{_SEGMENT.pattern})*)")
_MAX_KEYS_SHOWN = 20

Step = str | int


@dataclass(frozen=True, slots=True)
class Reference:
    """One `$OUTPUT[...]` reference: the task it names and the path into that task's output."""

    task: str
    path: tuple[Step, ...]

    def shown(self, steps: int | None = None) -> str:
        """The reference as written canonically, through its first `steps` path segments."""
        return f"{MARKER}{self.task}]" + "".join(_segment_text(s) for s in self.path[:steps])


def references_in(arguments: Any) -> Iterator[tuple[str, Reference]]:
    """Every well-formed reference in `arguments`, with the path of the argument holding it."""
    for parts, text in _strings(arguments, ()):
        for match in _REFERENCE.finditer(text):
            yield render_path(parts), _parse(match)


def malformed_in(arguments: Any) -> Iterator[tuple[str, str]]:
    """Every ``$OUTPUT[`` that does not start a well-formed reference, with its argument path and text."""
    for parts, text in _strings(arguments, ()):
        starts = {m.start() for m in _REFERENCE.finditer(text)}
        for index in _marker_positions(text):
            if index not in starts:
                yield render_path(parts), text[index : index + 40]


def holds_reference(value: Any) -> bool:
    """Whether `value` is, or contains at any depth, a string with a reference in it."""
    return any(_REFERENCE.search(text) for _, text in _strings(value, ()))


def resolve_arguments(task: Task, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """`task`'s arguments with every reference replaced from `outputs` (finished tasks' output values).

    Raises `OutputReferenceError` naming the reference and what exists where its path stopped fitting.
    """
    return {key: _substitute(value, task.id, outputs) for key, value in task.arguments.items()}


def output_value(structured_content: Any | None, text: str | None) -> Any:
    """What a task's result contributes to `$OUTPUT`: its structured content when present, else its text
    parsed as JSON when it is JSON, else the text itself (None when there is neither)."""
    if structured_content is not None:
        return structured_content
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strings(value: Any, parts: tuple[Step, ...]) -> Iterator[tuple[tuple[Step, ...], str]]:
    """Every string that could hold a reference, with its path; dict keys are names, never references."""
    if isinstance(value, str):
        if MARKER in value:
            yield parts, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*parts, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*parts, index))


def _marker_positions(text: str) -> Iterator[int]:
    """Where each ``$OUTPUT[`` that is not escaped as ``$$OUTPUT[`` starts."""
    index = text.find(MARKER)
    while index >= 0:
        if index == 0 or text[index - 1] != "$":
            yield index
        index = text.find(MARKER, index + 1)


def _parse(match: re.Match[str]) -> Reference:
    path: list[Step] = []
    for segment in _SEGMENT.finditer(match.group(2)):
        key, index, quoted = segment.groups()
        path.append(key if key is not None else int(index) if index is not None else json.loads(quoted))
    return Reference(match.group(1), tuple(path))


def _segment_text(step: Step) -> str:
    if isinstance(step, int):
        return f"[{step}]"
    return f".{step}" if re.fullmatch(_KEY, step) else f"[{json.dumps(step, ensure_ascii=False)}]"


def _substitute(value: Any, task_id: str, outputs: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _substitute_string(value, task_id, outputs)
    if isinstance(value, dict):
        return {key: _substitute(item, task_id, outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, task_id, outputs) for item in value]
    return value


def _substitute_string(text: str, task_id: str, outputs: Mapping[str, Any]) -> Any:
    if MARKER not in text:
        return text
    whole = _REFERENCE.fullmatch(text)
    if whole is not None:
        return copy.deepcopy(_follow(_parse(whole), task_id, outputs))
    substituted = _REFERENCE.sub(lambda m: as_text(_follow(_parse(m), task_id, outputs)), text)
    return substituted.replace(ESCAPED, MARKER)


def as_text(value: Any) -> str:
    """An output as text: a string as it is, any other value as compact JSON."""
    return value if isinstance(value, str) else compact(value)


def _follow(ref: Reference, task_id: str, outputs: Mapping[str, Any]) -> Any:
    """The value `ref` points at, or `OutputReferenceError` saying where and why the path stopped fitting."""
    if ref.task not in outputs:
        raise _error(ref, None, task_id, f"task '{ref.task}' has no output yet")
    value = outputs[ref.task]
    for step_no, step in enumerate(ref.path, 1):
        problem = _step_problem(value, step)
        if problem is not None:
            raise _error(ref, step_no, task_id, problem)
        value = value[step]
    return value


def _step_problem(value: Any, step: Step) -> str | None:
    """Why `step` cannot be taken from `value`, or None when it can."""
    if isinstance(step, int):
        if not isinstance(value, list):
            return f"index {step} needs a list, got {kind(value)}{_keys_note(value)}"
        if not -len(value) <= step < len(value):
            return f"index {step} out of range (list of {len(value)})"
        return None
    if not isinstance(value, dict):
        return f"no key '{step}' in {kind(value)}"
    if step not in value:
        return f"no key '{step}'{_keys_note(value)}"
    return None


def _keys_note(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    if not value:
        return " (no keys)"
    keys = [str(k) for k in list(value)[:_MAX_KEYS_SHOWN]]
    more = ", ..." if len(value) > _MAX_KEYS_SHOWN else ""
    return f" (keys: {', '.join(keys)}{more})"


def _error(ref: Reference, steps: int | None, task_id: str, problem: str) -> OutputReferenceError:
    shown = ref.shown(steps)
    return OutputReferenceError(f"task '{task_id}': {shown}: {problem}", task=task_id, reference=shown)
