"""A static PNG of the graph view, drawn with matplotlib when it is installed (the optional extra ``png``).

The picture matches the page: the same layout, colours by community, radius by PageRank, edge width by
weight. `png_available` says whether it can be drawn; `render_png` returns the bytes (no file is written here).
"""

from __future__ import annotations

import importlib.util
import io
from typing import Any

from gateway.graph.view import HEIGHT, LABEL_LIMIT, WIDTH, GraphView, colour

POINTS_PER_UNIT = 0.72
"""The figure is WIDTH/100 inches wide for WIDTH page units, at 72 points per inch."""


def png_available() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def render_png(view: GraphView, *, dpi: int = 150) -> bytes:
    """The view as a PNG image; ImportError when matplotlib is missing (see `png_available`)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=dpi)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, WIDTH)
    axes.set_ylim(HEIGHT, 0)  # the page's y axis points down
    axes.set_axis_off()
    _draw_edges(axes, view)
    _draw_nodes(axes, view)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _draw_edges(axes: Any, view: GraphView) -> None:
    """Grey segments, as wide as the edges are heavy, under the nodes."""
    from matplotlib.collections import LineCollection

    at = {node.id: (node.x, node.y) for node in view.nodes}
    segments = [(at[edge.source], at[edge.target]) for edge in view.edges]
    widths = [0.3 + 1.5 * edge.weight for edge in view.edges]
    axes.add_collection(LineCollection(segments, linewidths=widths, colors="#999999", alpha=0.6, zorder=1))


def _draw_nodes(axes: Any, view: GraphView) -> None:
    """Discs coloured by community (capabilities ringed in black), named when there are few enough."""
    if not view.nodes:
        return
    axes.scatter([n.x for n in view.nodes], [n.y for n in view.nodes], zorder=2,
                 s=[(2 * n.size * POINTS_PER_UNIT) ** 2 for n in view.nodes],
                 c=[colour(n.community) for n in view.nodes],
                 edgecolors=["#222222" if n.kind == "capability" else "#ffffff" for n in view.nodes],
                 linewidths=1.0)
    if len(view.nodes) <= LABEL_LIMIT:
        for node in view.nodes:
            axes.text(node.x + node.size + 2, node.y, node.label, fontsize=6, va="center", zorder=3,
                      parse_math=False)  # a `$` in a name is not TeX
