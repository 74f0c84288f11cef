"""What the bench scripts share: percentiles, tables, results files, machine notes, MCP clients over stdio.

Scripts run from a checkout (``python bench/bench_x.py``), where `gateway` is not installed: the repository
root is put on ``sys.path`` here, once. Spawned servers and gateways write their stderr to a log file in the
run's temporary directory, so the tables stay readable.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import mcp_types as types  # noqa: E402
import psutil  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BENCH = ROOT / "bench"
CLIENT_TIMEOUT_S = 120.0


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of `samples`."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(samples: Sequence[float]) -> dict[str, float]:
    """P50, P95, P99 and count of one run's samples."""
    return {
        "p50": percentile(samples, 50), "p95": percentile(samples, 95), "p99": percentile(samples, 99),
        "n": float(len(samples)),
    }


def median_of_runs(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each statistic's median over runs (what the tables print), plus the worst run's P95."""
    keys = [k for k in runs[0] if k != "n"]
    merged = {k: statistics.median(r[k] for r in runs) for k in keys}
    if "p95" in merged:
        merged["p95_max"] = max(r["p95"] for r in runs)
    merged["runs"] = float(len(runs))
    merged["n_per_run"] = runs[0].get("n", 0.0)
    return merged


def timed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1e3


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table; floats with 2 decimals, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(_aligned(c, w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(lines)


def _aligned(cell: str, width: int) -> str:
    """Numbers to the right, words to the left."""
    try:
        float(cell.rstrip("%x"))
    except ValueError:
        return cell.ljust(width)
    return cell.rjust(width)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def machine() -> dict[str, Any]:
    """What the numbers depend on: cores, load, CPU model, Python."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "platform": platform.platform(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    """`data` plus the machine notes as ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"bench": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": source(), "machine_end": machine(),
            **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def source() -> dict[str, Any]:
    """The commit measured, and whether the gateway's code differs from it (None outside a git checkout)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--", "gateway", "migrations"], cwd=ROOT,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without ``PML_*`` (a developer's own settings must not leak into a bench run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PML_")}
    return {**env, **extra}


def servers_file(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def faulty_server() -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(ROOT / "examples" / "faulty_server.py")]}


def catalog_servers(size: int, servers: int, catalog_dir: Path) -> dict[str, Any]:
    """The servers-file entries of the fake catalog servers (`_catalog_server.py`), one per server name."""
    from _catalog import server_name

    script = str(BENCH / "_catalog_server.py")
    return {
        server_name(i): {
            "command": sys.executable,
            "args": [script, "--size", str(size), "--server", server_name(i), "--servers", str(servers),
                     "--catalog", str(catalog_dir)],
        }
        for i in range(servers)
    }


@asynccontextmanager
async def stdio_session(
    command: Sequence[str], *, errlog: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    """The SDK's client over stdio, legacy initialize handshake (as the gateway talks to its own servers)."""
    params = StdioServerParameters(command=command[0], args=list(command[1:]), env=env or clean_env(), cwd=str(ROOT))
    with errlog.open("a", encoding="utf-8") as err:
        transport = stdio_client(params, errlog=err)
        async with Client(transport, mode="legacy", read_timeout_seconds=CLIENT_TIMEOUT_S) as client:
            yield client


async def call(client: Client, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """One ``tools/call`` on the wire, as is: no output-schema re-validation (which may re-list tools)."""
    request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
    return await client.session.send_request(request, types.CallToolResult)


@contextmanager
def logs_shown_on_failure(log: Path, lines: int = 40) -> Iterator[None]:
    """On an exception, print the last `lines` of the spawned processes' stderr before it propagates."""
    try:
        yield
    except BaseException:
        if log.exists():
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            print(f"--- last {len(tail)} lines of {log} ---", *tail, "---", sep="\n", file=sys.stderr)
        raise


def descendants(match: Callable[[list[str]], bool]) -> list[psutil.Process]:
    """This process's descendants whose command line satisfies `match`."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if match(process.cmdline()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def postgres_on(data_dir: Path) -> list[int]:
    """Pids of postmasters still serving a data directory under `data_dir` (none after a clean stop)."""
    pids = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if process.info["name"] == "postgres" and str(data_dir) in " ".join(process.info["cmdline"] or []):
                pids.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids
