"""The composition root of `serve`: the runtime behind the MCP server, on stdio until the client leaves, or on
streamable HTTP (`--http HOST:PORT`) until a SIGTERM/SIGINT.

The client is answered at once: the MCP server starts before anything else is ready, `tools/list` never waits,
and a search waits (bounded) for the index.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Generator

import anyio
import uvicorn

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.runtime import HttpGate, Runtime
from gateway.server import build_server
from gateway.server.exposure import ListWatchers
from gateway.server.http import MCP_PATH, GatewayHttpApp, HttpPages, session_manager
from gateway.server.oauth import CALLBACK_PATH, OAuthFace
from gateway.server.oauth_provider import GatewayOAuthProvider, OAuthPlaces
from gateway.server.questions import Relay
from gateway.server.stdio import stdio_transport
from gateway.services.upstream import UpstreamSettings, upstream
from gateway.settings import OAuthSignIn, Settings
from gateway.shutdown import NOISE, Shutdown

logger = logging.getLogger(__name__)


HTTP_GRACE_S = 5
"""How long open HTTP requests get to finish once the gateway is told to stop."""
EOF_GRACE_S = 5.0
"""Once the client has closed stdin, how long what already finished may take to be recorded and learned."""
SIGNAL_GRACE_S = 1.0
"""The same after a SIGTERM or SIGINT: a supervisor expects the process gone within a couple of seconds."""




async def serve(settings: Settings, config: GatewayConfig, shutdown: Shutdown | None = None) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin or `shutdown` is requested (a signal)."""
    shutdown = shutdown or Shutdown()
    if settings.http_bind is not None:
        await serve_http(settings, config, settings.http_bind, shutdown)
        return
    watchers, relay = ListWatchers(), Relay()
    runtime = Runtime(settings=settings, config=config, on_tools_changed=watchers.tell_all)
    server = build_server(runtime, relay, watchers)
    NOISE.install()
    async with anyio.create_task_group() as tg:
        await tg.start(runtime.run)
        await tg.start(relay.run)
        async with anyio.create_task_group() as serving:
            serving.start_soon(_cancel_when, shutdown.requested, serving.cancel_scope)
            async with stdio_transport() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
            serving.cancel_scope.cancel()
        if not shutdown.requested.is_set():
            logger.info("the client closed the connection; shutting down")
        await runtime.finish(SIGNAL_GRACE_S if shutdown.requested.is_set() else EOF_GRACE_S)
        NOISE.stopping = True
        tg.cancel_scope.cancel()


async def serve_http(settings: Settings, config: GatewayConfig, bind: tuple[str, int], shutdown: Shutdown) -> None:
    """Serve MCP over streamable HTTP at ``http://HOST:PORT/mcp`` until `shutdown` is requested (a signal)."""
    watchers, relay = ListWatchers(), Relay()
    runtime = Runtime(settings=settings, config=config, on_tools_changed=watchers.tell_all)
    server = build_server(runtime, relay, watchers)
    NOISE.install()
    gate = HttpGate(runtime.services)
    listener = _listen(*bind)
    oauth = None if settings.oauth is None else _oauth_face(settings, settings.oauth, gate, listener)
    app = GatewayHttpApp(sessions=session_manager(server, host=bind[0]), gate=gate, oauth=oauth,
                         pages=HttpPages(metrics=runtime.metrics_text, graph=runtime.graph_page))
    web = _Uvicorn(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                  timeout_graceful_shutdown=HTTP_GRACE_S))
    async with anyio.create_task_group() as tg:
        await tg.start(runtime.run)
        await tg.start(relay.run)
        async with app.running():
            logger.info("serving MCP at http://%s:%d/mcp", *listener.getsockname()[:2])
            tg.start_soon(_stop_when, shutdown.requested, web)
            with anyio.CancelScope(shield=True):  # uvicorn stops by itself once told to: see _stop_when
                await web.serve(sockets=[listener])
        await runtime.finish(SIGNAL_GRACE_S)
        tg.cancel_scope.cancel()


def _oauth_face(settings: Settings, sign_in: OAuthSignIn, gate: HttpGate, listener: socket.socket) -> OAuthFace:
    """OAuth sign-in at the gateway's public URL (by default the address it listens on), through the upstream."""
    host, port = listener.getsockname()[:2]
    public = settings.public_url or f"http://{f'[{host}]' if ':' in host else host}:{port}"
    places = OAuthPlaces(issuer=public, resource=public + MCP_PATH, callback=public + CALLBACK_PATH)
    identity = upstream(UpstreamSettings(issuer=sign_in.issuer, client_id=sign_in.client_id,
                                         client_secret=sign_in.client_secret))
    provider = GatewayOAuthProvider(store=gate.oauth_store, upstream=identity, places=places,
                                    open_signup=sign_in.open_signup)
    try:
        face = OAuthFace(provider)
    except ValueError as exc:  # the SDK's check of the issuer URL
        raise ConfigError(f"OAuth issuer {public}: {exc} (set --public-url to the gateway's https URL)") from exc
    logger.info("OAuth sign-in through %s; issuer %s", sign_in.issuer, public)
    return face


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the command's `cancel_on_signal` owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _stop_when(requested: anyio.Event, web: uvicorn.Server) -> None:
    """Once a stop is requested (or this task is cancelled: a second signal), ask uvicorn to finish its requests
    and stop."""
    try:
        await requested.wait()
    finally:
        web.should_exit = True


async def _cancel_when(requested: anyio.Event, scope: anyio.CancelScope) -> None:
    await requested.wait()
    scope.cancel()


def _listen(host: str, port: int) -> socket.socket:
    """The bound listening socket, or a ConfigError that says why (in use, not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns TCP_NODELAY on only for such sockets; without it every answer
    # (headers, then body) waited ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        raise ConfigError(f"--http {host}:{port} {why}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
