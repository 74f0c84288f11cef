"""The graph view: page data from a `ToolGraph`, and one self-contained, escaped HTML page drawn from it."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.graph import Edge, ToolGraph, build_graph
from gateway.graph.image import png_available, render_png
from gateway.graph.view import MAX_RADIUS, MIN_RADIUS, PALETTE, colour, graph_view, render_html

CAPABILITY = "capability:0b7c5a0e-3f0e-4f4e-9d55-0d7a4f1b2c3d"


def _clique(names: list[str]) -> list[Edge]:
    return [Edge(u, v, "dependency", "observed") for u, v in itertools.permutations(names, 2)]


def two_cliques() -> ToolGraph:
    """fs:* and web:* as two communities joined by one edge; a capability containing two fs tools; a lone tool."""
    return build_graph(
        ["time:now"],
        [
            *_clique(["fs:read", "fs:write", "fs:list"]),
            *_clique(["web:fetch", "web:post", "web:parse"]),
            Edge("fs:read", "web:fetch", "sequence", "inferred"),
            Edge(CAPABILITY, "fs:read", "contains", "observed"),
            Edge(CAPABILITY, "fs:write", "contains", "observed"),
        ],
    )


NODE = re.compile(r'<circle [^>]*r="([0-9.]+)" fill="(#[0-9a-f]{6})">.*?</circle><text [^>]*>([^<]*)</text>',
                  re.DOTALL)


def circle_radii(page: str) -> dict[str, float]:
    """Each drawn node's radius, by the name written beside it."""
    return {name: float(radius) for radius, _, name in NODE.findall(page)}


def test_the_page_data_names_kinds_and_ranks_every_node_and_weighs_every_edge() -> None:
    graph = two_cliques()

    view = graph_view(graph, {CAPABILITY: "fs:backup"})

    assert [n.id for n in view.nodes] == list(graph.nodes)
    by_id = {n.id: n for n in view.nodes}
    assert by_id[CAPABILITY].label == "fs:backup" and by_id[CAPABILITY].kind == "capability"
    assert by_id["fs:read"].label == "fs:read" and by_id["fs:read"].kind == "tool"
    assert all(n.community == graph.communities[n.id] and n.pagerank == graph.pagerank[n.id] for n in view.nodes)
    assert len(view.edges) == graph.adjacency.nnz
    assert all(e.weight == graph.edge(e.source, e.target) for e in view.edges)
    assert {(e.source, e.target) for e in view.edges} >= {("fs:read", "web:fetch"), (CAPABILITY, "fs:write")}


def test_the_layout_is_the_same_for_the_same_seed_and_stays_on_the_page() -> None:
    graph = two_cliques()

    first, again = graph_view(graph), graph_view(graph)

    assert first == again
    assert all(0 < n.x < 1000 and 0 < n.y < 700 for n in first.nodes)


def test_the_page_shows_every_node_by_its_label() -> None:
    page = render_html(graph_view(two_cliques(), {CAPABILITY: "fs:backup"}))

    assert set(circle_radii(page)) == {
        "fs:read", "fs:write", "fs:list", "web:fetch", "web:post", "web:parse", "time:now", "fs:backup"}
    assert "8 nodes, 15 edges, 3 communities" in page


def test_each_community_has_one_colour_and_no_two_communities_share_one() -> None:
    graph = two_cliques()
    page = render_html(graph_view(graph))

    colour_of = {name: fill for _, fill, name in NODE.findall(page)}
    by_community: dict[int, set[str]] = {}
    for node, community in graph.communities.items():
        by_community.setdefault(community, set()).add(colour_of[node])
    assert len(by_community) >= 3
    assert all(len(colours) == 1 for colours in by_community.values())
    assert len({next(iter(c)) for c in by_community.values()}) == len(by_community)


def test_colours_stay_distinct_beyond_the_palette() -> None:
    colours = [colour(c) for c in range(len(PALETTE) + 200)]

    assert len(set(colours)) == len(colours)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)


def test_a_higher_pagerank_draws_a_larger_circle() -> None:
    graph = two_cliques()
    radii = circle_radii(render_html(graph_view(graph)))

    ranked = sorted(graph.nodes, key=lambda n: graph.pagerank[n])
    for lower, higher in itertools.pairwise(ranked):
        if graph.pagerank[higher] > graph.pagerank[lower] * 1.001:
            assert radii[higher] > radii[lower], (lower, higher)
    assert radii[ranked[0]] == MIN_RADIUS and radii[ranked[-1]] == MAX_RADIUS


def test_heavier_edges_are_drawn_wider() -> None:
    page = render_html(graph_view(two_cliques()))

    widths = {title: float(width) for width, title in
              re.findall(r'<line [^>]*stroke-width="([0-9.]+)"><title>([^<]*)</title>', page)}
    assert widths["fs:read -&gt; fs:write (weight 1.00)"] > widths["fs:read -&gt; web:fetch (weight 0.35)"]


def test_the_page_references_nothing_on_the_network() -> None:
    page = render_html(graph_view(two_cliques()))

    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link\b", page, re.IGNORECASE)
    assert not re.search(r"@import|url\((?!#)", page)
    assert page.count("<script") == 2 and "<style>" in page


