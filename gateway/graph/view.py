"""The graph view: a `ToolGraph` as page data, and that data as one self-contained HTML page.

Pure: no I/O. The layout is computed here (networkx spring layout, fixed seed, so the same graph draws the
same way) and drawn as inline SVG; the page carries its CSS and JavaScript inline and references nothing on
the network, so it opens offline. Every name is escaped on the way in: `html.escape` for markup, and the
embedded JSON has ``<``, ``>`` and ``&`` written as unicode escapes, so no label can close a tag.
"""

from __future__ import annotations

import colorsys
import html
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from scipy import sparse

from gateway.graph.page import PAGE
from gateway.graph.snapshot import ToolGraph
from gateway.models import CAPABILITY_PREFIX

if TYPE_CHECKING:
    import networkx as nx

WIDTH, HEIGHT, MARGIN = 1000.0, 700.0, 40.0
MIN_RADIUS, MAX_RADIUS = 4.0, 18.0
LAYOUT_SEED = 7
SPREAD = 3.0
"""Spring length times networkx's default (1/sqrt(n)): tight clusters would hide their members otherwise."""
LABEL_LIMIT = 80
"""Above this many nodes, names are shown only for search matches (and on hover), or the page is unreadable."""
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b",
)
GOLDEN_ANGLE = 137.508

Kind = Literal["tool", "capability"]


@dataclass(frozen=True, slots=True)
class ViewNode:
    """A node as drawn: its name, kind, community, PageRank, radius and position on the page."""

    id: str
    label: str
    kind: Kind
    community: int
    pagerank: float
    size: float
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class ViewEdge:
    """A directed edge as drawn: its heaviest weight."""

    source: str
    target: str
    weight: float


@dataclass(frozen=True, slots=True)
class GraphView:
    """The page data: nodes in id order, edges in (source, target) order."""

    nodes: tuple[ViewNode, ...]
    edges: tuple[ViewEdge, ...]

    @property
    def communities(self) -> tuple[int, ...]:
        """The distinct communities, in increasing order."""
        return tuple(sorted({node.community for node in self.nodes}))

    def as_json(self) -> dict[str, list[dict[str, object]]]:
        """Plain data for the page's script (and anyone reading the page)."""
        return {"nodes": [asdict(n) for n in self.nodes], "edges": [asdict(e) for e in self.edges]}


def graph_view(graph: ToolGraph, labels: Mapping[str, str] | None = None, *, seed: int = LAYOUT_SEED) -> GraphView:
    """The page data of `graph`; `labels` names nodes (e.g. a capability's display name), else the id is shown."""
    names = labels or {}
    positions = _layout(graph, seed)
    radii = _radii(graph)
    nodes = tuple(
        ViewNode(id=node, label=names.get(node, node), kind=_kind(node), community=graph.communities[node],
                 pagerank=graph.pagerank[node], size=radii[node], x=positions[node][0], y=positions[node][1])
        for node in graph.nodes
    )
    coo = graph.adjacency.tocoo()
    edges = sorted(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))
    return GraphView(nodes, tuple(ViewEdge(graph.nodes[u], graph.nodes[v], w) for u, v, w in edges))


def colour(community: int) -> str:
    """A community's colour (hex): the palette first, then hues a golden angle apart, each community its own."""
    if 0 <= community < len(PALETTE):
        return PALETTE[community]
    red, green, blue = colorsys.hls_to_rgb((community * GOLDEN_ANGLE) % 360 / 360, 0.5, 0.55)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def render_html(view: GraphView, *, title: str = "PML Gateway: learned graph") -> str:
    """One self-contained HTML page: inline SVG, CSS and JavaScript; search box, zoom and pan."""
    by_id = {node.id: node for node in view.nodes}
    svg_class = "many" if len(view.nodes) > LABEL_LIMIT else ""
    return PAGE.substitute(
        title=html.escape(title),
        summary=html.escape(_summary(view)),
        legend=_legend(view),
        width=f"{WIDTH:g}", height=f"{HEIGHT:g}", svg_class=svg_class,
        edges="".join(_edge_svg(edge, by_id) for edge in view.edges),
        nodes="".join(_node_svg(i, node) for i, node in enumerate(view.nodes)),
        data=_script_json(view.as_json()),
    )


def _kind(node: str) -> Kind:
    return "capability" if node.startswith(CAPABILITY_PREFIX) else "tool"


