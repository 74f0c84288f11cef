"""Capability names: FQDN and display formats, the namespace and action rules, and glob search patterns."""

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
from gateway.errors import InvalidRequestError

HASH = "0123456789abcdef" * 4


def test_a_new_capability_is_named_after_its_hash_under_the_default_org_and_project() -> None:
    action = default_action(HASH)
    assert action == "exec_01234567"
    assert fqdn(DEFAULT_ORG, DEFAULT_PROJECT, "fs", action, HASH[:4]) == "local.default.fs.exec_01234567.0123"


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
