"""Every subcommand is bound to the callable that runs it, and the quick answers (``--help``, ``--version``, the
`status` of a running gateway) import neither the runtime, nor the database, nor the model."""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli._parser import parser
from gateway.runstate import RunFile
from tests.e2e.support import ROOT, gateway_env

MINIMAL_ARGV = {
    "serve": [], "index": [], "search": ["read a file"], "status": [], "prune": [], "stats": [],
    "eval": ["retrieval", "--tools", "tools.jsonl", "--queries", "queries.jsonl"], "graph": ["--out", "graph.html"],
    "caps list": [], "caps show": ["fs:read_json"], "caps rename": ["fs:read_json"], "caps merge": ["a:b", "c:d"],
    "users add": ["ada"], "users list": [], "users revoke": ["ada"], "users rotate": ["ada"], "init": [],
    "secrets set": ["ada", "TOKEN"], "secrets list": ["ada"], "secrets delete": ["ada", "TOKEN"],
    "secrets rotate-master": [], "user-servers add": ["ada", "notes"], "user-servers list": ["ada"],
    "user-servers remove": ["ada", "notes"],
}
"""Each command the parser knows, by its words, and the least argv it accepts after them."""

HEAVY = ("gateway.runtime", "gateway.app", "gateway.server", "gateway.services", "gateway.downstream", "gateway.db",
         "gateway.embed", "psycopg", "onnxruntime", "tokenizers", "mcp")
"""What a quick answer must not import (a module, or one under it)."""

MODULES_AFTER = """
import sys
from gateway.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as file:
    file.write("\\n".join(sorted(sys.modules)))
"""
"""Run the command line in-process with ``argv[2:]``, then write the names of the modules it imported to argv[1]."""


def commands(command_line: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set[str]:
    """The runnable commands under `command_line`, each as its words (``caps list``)."""
    found: set[str] = set()
    for action in command_line._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= commands(sub, (*words, name))
    return found or {" ".join(words)}


def test_the_table_of_minimal_argv_names_every_command_the_parser_knows() -> None:
    assert set(MINIMAL_ARGV) == commands(parser())


def test_every_command_is_bound_to_its_own_async_run_callable() -> None:
    bound = {}
    for command, rest in MINIMAL_ARGV.items():
        args = parser().parse_args([*command.split(), *rest])
        assert inspect.iscoroutinefunction(args.run), command
        bound[command] = args.run
    assert len(set(bound.values())) == len(bound), "two commands share a run callable"


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["caps", "--help"], ["status"]],
                         ids=["help", "version", "caps-help", "status"])
def test_a_quick_answer_imports_neither_runtime_nor_database_nor_model(argv: list[str], tmp_path: Path) -> None:
    """`status` finds this test's process running as a gateway on its data directory, and answers from that."""
    data_dir = tmp_path / "data"
    RunFile(data_dir).write(config=None, database="postgresql://localhost/pml", index="open", model="test-model",
                            servers=())
    modules = tmp_path / "modules.txt"
    done = subprocess.run([sys.executable, "-c", MODULES_AFTER, str(modules), *argv], capture_output=True,
                          text=True, env=gateway_env(PML_DATA_DIR=str(data_dir)), cwd=ROOT, timeout=60)
    assert [m for m in modules.read_text().split() if _heavy(m)] == []
    if argv == ["status"]:
        assert f"gateway pid {os.getpid()}" in done.stdout
        assert "index: open (postgresql://localhost/pml), embedding model test-model" in done.stdout


def _heavy(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in HEAVY)
