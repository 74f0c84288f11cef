"""Reading the evaluation's tools: repeated ids, and names that are not the id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.evaluation.data import EvalTool, load_tools
from gateway.evaluation.runner import _tool_def


def write(path: Path, docs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def test_a_repeated_tool_id_keeps_its_first_line_and_a_warning_names_both_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tools = write(tmp_path / "tools.jsonl", [
        {"id": "weather", "description": "first"},
        {"id": "mail", "description": "send mail"},
        {"id": "weather", "description": "second"},
    ])

    with caplog.at_level(logging.WARNING):
        loaded = load_tools(tools)

    assert [(t.id, t.description) for t in loaded] == [("weather", "first"), ("mail", "send mail")]
    assert "tools.jsonl:3: tool id 'weather' repeats line 1" in caplog.text


def test_a_name_other_than_the_id_is_the_title_embedded_before_the_description() -> None:
    opaque = EvalTool(id="api_17", name="Currency converter", description="Rates from the ECB.", input_schema=None)
    plain = EvalTool(id="get_weather", name="get_weather", description="Weather by city.", input_schema=None)

    assert (_tool_def(opaque).name, _tool_def(opaque).title) == ("api_17", "Currency converter")
    assert _tool_def(opaque).embed_text == "api_17 | Currency converter. Rates from the ECB."
    assert _tool_def(plain).embed_text == "get_weather | Weather by city."
    assert _tool_def(plain).input_schema == {"type": "object"}