def test_the_page_has_a_search_box_and_hover_titles_with_id_community_and_pagerank() -> None:
    graph = two_cliques()
    page = render_html(graph_view(graph, {CAPABILITY: "fs:backup"}))

    assert '<input id="search" type="search"' in page
    community, rank = graph.communities[CAPABILITY], graph.pagerank[CAPABILITY]
    assert f"<title>fs:backup\n{CAPABILITY}\ncapability, community {community}, PageRank {rank:.4f}</title>" in page


def test_labels_that_look_like_markup_are_escaped_in_the_svg_and_in_the_data() -> None:
    hostile = '</script><script>alert("x")</script>&'
    graph = build_graph([], [Edge("evil:<b>tool</b>", "fs:read", "dependency", "observed"),
                             Edge(CAPABILITY, "fs:read", "contains", "observed")])

    page = render_html(graph_view(graph, {CAPABILITY: hostile}), title="<i>graph</i>")

    assert "<script>alert" not in page and "<b>tool" not in page and "<i>graph" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert page.lower().count("</script") == 2  # the two script elements' own end tags: nothing closes one early
    data = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', page, re.DOTALL)
    assert data is not None
    labels = {n["id"]: n["label"] for n in json.loads(data.group(1))["nodes"]}
    assert labels[CAPABILITY] == hostile and labels["evil:<b>tool</b>"] == "evil:<b>tool</b>"


def test_an_empty_graph_and_a_single_node_still_make_a_page() -> None:
    empty = render_html(graph_view(ToolGraph.empty()))
    single = graph_view(build_graph(["only"], []))

    assert "0 nodes, 0 edges, 0 communities" in empty
    assert (single.nodes[0].x, single.nodes[0].y) == (500.0, 350.0)
    assert "only</text>" in render_html(single)


@pytest.mark.skipif(not png_available(), reason="matplotlib is not installed (optional, only for --png)")
def test_the_png_is_an_image_of_the_same_view() -> None:
    png = render_png(graph_view(two_cliques()))

    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


FAKE_DOM = """
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const data = JSON.parse(page.match(/id="graph-data">([\\s\\S]*?)<\\/script>/)[1]);
function element() {
  const classes = new Set(), listeners = {};
  return { classes, value: "", checked: false, textContent: "", viewBox: { baseVal: { x: 0, y: 0 } },
           classList: { toggle(name, on) { if (on) { classes.add(name); } else { classes.delete(name); } } },
           addEventListener(type, listener) { listeners[type] = listener; },
           fire(type, event) { listeners[type](event); } };
}
const nodes = data.nodes.map(element), edges = data.edges.map(element);
const ids = { "graph-data": { textContent: JSON.stringify(data) }, graph: element(), search: element(),
              filter: element(), matches: element() };
global.document = { getElementById: (id) => ids[id],
                    querySelectorAll: (selector) => (selector.includes(".node") ? nodes : edges) };
global.window = element();
eval(page.match(/<script>([\\s\\S]*?)<\\/script>/)[1]);
ids.search.value = process.argv[3];
ids.search.fire("input");
ids.filter.checked = true;
ids.filter.fire("change");
console.log(JSON.stringify({
  matches: ids.matches.textContent, filtering: ids.graph.classes.has("filtering"),
  matched: data.nodes.filter((n, i) => nodes[i].classes.has("match")).map((n) => n.id),
  dimmed: data.nodes.filter((n, i) => nodes[i].classes.has("dim")).map((n) => n.id),
  lit: data.edges.filter((e, i) => !edges[i].classes.has("dim")).map((e) => [e.source, e.target]),
}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="no node binary on PATH to run the page's script")
def test_the_search_script_highlights_names_containing_the_text_whatever_the_case(tmp_path: Path) -> None:
    page, script = tmp_path / "graph.html", tmp_path / "fake_dom.js"
    page.write_text(render_html(graph_view(two_cliques(), {CAPABILITY: "FS:Backup"})), encoding="utf-8")
    script.write_text(FAKE_DOM, encoding="utf-8")
    node = shutil.which("node")
    assert node is not None

    done = subprocess.run([node, str(script), str(page), "fs:"], capture_output=True, text=True, timeout=60,
                          check=False)

    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert sorted(found["matched"]) == sorted([CAPABILITY, "fs:list", "fs:read", "fs:write"])
    assert sorted(found["dimmed"]) == ["time:now", "web:fetch", "web:parse", "web:post"]
    assert found["matches"] == "4 matches" and found["filtering"]
    assert ["fs:read", "web:fetch"] not in found["lit"] and [CAPABILITY, "fs:read"] in found["lit"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium binary on PATH for a headless check")
def test_a_headless_browser_renders_the_page_offline(tmp_path: Path) -> None:
    page = tmp_path / "graph.html"
    page.write_text(render_html(graph_view(two_cliques(), {CAPABILITY: "fs:backup"})), encoding="utf-8")
    chromium = shutil.which("chromium")
    assert chromium is not None
    dom = subprocess.run([chromium, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60, check=True).stdout

    assert dom.count('class="node ') == 8 and "fs:backup" in dom
