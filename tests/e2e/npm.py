"""Published MCP servers, the MCP Inspector and a certified OpenID provider (``oidc-provider``, the upstream of the
OAuth tests) from npm, pinned, in one prefix directory that tests and benches share.

``python3 tests/e2e/npm.py`` installs them (what .ci/run does): with npm into ``$PML_TEST_NPM_PREFIX``, by default
``~/.cache/pml-gateway-npm``; it does nothing when the pinned versions are already there, so a second run costs
no network. Importing this module needs only the standard library (.ci/run installs before pytest exists);
`binary` finds one command's path, or skips the test that asked for it (under ``CI``, fails it: CI installs them).

The Inspector is pinned to its last 1.x: 2.x needs node >= 22.19 and this machine has node 20. 1.0.3's own
``engines`` asks for node >= 22.7.5 (npm warns), yet its ``--cli`` mode, all the tests use, runs on node 20.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = {
    "@modelcontextprotocol/server-everything": "2026.8.31",
    "@modelcontextprotocol/server-memory": "2026.8.31",
    "@modelcontextprotocol/server-filesystem": "2026.8.31",
    "@modelcontextprotocol/inspector": "1.0.3",
    "oidc-provider": "9.13.3",
}
"""Exact versions (their own dependencies resolve within the ranges these declare)."""
INSTALL_TIMEOUT_S = 600.0
_PREFIX_VARIABLE = "PML_TEST_NPM_PREFIX"


def prefix() -> Path:
    """Where the packages are (or go): ``$PML_TEST_NPM_PREFIX``, or ``~/.cache/pml-gateway-npm``."""
    return Path(os.environ.get(_PREFIX_VARIABLE) or Path.home() / ".cache" / "pml-gateway-npm")


def missing(where: Path | None = None) -> list[str]:
    """The pinned ``name@version`` specs not installed in `where` (the prefix by default)."""
    root = (where or prefix()) / "node_modules"
    return [f"{name}@{version}" for name, version in PACKAGES.items() if _version(root / name) != version]


def binary(name: str) -> str:
    """The absolute path of command `name` (``mcp-server-everything``, ``mcp-inspector``...) of the pinned
    packages; a test asking for it is skipped when they are not installed (failed under CI, which installs them)."""
    path = prefix() / "node_modules" / ".bin" / name
    if absent := missing():
        reason = f"{', '.join(absent)} not installed in {prefix()}: run `python3 tests/e2e/npm.py`"
    elif not path.exists():
        reason = f"{path} not found (none of the pinned packages has a command {name!r})"
    elif shutil.which("node") is None:
        reason = "node is not on PATH"
    else:
        return str(path)
    import pytest  # here, not at the top: .ci/run runs this file before pytest is installed

    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def install(where: Path | None = None) -> bool:
    """Install the pinned packages into `where` unless they are all there already; True if npm ran."""
    where = where or prefix()
    if not missing(where):
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH: install Node.js 20 (node and npm) to run the tests of published servers")
    where.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    command = [npm, "install", "--prefix", str(where), "--save-exact", "--no-audit", "--no-fund", "--loglevel=error",
               *specs]
    done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
    if done.returncode != 0 or missing(where):
        raise SystemExit(f"npm install into {where} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return True


def _version(package: Path) -> str | None:
    try:
        return str(json.loads((package / "package.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


if __name__ == "__main__":
    ran = install()
    sys.stderr.write(f"npm packages {'installed' if ran else 'already installed'} in {prefix()}\n")
