"""`graph`: the learned graph as a self-contained HTML page, and optionally as a PNG image.

The graph is built exactly as the server builds it (`LearningService.refresh` over the stored edges); capability
nodes (``capability:<id>``) are labelled with their display name. Like ``status`` it shares the embedded
Postgres of a running ``serve``. One line on stdout says what was written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from gateway.cli._database import database
from gateway.errors import InvalidRequestError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers
    from gateway.graph import ToolGraph
    from gateway.graph.view import GraphView

MISSING_MATPLOTLIB = ("--png needs matplotlib, which is not installed (pip install 'pml-gateway[png]'); "
                      "the HTML page does not")


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``graph --out PAGE.html [--png IMAGE.png]``."""
    drawing = sub.add_parser("graph", parents=[common], help="the learned graph as a self-contained HTML page")
    drawing.add_argument("--out", required=True, type=Path, help="the HTML page to write")
    drawing.add_argument("--png", type=Path, help="also a static PNG image (needs matplotlib)")
    drawing.set_defaults(run=_graph)


async def _graph(invocation: Invocation) -> int:
    return await graph(invocation.settings, out=invocation.args.out, png=invocation.args.png)


async def graph(settings: Settings, *, out: Path, png: Path | None) -> int:
    """`graph --out PAGE.html [--png IMAGE.png]`: write the page (and the image); exit 2 if --png cannot be drawn."""
    import anyio.to_thread

    from gateway.graph.image import png_available, render_png
    from gateway.graph.view import render_html
    from gateway.services.capabilities import labelled_view
    from gateway.services.learning import LearningService

    if png is not None and not png_available():
        sys.stderr.write(f"pml-gateway: {MISSING_MATPLOTLIB}\n")
        return 2
    async with database(settings) as db:
        limiter = anyio.CapacityLimiter(1)
        learned = await LearningService(store=db.learning, limiter=limiter).refresh()
        view = await labelled_view(learned, db.capabilities, limiter)
    await _write(out, render_html(view).encode("utf-8"), option="--out")
    written = [str(out)]
    if png is not None:
        await _write(png, await anyio.to_thread.run_sync(render_png, view), option="--png")
        written.append(str(png))
    sys.stdout.write(f"{_counts(learned, view)}: wrote {' and '.join(written)}\n")
    return 0


async def _write(path: Path, content: bytes, *, option: str) -> None:
    """Write the file; an OS error (no such folder, no permission) becomes a message naming the option."""
    try:
        await anyio.Path(path).write_bytes(content)
    except OSError as exc:
        raise InvalidRequestError(f"cannot write {path}: {exc.strerror or exc}", field=option) from exc


def _counts(learned: ToolGraph, view: GraphView) -> str:
    return f"{len(learned.nodes)} nodes, {len(view.edges)} edges, {len(view.communities)} communities"