def _layout(graph: ToolGraph, seed: int) -> dict[str, tuple[float, float]]:
    """Spring layout of the undirected weighted graph, fitted into the page (a lone node sits in the middle)."""
    if len(graph.nodes) < 2:
        return {node: (WIDTH / 2, HEIGHT / 2) for node in graph.nodes}
    import networkx as nx  # loaded when a graph is first drawn, not at start

    raw = nx.spring_layout(_undirected(graph), k=SPREAD / math.sqrt(len(graph.nodes)), seed=seed, weight="weight")
    return _fitted({node: (float(raw[node][0]), float(raw[node][1])) for node in graph.nodes})


def _undirected(graph: ToolGraph) -> nx.Graph:
    """Nodes in id order, one edge per linked pair weighing its heavier direction."""
    upper = sparse.triu(graph.adjacency.maximum(graph.adjacency.T), k=1).tocoo()
    import networkx as nx

    undirected = nx.Graph()
    undirected.add_nodes_from(graph.nodes)
    undirected.add_weighted_edges_from(
        (graph.nodes[u], graph.nodes[v], w)
        for u, v, w in zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist(), strict=True)
    )
    return undirected


def _fitted(points: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """The points centred in the page and scaled to fit within its margins, keeping the aspect ratio."""
    xs, ys = [p[0] for p in points.values()], [p[1] for p in points.values()]
    centre_x, centre_y = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    scale = (min(WIDTH, HEIGHT) - 2 * MARGIN) / max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    return {node: (round(WIDTH / 2 + (x - centre_x) * scale, 2), round(HEIGHT / 2 + (y - centre_y) * scale, 2))
            for node, (x, y) in points.items()}


def _radii(graph: ToolGraph) -> dict[str, float]:
    """Radius grows with PageRank (area linear in it), from MIN_RADIUS for the lowest to MAX_RADIUS for the
    highest; all equal ranks give the middle radius."""
    if not graph.pagerank:
        return {}
    low, high = min(graph.pagerank.values()), max(graph.pagerank.values())
    if high - low <= 1e-12:
        return {node: (MIN_RADIUS + MAX_RADIUS) / 2 for node in graph.nodes}
    return {node: round(MIN_RADIUS + (MAX_RADIUS - MIN_RADIUS) * math.sqrt((rank - low) / (high - low)), 3)
            for node, rank in graph.pagerank.items()}


def _summary(view: GraphView) -> str:
    return f"{len(view.nodes)} nodes, {len(view.edges)} edges, {len(view.communities)} communities"


def _legend(view: GraphView) -> str:
    """One swatch per community, with how many nodes it has."""
    sizes = Counter(node.community for node in view.nodes)
    return "".join(f'<li><span class="swatch" style="background:{colour(c)}"></span>community {c} ({sizes[c]})</li>'
                   for c in view.communities)


def _edge_svg(edge: ViewEdge, by_id: Mapping[str, ViewNode]) -> str:
    """A line from the source's centre to the target's rim (so the arrow shows), as wide as the edge is heavy."""
    source, target = by_id[edge.source], by_id[edge.target]
    dx, dy = target.x - source.x, target.y - source.y
    length = math.hypot(dx, dy) or 1.0
    end_x, end_y = target.x - dx / length * target.size, target.y - dy / length * target.size
    tip = html.escape(f"{source.label} -> {target.label} (weight {edge.weight:.2f})")
    return (f'<line x1="{source.x:g}" y1="{source.y:g}" x2="{end_x:.2f}" y2="{end_y:.2f}" '
            f'stroke-width="{0.5 + 2.5 * edge.weight:.2f}"><title>{tip}</title></line>')


def _node_svg(index: int, node: ViewNode) -> str:
    """A circle coloured by community with its hover title, and its name beside it."""
    tip = html.escape(f"{node.label}\n{node.id}\n{node.kind}, community {node.community}, "
                      f"PageRank {node.pagerank:.4f}")
    return (f'<g class="node {node.kind}" data-i="{index}"><circle cx="{node.x:g}" cy="{node.y:g}" '
            f'r="{node.size:g}" fill="{colour(node.community)}"><title>{tip}</title></circle>'
            f'<text x="{node.x + node.size + 2:.2f}" y="{node.y + 4:.2f}">{html.escape(node.label)}</text></g>')


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no character of it can end the element or open a comment."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")

