"""Capability names: FQDN and display formats, the namespace and action rules, names made from an intent or
tools, and glob search patterns."""

from __future__ import annotations

import pytest

from gateway.capabilities import (
    DEFAULT_ORG,
    DEFAULT_PROJECT,
    check_action,
    check_namespace,
    default_action,
    display_name,
    fqdn,
    glob_to_like,
    namespace_for,
)
from gateway.capabilities.naming import (
    ACTION_MAX,
    generated_action,
    generated_actions,
    generated_namespace,
    tools_action,
)
from gateway.errors import InvalidRequestError

HASH = "0123456789abcdef" * 4
TIME_MEMORY_ECHO = ["time:get_current_time", "memory:create_entities", "everything:echo"]


def test_a_capability_learned_before_names_were_made_from_words_is_named_after_its_hash() -> None:
    action = default_action(HASH)
    assert action == "exec_01234567"
    assert fqdn(DEFAULT_ORG, DEFAULT_PROJECT, "fs", action, HASH[:4]) == "local.default.fs.exec_01234567.0123"


def test_a_capability_over_several_servers_is_in_the_workflow_namespace_and_one_server_in_its_own() -> None:
    assert generated_namespace(TIME_MEMORY_ECHO) == "workflow"
    assert generated_namespace(["My-Files:read", "My-Files:write"]) == "myfiles"
    assert generated_namespace(["fs:read", "0b7c1a2e-4a4e-4a8f-9b1a-0d2c3e4f5a6b"]) == "workflow"


def test_an_action_is_made_of_the_intent_words_without_stop_words_or_the_run_literals() -> None:
    intent = "Get the current time in Tokyo, then remember it as an entity and echo it back"
    action = generated_action(intent, TIME_MEMORY_ECHO, literals=["Asia/Tokyo", {"note": ["back"]}])
    assert action == "get_current_time_remember_entity_echo"
    assert generated_action("Résumé: 3 Übersetzungen", ["a:b"]) == "resume_3_ubersetzungen"
    assert generated_action("42 ways to zip files", ["a:b"]) == "ways_zip_files"


def test_without_intent_words_an_action_names_the_tools_in_the_order_they_ran() -> None:
    assert generated_action(None, TIME_MEMORY_ECHO[:2]) == "get_current_time_then_create_entities"
    assert generated_action("the and of", ["fs:readFile", "fs:3d-render"]) == "read_file_then_3d_render"
    assert generated_action("", ["faulty:echo"] * 3) == "echo_3_times"
    assert tools_action(["fs:2read", "fs:write"]) == "n2read_then_write"


def test_an_action_of_too_many_tools_names_the_first_and_counts_the_rest() -> None:
    tools = ["s:read_file", "s:parse_json", "t:write_file", "u:notify_user", "v:archive_everything"]
    assert tools_action(tools) == "read_file_then_parse_json_and_3_more"
    assert tools_action([f"s:{'x' * 60}_{i}" for i in range(3)]) == "x" * (ACTION_MAX - 11) + "_and_2_more"


@pytest.mark.parametrize(("intent", "tools"), [
    ("word " * 40, ["a:b"]), ("a" * 80, ["a:b"]), (None, [f"s:tool_{i}" for i in range(30)]),
    (None, ["s:" + "y" * 80] * 2), ("!!!", ["s:???"]), (None, ["7:9"]),
])
def test_every_generated_action_is_one_a_user_could_choose_but_for_the_reserved_prefix(
    intent: str | None, tools: list[str]
) -> None:
    for action in generated_actions(generated_action(intent, tools), HASH)[:-1]:
        check_action(action)


def test_a_taken_action_falls_back_to_a_hash_suffix_then_to_exec_and_the_hash() -> None:
    assert generated_actions("copy_file", HASH) == [
        "copy_file", "copy_file_0123", "copy_file_01234567", "exec_" + HASH[: ACTION_MAX - 5]]
    longest = generated_actions("x" * ACTION_MAX, HASH)
    assert [len(action) for action in longest] == [ACTION_MAX] * 4
    assert longest[1].endswith("x_0123") and longest[2].endswith("x_01234567")


def test_the_display_name_is_namespace_colon_action() -> None:
    assert display_name("fs", "copy_file") == "fs:copy_file"


@pytest.mark.parametrize("name", ["fs", "a1", "x" * 20])
def test_valid_namespaces_are_accepted(name: str) -> None:
    check_namespace(name)


@pytest.mark.parametrize("name", ["", "Fs", "1fs", "f_s", "f-s", "x" * 21, "fs\n"])
def test_invalid_namespaces_are_refused_with_the_field_named(name: str) -> None:
    with pytest.raises(InvalidRequestError, match="lowercase letters or digits") as caught:
        check_namespace(name)
    assert caught.value.field == "namespace"


@pytest.mark.parametrize("name", ["copy", "Copy_File2", "x" * 50, "exec"])
def test_valid_actions_are_accepted(name: str) -> None:
    check_action(name)


@pytest.mark.parametrize("name", ["", "_copy", "2copy", "copy-file", "x" * 51, "copy\n"])
def test_invalid_actions_are_refused_with_the_field_named(name: str) -> None:
    with pytest.raises(InvalidRequestError, match="letters, digits or '_'") as caught:
        check_action(name)
    assert caught.value.field == "action"


def test_an_action_may_not_take_the_generated_prefix() -> None:
    with pytest.raises(InvalidRequestError, match="exec_") as caught:
        check_action("exec_12345678")
    assert caught.value.field == "action"


@pytest.mark.parametrize(
    ("server", "namespace"),
    [("fs", "fs"), ("My-Server_2", "myserver2"), ("3d-tools", "n3dtools"), ("é!-", "tools"), ("a" * 30, "a" * 20)],
)
def test_a_server_name_becomes_a_valid_namespace(server: str, namespace: str) -> None:
    assert namespace_for(server) == namespace
    check_namespace(namespace)


@pytest.mark.parametrize(
    ("glob", "like"),
    [
        ("fs:*", "fs:%"),
        ("fs:rea?", "fs:rea_"),
        ("fs:copy_file", "fs:copy\\_file"),
        ("100%:*", "100\\%:%"),
        ("a\\b*", "a\\\\b%"),
    ],
)
def test_a_glob_becomes_a_like_pattern_with_percent_underscore_and_backslash_escaped(glob: str, like: str) -> None:
    assert glob_to_like(glob) == like
