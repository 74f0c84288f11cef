"""The composition root of `serve`: the runtime behind the MCP server, on stdio, until the client leaves.

The client is answered at once: the MCP server starts before anything else is ready, `tools/list` never waits,
and a search waits (bounded) for the index.
"""

from __future__ import annotations

import logging
import signal

import anyio
from mcp.server.lowlevel.server import NotificationOptions

from gateway.config import GatewayConfig, Settings
from gateway.runtime import Runtime
from gateway.server import build_server
from gateway.server.stdio import stdio_transport

logger = logging.getLogger(__name__)


async def serve(settings: Settings, config: GatewayConfig) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin or a SIGTERM/SIGINT arrives."""
    runtime = Runtime(settings=settings, config=config)
    server = build_server(runtime)
    async with anyio.create_task_group() as tg:
        await tg.start(runtime.run)
        async with stdio_transport() as (read_stream, write_stream):
            options = server.create_initialization_options(NotificationOptions(tools_changed=config.expose_all))
            await server.run(read_stream, write_stream, options)
        logger.info("the client closed the connection; shutting down")
        tg.cancel_scope.cancel()


async def cancel_on_signal(scope: anyio.CancelScope) -> None:
    """Cancel `scope` at the first SIGTERM or SIGINT."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
