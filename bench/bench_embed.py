"""How fast the default embedder is: one short query (the search hot path) and a catalog of tool texts.

Run: ``python bench/bench_embed.py [--threads N] [--runs 200] [--tools 1000] [--repeats 3]``.
Prints the query latency (median, P95 over `runs`) and the catalog throughput (median over `repeats`).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import _common  # noqa: F401  (puts the repository root on sys.path, as in the other scripts)

from gateway.embed import load_embedder

QUERY = "what time is it in Tokyo right now please"
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


def query_latency_ms(threads: int, runs: int) -> tuple[float, float]:
    """Median and P95 of embedding `QUERY` alone, after a warm-up."""
    embedder = load_embedder(threads=threads)
    for _ in range(20):
        embedder.embed([QUERY])
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        embedder.embed([QUERY])
        samples.append((time.perf_counter() - started) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def catalog_rate(threads: int, count: int, repeats: int) -> float:
    """Median tools per second of embedding `count` tool texts in one call."""
    embedder = load_embedder(threads=threads)
    texts = tool_texts(count)
    embedder.embed(texts[:64])
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed(texts)
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    median, p95 = query_latency_ms(args.threads, args.runs)
    print(
        f"query ({len(QUERY.split())} words, {args.threads} thread(s)): "
        f"median {median:.2f} ms, P95 {p95:.2f} ms over {args.runs} runs"
    )
    rate = catalog_rate(args.threads, args.tools, args.repeats)
    print(f"catalog ({args.tools} tool texts of ~20 words): median {rate:.0f} tools/s")


if __name__ == "__main__":
    main()
