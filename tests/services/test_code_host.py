"""What a program receives from a tool call: the structured content, unwrapped when it only wraps the text."""

from __future__ import annotations

from gateway.models import ToolOutput
from gateway.services.code_host import tool_value


def test_the_sdks_result_wrapper_and_a_one_key_copy_of_the_text_are_unwrapped() -> None:
    assert tool_value(ToolOutput(is_error=False, text="5.0", structured={"result": 5.0})) == 5.0
    assert tool_value(ToolOutput(is_error=False, text="file body", structured={"content": "file body"})) == "file body"


def test_structured_content_that_says_more_than_the_text_is_kept_whole() -> None:
    kept = {"content": "summary", "size": 3}
    assert tool_value(ToolOutput(is_error=False, text="summary", structured=kept)) == kept
    assert tool_value(ToolOutput(is_error=False, text="other", structured={"content": "body"})) == {"content": "body"}


def test_without_structured_content_json_text_is_parsed_and_other_text_kept() -> None:
    assert tool_value(ToolOutput(is_error=False, text='{"a": [1, 2]}')) == {"a": [1, 2]}
    assert tool_value(ToolOutput(is_error=False, text="plain words")) == "plain words"
