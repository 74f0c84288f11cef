"""The layer contract in pyproject.toml ([tool.importlinter]) holds: imports point downward only, and mcp, psycopg,
onnxruntime, scipy, pydantic-monty and cryptography stay in the layers that own them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_lint_imports_keeps_every_contract() -> None:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert command, "lint-imports (import-linter, in the test extras) is not installed"
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    assert "7 kept" in done.stdout, done.stdout
