"""`serve`: the gateway itself, over stdio or, with ``--http``, over streamable HTTP with API keys (and OAuth
sign-in with ``--oauth-client-id``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``serve [--http HOST:PORT] [--rate-limit N] [--rate-window SECONDS] [--public-url URL]
    [--oauth-client-id ID [--oauth-issuer URL] [--oauth-open-signup]]``."""
    serve = sub.add_parser("serve", parents=[common], help="serve MCP over stdio, or over HTTP with --http")
    serve.add_argument("--http", metavar="HOST:PORT", help="serve MCP over streamable HTTP at /mcp, with API keys "
                       "(e.g. 127.0.0.1:8765; env PML_HTTP)")
    serve.add_argument("--rate-limit", type=int, help="requests per API key per window over HTTP, 0: unlimited "
                       "(env PML_RATE_LIMIT, default 3600)")
    serve.add_argument("--rate-window", type=float, help="seconds per rate-limit window (env PML_RATE_WINDOW, "
                       "default 3600)")
    serve.add_argument("--public-url", metavar="URL", help="the gateway's external URL, its OAuth issuer (env "
                       "PML_PUBLIC_URL, default http://HOST:PORT)")
    serve.add_argument("--oauth-client-id", metavar="ID", help="turn OAuth sign-in on: the gateway's client id at "
                       "the identity provider; its secret from PML_OAUTH_CLIENT_SECRET (env PML_OAUTH_CLIENT_ID)")
    serve.add_argument("--oauth-issuer", metavar="URL", help="'github' (default) or an OpenID Connect issuer URL "
                       "(env PML_OAUTH_ISSUER)")
    serve.add_argument("--oauth-open-signup", action="store_true", default=None, help="a first sign-in makes a "
                       "user; without it only identities linked by `users add --github-id/--oidc-subject` sign in "
                       "(env PML_OAUTH_OPEN_SIGNUP=1)")
    serve.set_defaults(run=_serve)


async def _serve(invocation: Invocation) -> int:
    """Serve the servers of the servers file (one is required) until the first signal; exit 0."""
    config = invocation.required_servers()
    from gateway import app  # the whole runtime: only `serve` pays for importing it

    await app.serve(invocation.settings, config, invocation.shutdown)
    return 0
