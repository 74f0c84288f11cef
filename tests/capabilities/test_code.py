"""The normal form of a program: data literals lifted into named parameters, the shape hashed."""

from __future__ import annotations

import pytest

from gateway.capabilities.code import CodeParseError, normalise, tools_named

PROGRAM = """
repo = "/src/one"
log = await call("git:git_log", {"repo_path": repo, "max_count": 50})
[line for line in log.splitlines() if "fix" in line][:3]
"""


def test_two_programs_that_differ_in_data_literals_and_formatting_share_one_normal_form() -> None:
    one = normalise(PROGRAM)
    other = normalise(PROGRAM.replace('"/src/one"', "'/src/two'  # another").replace("50", "20"))
    assert one.hash == other.hash and one.code == other.code
    assert one.defaults == {"repo": "/src/one", "max_count": 50} and other.defaults["max_count"] == 20
    assert one.parameters_schema["properties"]["max_count"] == {"type": "integer", "default": 50}


def test_the_tool_id_keys_and_comparisons_are_the_programs_shape_and_stay() -> None:
    one = normalise(PROGRAM)
    assert "'git:git_log'" in one.code and "'repo_path'" in one.code and "'fix'" in one.code
    assert normalise(PROGRAM.replace('"fix"', '"feat"')).hash != one.hash
    assert normalise(PROGRAM.replace("git:git_log", "git:git_show")).hash != one.hash


def test_parameters_take_the_names_they_fill_and_unnamed_ones_are_numbered() -> None:
    normal = normalise('a = await call("s:t", {"text": "x", "class": "y"})\nb = f("z", 3)\nc = g(key="w")')
    assert list(normal.defaults) == ["text", "p2", "p3", "p4", "key"]
    assert normal.defaults == {"text": "x", "p2": "y", "p3": "z", "p4": 3, "key": "w"}


def test_code_that_does_not_parse_is_refused_and_tools_named_are_read_in_order() -> None:
    with pytest.raises(CodeParseError):
        normalise("x = (")
    assert tools_named('await call("b:y", {})\nawait call("a:x")\nawait call("b:y", {})\ncall(name)') == [
        "b:y", "a:x"]
