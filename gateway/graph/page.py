"""The page of the graph view: inline CSS and JavaScript, nothing fetched from the network.

`Template` placeholders (all filled, already escaped, by `gateway.graph.view.render_html`): title, summary,
legend, width, height, svg_class, edges, nodes (SVG markup) and data (the page data as script-safe JSON, read
by the search). The script matches nodes and edges to the data by position: both are written in data order.
"""

from __future__ import annotations

from string import Template

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { margin: 0; font: 14px system-ui, sans-serif; color: #222; background: #fafafa; }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 8px 12px;
         border-bottom: 1px solid #ddd; background: #fff; }
h1 { font-size: 16px; margin: 0; }
#search { padding: 4px 8px; min-width: 240px; }
#matches, .summary { color: #666; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 10px; margin: 0; padding: 4px 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; }
svg { display: block; width: 100%; height: calc(100vh - 90px); cursor: grab; background: #fff; }
#edges line { stroke: #999; stroke-opacity: 0.6; marker-end: url(#arrow); }
.node circle { stroke: #fff; stroke-width: 1.5; }
.node.capability circle { stroke: #222; stroke-width: 2; stroke-dasharray: 3 2; }
.node text { font-size: 10px; fill: #333; pointer-events: none; }
svg.many .node text { display: none; }
svg.many .node.match text { display: inline; }
.node.match circle { stroke: #000; stroke-width: 3; }
.dim { opacity: 0.12; }
svg.filtering .dim { display: none; }
</style>
</head>
<body>
<header>
<h1>$title</h1>
<span class="summary">$summary</span>
<input id="search" type="search" placeholder="search by name" autocomplete="off">
<label><input id="filter" type="checkbox"> hide others</label>
<span id="matches"></span>
</header>
<ul class="legend">$legend</ul>
<svg id="graph" class="$svg_class" viewBox="0 0 $width $height" role="img" aria-label="$summary">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="5" markerHeight="5"
orient="auto"><path d="M0,0L10,5L0,10z" fill="#999"></path></marker></defs>
<g id="viewport"><g id="edges">$edges</g><g id="nodes">$nodes</g></g>
</svg>
<script type="application/json" id="graph-data">$data</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var svg = document.getElementById("graph");
  var nodes = document.querySelectorAll("#nodes .node");
  var edges = document.querySelectorAll("#edges line");
  var box = document.getElementById("search");
  var filter = document.getElementById("filter");
  var matches = document.getElementById("matches");

  function search() {
    var text = box.value.trim().toLowerCase();
    var hit = {};
    var count = 0;
    data.nodes.forEach(function (node, i) {
      var found = text !== "" && (node.label.toLowerCase().indexOf(text) >= 0 ||
                                  node.id.toLowerCase().indexOf(text) >= 0);
      if (found) { hit[node.id] = true; count += 1; }
      nodes[i].classList.toggle("match", found);
      nodes[i].classList.toggle("dim", text !== "" && !found);
    });
    data.edges.forEach(function (edge, i) {
      edges[i].classList.toggle("dim", text !== "" && !(hit[edge.source] && hit[edge.target]));
    });
    matches.textContent = text === "" ? "" : count + (count === 1 ? " match" : " matches");
    svg.classList.toggle("filtering", filter.checked && text !== "");
  }
  box.addEventListener("input", search);
  filter.addEventListener("change", search);

  var view = svg.viewBox.baseVal;
  function toPage(event) {
    var box = svg.getBoundingClientRect();
    return [view.x + (event.clientX - box.left) / box.width * view.width,
            view.y + (event.clientY - box.top) / box.height * view.height];
  }
  svg.addEventListener("wheel", function (event) {
    event.preventDefault();
    var at = toPage(event);
    var factor = event.deltaY > 0 ? 1.15 : 1 / 1.15;
    view.x = at[0] - (at[0] - view.x) * factor;
    view.y = at[1] - (at[1] - view.y) * factor;
    view.width *= factor;
    view.height *= factor;
  }, { passive: false });
  var drag = null;
  svg.addEventListener("mousedown", function (event) { drag = toPage(event); });
  window.addEventListener("mouseup", function () { drag = null; });
  svg.addEventListener("mousemove", function (event) {
    if (drag === null) { return; }
    var at = toPage(event);
    view.x -= at[0] - drag[0];
    view.y -= at[1] - drag[1];
  });
}());
</script>
</body>
</html>
""")
