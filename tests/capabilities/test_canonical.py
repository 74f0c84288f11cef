"""The canonical form of a DAG: same workflow, same hash; literal values become parameters."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from gateway.capabilities import Canonical, canonicalize, instantiate
from gateway.dag import parse_dag
from tests.dag import TOOLS


def _canonical(tasks: list[dict[str, Any]]) -> Canonical:
    return canonicalize(parse_dag({"tasks": tasks}, tool_schemas=TOOLS), TOOLS)


def _read_then_write(path: str, target: str) -> list[dict[str, Any]]:
    return [
        {"id": "read", "tool": "fs:read_file", "arguments": {"path": path}},
        {"id": "write", "tool": "fs:write_file", "arguments": {"path": target, "content": "$OUTPUT[read].text"}},
    ]


def test_the_same_workflow_with_other_literal_values_has_the_same_hash_and_other_defaults() -> None:
    first = _canonical(_read_then_write("/a.txt", "/b.txt"))
    second = _canonical(_read_then_write("/c.txt", "/d.txt"))
    assert first.hash == second.hash
    assert first.document == second.document
    assert first.parameters_schema["properties"].keys() == second.parameters_schema["properties"].keys()
    assert first.defaults == {"p_t1_path": "/a.txt", "p_t2_path": "/b.txt"}
    assert second.defaults == {"p_t1_path": "/c.txt", "p_t2_path": "/d.txt"}
    assert second.parameters_schema["properties"]["p_t1_path"]["default"] == "/c.txt"


def test_another_tool_changes_the_hash() -> None:
    tasks = _read_then_write("/a.txt", "/b.txt")
    other = [{**tasks[0], "tool": "util:echo"}, tasks[1]]
    assert _canonical(tasks).hash != _canonical(other).hash


def test_another_structure_changes_the_hash() -> None:
    tasks = _read_then_write("/a.txt", "/b.txt")
    unlinked = [tasks[0], {**tasks[1], "arguments": {"path": "/b.txt", "content": "fixed"}}]
    assert _canonical(tasks).hash != _canonical(unlinked).hash


def test_the_canonical_document_is_hashed_as_compact_sorted_json() -> None:
    canonical = _canonical(_read_then_write("/a.txt", "/b.txt"))
    text = json.dumps(canonical.document, sort_keys=True, separators=(",", ":"))
    assert canonical.hash == hashlib.sha256(text.encode()).hexdigest()
    assert canonical.tools == ("fs:read_file", "fs:write_file")


def test_references_are_kept_and_renamed_to_the_new_ids() -> None:
    canonical = _canonical(
        [
            {"id": "save", "tool": "util:echo", "arguments": {"x": ["$OUTPUT[load].items[0]", "$OUTPUT[load]!"]}},
            {"id": "load", "tool": "web:fetch", "arguments": {"url": "https://example.org"}},
        ]
    )
    first, second = canonical.document["tasks"]
    assert first == {"id": "t1", "tool": "web:fetch", "arguments": {"url": "$PARAM[p_t1_url]"}, "depends_on": []}
    assert second["arguments"] == {"x": ["$OUTPUT[t1].items[0]", "$OUTPUT[t1]!"]}
    assert second["depends_on"] == ["t1"]


def test_renaming_is_stable_when_the_submitted_tasks_are_reordered() -> None:
    tasks = [
        {"id": "b", "tool": "web:fetch", "arguments": {"url": "https://b"}},
        {"id": "a", "tool": "fs:read_file", "arguments": {"path": "/a"}},
        {"id": "c", "tool": "util:echo", "arguments": {"x": "$OUTPUT[b]"}},
        {"id": "d", "tool": "util:echo", "arguments": {"x": "$OUTPUT[a]"}},
        {"id": "e", "tool": "util:echo", "arguments": {"x": "$OUTPUT[d]"}, "depends_on": ["c"]},
    ]
    forward = _canonical(tasks)
    backward = _canonical(list(reversed(tasks)))
    assert forward.hash == backward.hash
    assert forward.defaults == backward.defaults == {"p_t1_path": "/a", "p_t2_url": "https://b"}
    assert [t["tool"] for t in forward.document["tasks"]] == ["fs:read_file", "web:fetch", *["util:echo"] * 3]
    assert forward.document["tasks"][2]["arguments"] == {"x": "$OUTPUT[t1]"}
    assert forward.document["tasks"][4]["depends_on"] == ["t3", "t4"]


def test_parameters_take_the_tool_schemas_types_and_required_flags() -> None:
    canonical = _canonical(
        [
            {"id": "f", "tool": "web:fetch", "arguments": {"url": "https://x", "options": {"max_length": 5}}},
            {"id": "e", "tool": "util:echo", "arguments": {"n": 3, "ok": True, "ratio": 0.5}},
        ]
    )
    properties = canonical.parameters_schema["properties"]
    assert properties["p_t2_url"] == {"type": "string", "pattern": "^https?://", "default": "https://x"}
    assert properties["p_t2_options"]["properties"] == {"max_length": {"type": "integer", "minimum": 1}}
    assert [properties[f"p_t1_{n}"]["type"] for n in ("n", "ok", "ratio")] == ["integer", "boolean", "number"]
    assert canonical.parameters_schema["required"] == ["p_t2_url"]


def test_instantiating_with_new_values_gives_a_dag_that_carries_them() -> None:
    canonical = _canonical(_read_then_write("/a.txt", "/b.txt"))
    document = instantiate(canonical.document, {"p_t1_path": "/x", "p_t2_path": "/y"})
    dag = parse_dag(document, tool_schemas=TOOLS)
    assert dag.task("t1").arguments == {"path": "/x"}
    assert dag.task("t2").arguments == {"path": "/y", "content": "$OUTPUT[t1].text"}
    assert dag.task("t2").depends_on == ("t1",)


def test_instantiating_with_the_defaults_gives_back_the_same_hash() -> None:
    canonical = _canonical([*_read_then_write("/a.txt", "/b.txt"), _echo("$OUTPUT[write]", 7)])
    again = canonicalize(parse_dag(instantiate(canonical.document, canonical.defaults), tool_schemas=TOOLS), TOOLS)
    assert again == canonical


def test_a_missing_required_parameter_is_named_in_the_error() -> None:
    canonical = _canonical(_read_then_write("/a.txt", "/b.txt"))
    with pytest.raises(ValueError, match="p_t2_path"):
        instantiate(canonical.document, {"p_t1_path": "/x"}, parameters_schema=canonical.parameters_schema)


def test_a_missing_optional_parameter_takes_its_default_from_the_schema() -> None:
    canonical = _canonical([_echo("$OUTPUT[x]", 7), {"id": "x", "tool": "util:echo", "arguments": {}}])
    document = instantiate(canonical.document, {}, parameters_schema=canonical.parameters_schema)
    assert document["tasks"][1]["arguments"] == {"x": "$OUTPUT[t1]", "count": 7}


def test_an_unknown_parameter_is_refused() -> None:
    canonical = _canonical(_read_then_write("/a.txt", "/b.txt"))
    with pytest.raises(ValueError, match="p_t9_path"):
        instantiate(canonical.document, {**canonical.defaults, "p_t9_path": "/z"})


def _echo(reference: str, count: int) -> dict[str, Any]:
    return {"id": "echo", "tool": "util:echo", "arguments": {"x": reference, "count": count}}
