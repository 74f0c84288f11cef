"""Typed stubs of tools for the sandbox's `tools` module: names that are identifiers, types from the schema."""

from __future__ import annotations

import ast

from gateway.catalog.stubs import function_names, stubs
from gateway.models import ToolDef

LOG = ToolDef(server="git", name="git_log", description='Show the "commit" log.', input_schema={
    "type": "object",
    "properties": {
        "repo_path": {"type": "string"},
        "max_count": {"type": "integer"},
        "order": {"enum": ["asc", "desc"]},
        "paths": {"type": "array", "items": {"type": "string"}},
        "since": {"type": ["string", "null"]},
        "not-an-identifier": {"type": "string"},
    },
    "required": ["repo_path"],
})


def test_each_tool_is_a_keyword_only_function_typed_from_its_schema() -> None:
    text = stubs({"git__git_log": LOG})
    ast.parse(text)  # valid Python
    assert ("async def git__git_log(*, repo_path: str, max_count: int | None = None, "
            "order: Literal['asc', 'desc'] | None = None, paths: list[str] | None = None, "
            "since: str | None = None, **extra: Any) -> Any:") in text
    assert "git:git_log: Show the 'commit' log." in text


def test_a_tool_without_arguments_takes_none_and_a_closed_schema_takes_no_extra() -> None:
    closed = ToolDef(server="s", name="t", input_schema={"type": "object", "properties": {"a": {"type": "number"}},
                                                          "additionalProperties": False})
    bare = ToolDef(server="s", name="u", input_schema={"type": "object", "properties": {},
                                                        "additionalProperties": False})
    text = stubs({"s__t": closed, "s__u": bare})
    assert "async def s__t(*, a: float | None = None) -> Any:" in text
    assert "async def s__u() -> Any:" in text


def test_names_are_python_identifiers_that_never_collide() -> None:
    names = function_names(["my-server:get.time", "my_server:get_time", "9lives:class", "a:b"])
    assert names == {"a__b": "a:b", "my_server__get_time": "my-server:get.time",
                     "my_server__get_time_2": "my_server:get_time", "t9lives__class": "9lives:class"}
    assert all(name.isidentifier() for name in names)
