"""Profiles of a running gateway: py-spy attached by pid, or the gateway run under cProfile; top-N summaries.

py-spy samples the stacks of the thread holding the GIL (``--gil``: its idle detection counted threads blocked in
a queue or waitpid as busy), so this is where the gateway's Python CPU goes: "cumulative" is the share of
samples in which a function is on the stack (frames under more than 90% of them, the interpreter's
and event loop's entry points, are left out), and "self" the share in which it is the innermost frame.
cProfile, the fallback, covers the whole life of the gateway process (its imports included) in seconds.
"""

from __future__ import annotations

import pstats
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

PY_SPY_RATE = 500
SCAFFOLD_SHARE = 0.9
_LINE = re.compile(r":\d+\)$")
_PREFIX = re.compile(r"\(/[^()]*?(?:site-packages/|lib/python3\.\d+/|/(?=gateway/|examples/))")


async def start_py_spy(pid: int, output: Path, fmt: str) -> anyio.abc.Process:
    """py-spy recording `pid` into `output` until `stop_py_spy`.

    Blocking mode (py-spy pauses the process for each sample): nonblocking reads of a busy interpreter tore
    about a third of the stacks here. The profiled batch is not one of the measured ones.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [
        spy, "record", "--pid", str(pid), "--format", fmt, "--output", str(output), "--rate", str(PY_SPY_RATE),
        "--gil",
    ]
    process = await anyio.open_process(command, stdout=None, stderr=None)
    await anyio.sleep(0.5)  # py-spy attaches asynchronously; a few lost samples at the start are harmless
    return process


async def stop_py_spy(process: anyio.abc.Process) -> None:
    """SIGINT makes py-spy write its file and exit."""
    process.send_signal(signal.SIGINT)
    with anyio.fail_after(30):
        await process.wait()


def _frame_key(frame: str) -> str:
    return _PREFIX.sub("(", _LINE.sub(")", frame))


def summarise_raw(path: Path, top: int = 15) -> dict[str, Any]:
    """Top `top` functions by cumulative and by self share of the samples in a py-spy raw (collapsed) file."""
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for key in set(frames):
            cumulative[key] += count

    def share(n: int) -> float:
        return round(100.0 * n / max(total, 1), 1)

    # The interpreter's and the event loop's entry frames are under every sample: they say nothing.
    informative = [(name, n) for name, n in cumulative.most_common() if n < SCAFFOLD_SHARE * total]
    return {
        "samples": total,
        "cumulative_pct": [(name, share(n)) for name, n in informative[:top]],
        "self_pct": [(name, share(n)) for name, n in own.most_common(top)],
    }


def summarise_cprofile(path: Path, top: int = 15) -> dict[str, Any]:
    """Top `top` functions by cumulative and by own time (seconds) from a cProfile dump."""
    stats = pstats.Stats(str(path))
    rows = stats.stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        return _frame_key(f"{key[2]} ({key[0]}:{key[1]})")

    root = max((v[3] for v in rows.values()), default=0.0)
    informative = {k: v for k, v in rows.items() if v[3] < SCAFFOLD_SHARE * root}
    by_cum = sorted(informative.items(), key=lambda kv: kv[1][3], reverse=True)[:top]
    by_own = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return {
        "cumulative_s": [(name(k), round(v[3], 3)) for k, v in by_cum],
        "self_s": [(name(k), round(v[2], 3)) for k, v in by_own],
    }
