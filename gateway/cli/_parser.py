"""The argument parser: the options the commands share, and the subcommands each command group registers."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from gateway import __version__
from gateway.cli import caps, evaluate, graph, index, init, secrets, serve, stats, user_servers, users

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``add_subparsers`` returns: a group's `register` adds its subcommands to it."""


def parser() -> argparse.ArgumentParser:
    """``pml-gateway``, each subcommand bound to its run callable (``args.run``); the groups in help order."""
    common = _common()
    root = argparse.ArgumentParser(prog="pml-gateway", description="One MCP server in front of many.")
    root.add_argument("--version", action="version", version=f"pml-gateway {__version__}")
    sub = root.add_subparsers(dest="command", required=True)
    for group in (serve, index, stats, evaluate, graph, caps, users, secrets, user_servers):
        group.register(sub, common)
    init.register(sub)  # its own --config and --log-level: it writes the servers file, reads no database
    return root


def _common() -> argparse.ArgumentParser:
    """The options of every command but `init`, taken as a parent so that they may follow the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="servers file: Claude-style {\"mcpServers\": ...} JSON (env PML_CONFIG)")
    common.add_argument("--database-url", help="external Postgres 15+ with pgvector (env PML_DATABASE_URL)")
    common.add_argument("--data-dir", help="data directory of the embedded Postgres (env PML_DATA_DIR)")
    common.add_argument("--model-dir", help="folder with model.onnx + tokenizer.json (env PML_MODEL_DIR)")
    common.add_argument("--embed-threads", help="onnxruntime threads per embedding call, default 2 or the cores "
                        "available if fewer (env PML_EMBED_THREADS)")
    common.add_argument("--call-timeout", type=float, help="seconds per downstream call (env PML_CALL_TIMEOUT)")
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env PML_LOG_LEVEL)")
    return common
