"""How fast the learned graph is rebuilt and queried, at 1,000 and 10,000 tools with 10 edges per tool.

Run: ``python bench/bench_graph.py [--sizes 1000 10000] [--runs 5] [--pairs 1000]``.
Random weighted digraphs (each tool links to 10 distinct others with a random type and origin heavy enough to
enter the graph). Prints the median over `runs` of: `build_graph` in full, PageRank by scipy power iteration
against ``networkx.pagerank`` on the same graph, Louvain (python-louvain, as used, and networkx's own for
comparison), and Adamic-Adar and cheapest-path queries over `pairs` random pairs. Writes
``bench/results/graph.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import _common
import networkx as nx
import numpy as np

from gateway.graph import EDGE_TYPE_WEIGHT, MIN_WEIGHT, SOURCE_FACTOR, Edge, ToolGraph, build_graph
from gateway.graph.communities import louvain
from gateway.graph.pagerank import pagerank

KINDS = [(t, s) for t in EDGE_TYPE_WEIGHT for s in SOURCE_FACTOR if EDGE_TYPE_WEIGHT[t] * SOURCE_FACTOR[s] > MIN_WEIGHT]
FANOUT = 10


def random_graph(size: int, *, seed: int = 7) -> tuple[list[str], list[Edge]]:
    """`size` tool ids, each with `FANOUT` out-edges to distinct other tools, of random entering kinds."""
    rng = np.random.default_rng(seed)
    names = [f"server{i % 50}:tool_{i:05d}" for i in range(size)]
    edges = []
    for i, source in enumerate(names):
        targets = rng.choice(size - 1, size=FANOUT, replace=False)
        for j in targets.tolist():
            edge_type, origin = KINDS[int(rng.integers(len(KINDS)))]
            edges.append(Edge(source, names[j + (j >= i)], edge_type, origin))
    return names, edges


def median_ms(action: Callable[[], object], runs: int) -> float:
    """The median wall time of `action` over `runs` calls, in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(_common.timed_ms(started))
    return statistics.median(samples)


def networkx_twin(graph: ToolGraph) -> nx.DiGraph:
    """The same directed weighted graph as networkx holds it."""
    twin = nx.DiGraph()
    twin.add_nodes_from(graph.nodes)
    coo = graph.adjacency.tocoo()
    triples = zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    twin.add_weighted_edges_from((graph.nodes[u], graph.nodes[v], w) for u, v, w in triples)
    return twin


def measure(size: int, runs: int, pairs: int) -> dict[str, Any]:
    """All timings at one size, plus how far scipy's PageRank is from networkx's."""
    names, edges = random_graph(size)
    graph = build_graph(names, edges)
    twin = networkx_twin(graph)
    undirected = graph.adjacency.maximum(graph.adjacency.T).tocsr()
    rng = np.random.default_rng(1)
    queries = [(names[a], names[b]) for a, b in rng.integers(size, size=(pairs, 2)).tolist()]
    reference = nx.pagerank(twin, alpha=0.85, weight="weight")
    return {
        "nodes": size,
        "edges": graph.adjacency.nnz,
        "density": graph.density,
        "communities": len(set(graph.communities.values())),
        "pagerank_max_abs_diff_vs_networkx": max(abs(graph.pagerank[n] - reference[n]) for n in names),
        "build_graph_ms": median_ms(lambda: build_graph(names, edges), runs),
        "pagerank_scipy_ms": median_ms(lambda: pagerank(graph.adjacency), runs),
        "pagerank_networkx_ms": median_ms(lambda: nx.pagerank(twin, alpha=0.85, weight="weight"), runs),
        "louvain_python_louvain_ms": median_ms(lambda: louvain(undirected, seed=42), runs),
        "louvain_networkx_ms": median_ms(
            lambda: nx.community.louvain_communities(twin.to_undirected(), weight="weight", seed=42), runs
        ),
        f"adamic_adar_{pairs}_pairs_ms": median_ms(lambda: [graph.adamic_adar(u, v) for u, v in queries], runs),
        f"path_{pairs}_pairs_ms": median_ms(lambda: [graph.path(u, v) for u, v in queries], runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args()
    machine = _common.machine()
    results = [measure(size, args.runs, args.pairs) for size in args.sizes]
    keys = [k for k in results[0] if k.endswith("_ms")]
    rows = [[key.removesuffix("_ms"), *(r[key] for r in results)] for key in keys]
    print(_common.table(["median ms", *(f"{r['nodes']} nodes / {r['edges']} edges" for r in results)], rows))
    for r in results:
        print(f"{r['nodes']} nodes: {r['communities']} communities, PageRank max |scipy - networkx| "
              f"{r['pagerank_max_abs_diff_vs_networkx']:.1e}")
    path = _common.write_results("graph", {"machine_start": machine, "runs": args.runs, "results": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
