"""How fast the default embedder is: a short and a long query (the search hot path) and a catalog of tool texts.

Run: ``python bench/bench_embed.py [--runs 200] [--tools 1000] [--repeats 3]``.
For one onnxruntime thread and for the gateway's default (`default_threads`, two or the cores available): the
latency of each query alone (median, P95 over `runs`); the process's CPU time per query when queries arrive
50 ms apart, which shows what a thread pool spinning between runs costs; and the catalog throughput (median
over `repeats`). Then, in a fresh process with the default embedder, the resident memory after loading it,
after the catalog (in the indexer's 64-text batches) and after 256 texts of 120-220 words (what a server
with long tool descriptions brings). Writes ``bench/results/embed.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil
from _common import percentile, table, write_results

from gateway.embed import OnnxEmbedder, load_embedder
from gateway.embed.onnx import default_threads

SHORT = "what time is it in Tokyo right now please"
LONG = (
    "I need to plan a trip to Tokyo next month: find flights from Berlin that arrive before noon on a Friday, "
    "check the weather forecast for the first week, book a hotel near Shinjuku station for five nights, and "
    "convert the total cost into euros so I can compare it with my budget"
)
IDLE_S = 0.05
WORDS = (
    "read write list search create delete update file directory repository commit branch issue pull request "
    "query table row database time zone convert current calendar event message channel user email send "
    "fetch url page html markdown image resize upload download memory note entity relation graph node"
).split()


def tool_texts(count: int, *, seed: int = 7) -> list[str]:
    """`count` texts shaped like ``name | description`` of about 20 words, of varied length."""
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{i}"
        description = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 26)))
        texts.append(f"{name} | {description.capitalize()}.")
    return texts


def latency_ms(embedder: OnnxEmbedder, text: str, runs: int) -> dict[str, float]:
    """Median and P95 of embedding `text` alone, back to back, after a warm-up."""
    for _ in range(20):
        embedder.embed([text])
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        embedder.embed([text])
        samples.append((time.perf_counter() - started) * 1e3)
    return {"p50": statistics.median(samples), "p95": percentile(samples, 95)}


def cpu_ms_per_spaced_query(embedder: OnnxEmbedder, runs: int) -> float:
    """This process's CPU ms per long query when queries come `IDLE_S` apart (a spinning pool burns the gap)."""
    started = time.process_time()
    for _ in range(runs):
        embedder.embed([LONG])
        time.sleep(IDLE_S)
    return (time.process_time() - started) * 1e3 / runs


def catalog_rate(embedder: OnnxEmbedder, count: int, repeats: int) -> float:
    """Median tools per second of embedding `count` tool texts in one call."""
    texts = tool_texts(count)
    embedder.embed(texts[:64])
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed(texts)
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def long_texts(count: int, *, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 220))) for _ in range(count)]


def memory_probe(tools: int) -> dict[str, float]:
    """This process's RSS in MB: the default embedder loaded, then after `tools` texts, then after long ones."""

    def rss() -> float:
        return float(psutil.Process().memory_info().rss / 2**20)

    embedder = load_embedder()
    embedder.embed(["warm up"])
    marks = {"loaded": rss()}
    for name, texts in (("catalog", tool_texts(tools)), ("long_texts", long_texts(256))):
        for start in range(0, len(texts), 64):
            embedder.embed(texts[start : start + 64])
        marks[f"after_{name}"] = rss()
    return marks


def memory_mb(tools: int) -> dict[str, float]:
    """`memory_probe` in a fresh interpreter (RSS only grows: the latency runs above would hide it)."""
    probe = subprocess.run([sys.executable, __file__, "--memory-probe", "--tools", str(tools)],
                           check=True, capture_output=True, text=True)
    marks: dict[str, float] = json.loads(probe.stdout.splitlines()[-1])
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        sys.stdout.write(json.dumps(memory_probe(args.tools)) + "\n")
        return
    results: dict[str, Any] = {}
    for threads in sorted({1, default_threads()}):
        embedder = load_embedder(threads=threads)
        results[str(threads)] = {
            "short_ms": latency_ms(embedder, SHORT, args.runs),
            "long_ms": latency_ms(embedder, LONG, args.runs),
            "cpu_ms_per_spaced_query": cpu_ms_per_spaced_query(embedder, min(args.runs, 60)),
            "tools_per_s": catalog_rate(embedder, args.tools, args.repeats),
        }
    rows = [[threads, r["short_ms"]["p50"], r["short_ms"]["p95"], r["long_ms"]["p50"], r["long_ms"]["p95"],
             r["cpu_ms_per_spaced_query"], r["tools_per_s"]] for threads, r in results.items()]
    print(f"queries of {len(SHORT.split())} and {len(LONG.split())} words, {args.runs} runs each; "
          f"{args.tools} tool texts of ~20 words, median of {args.repeats}")
    print(table(["threads", "short P50 ms", "short P95", "long P50 ms", "long P95",
                 f"CPU ms/long query {IDLE_S * 1e3:.0f} ms apart", "tools/s"], rows))
    memory = memory_mb(args.tools)
    print(f"RSS of a fresh process with the default embedder: loaded {memory['loaded']:.0f} MB, after "
          f"{args.tools} tool texts {memory['after_catalog']:.0f} MB, after 256 texts of 120-220 words "
          f"{memory['after_long_texts']:.0f} MB")
    write_results("embed", {"args": vars(args), "default_threads": default_threads(),
                            "by_threads": results, "rss_mb": memory})


if __name__ == "__main__":
    main()
