"""`pml-gateway graph` against a real Postgres: it writes a self-contained page of the learned graph, with
capabilities named, says what it wrote, and refuses `--png` clearly when matplotlib is missing."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from gateway import cli
from gateway.db import CapabilityStore, LearningStore, migrate, open_pool
from gateway.graph import EDGE_TYPE_WEIGHT, SOURCE_FACTOR
from gateway.graph.image import png_available

RUNS = [
    [("fs:read_file", "json:parse", "dependency"), ("json:parse", "fs:write_file", "dependency")],
    [("web:fetch", "json:parse", "sequence"), ("web:fetch", "web:post", "dependency")],
]


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``PML_*`` of the developer's shell leaks into the in-process runs."""
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)


def seed(url: str) -> str:
    """Record the runs of `RUNS` and one capability `fs:read_json` containing two tools; its node id."""

    async def record_all() -> str:
        await migrate(url)
        pool = await open_pool(url, max_size=2)
        try:
            capability = await CapabilityStore(pool).record(**_capability_run(["fs:read_file", "json:parse"]))
            assert capability is not None
            learning = LearningStore(pool)
            contains = [(capability.node_id, tool, "contains") for tool in capability.tools]
            for edges in [*RUNS, contains]:
                await learning.record_run(edges=edges, tools=[], promote_after=3, weights=dict(EDGE_TYPE_WEIGHT),
                                          factors=dict(SOURCE_FACTOR))
            return capability.node_id
        finally:
            await pool.close()

    return anyio.run(record_all)


def _capability_run(tools: list[str]) -> dict[str, Any]:
    vector = np.zeros(384, dtype=np.float32)
    vector[0] = 1.0
    document = {"tasks": [{"id": f"t{i}", "tool": t, "arguments": {}} for i, t in enumerate(tools, 1)]}
    return {"pattern_hash": hashlib.sha256(b"read_json").hexdigest(), "document": document, "tools": tools,
            "parameters_schema": None, "embedding": vector, "success": True, "duration_ms": 10.0,
            "namespace": "fs", "action": "read_json", "cacheable": False}


def page_nodes(page: str) -> dict[str, dict[str, Any]]:
    """The page's embedded data, nodes by id."""
    data = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', page, re.DOTALL)
    assert data is not None
    return {node["id"]: node for node in json.loads(data.group(1))["nodes"]}


def test_graph_writes_a_page_with_every_learned_node_and_names_the_capability(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capability = seed(database_url)
    out = tmp_path / "g.html"

    code = cli.main(["graph", "--out", str(out), "--database-url", database_url])

    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    page = out.read_text(encoding="utf-8")
    nodes = page_nodes(page)
    assert set(nodes) == {"fs:read_file", "json:parse", "fs:write_file", "web:fetch", "web:post", capability}
    assert nodes[capability]["label"] == "fs:read_json" and nodes[capability]["kind"] == "capability"
    assert all(f">{name}</text>" in page for name in ["fs:read_file", "web:post", "fs:read_json"])
    assert "http://" not in page and "https://" not in page
    communities = len({node["community"] for node in nodes.values()})
    assert stdout.splitlines() == [f"6 nodes, 6 edges, {communities} communities: wrote {out}"]


def test_graph_of_an_empty_memory_is_an_empty_page(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "empty.html"

    code = cli.main(["graph", "--out", str(out), "--database-url", database_url])

    assert code == 0
    assert page_nodes(out.read_text(encoding="utf-8")) == {}
    assert capsys.readouterr().out.startswith("0 nodes, 0 edges, 0 communities: wrote ")


def test_an_unwritable_out_path_is_an_error_naming_it(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "g.html"

    code = cli.main(["graph", "--out", str(out), "--database-url", database_url])

    stdout, stderr = capsys.readouterr()
    assert code == 1 and stdout == ""
    assert f"cannot write {out}: No such file or directory" in stderr


@pytest.mark.skipif(png_available(), reason="matplotlib is installed: --png draws instead of refusing")
def test_png_without_matplotlib_exits_2_and_says_what_is_needed(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "g.html", tmp_path / "g.png"

    code = cli.main(["graph", "--out", str(out), "--png", str(png), "--database-url", database_url])

    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == ""
    assert "--png needs matplotlib" in stderr
    assert not out.exists() and not png.exists()


@pytest.mark.skipif(not png_available(), reason="matplotlib is not installed (optional, only for --png)")
def test_png_with_matplotlib_writes_the_image_too(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(database_url)
    out, png = tmp_path / "g.html", tmp_path / "g.png"

    code = cli.main(["graph", "--out", str(out), "--png", str(png), "--database-url", database_url])

    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert png.read_bytes().startswith(b"\x89PNG") and out.exists()
    assert stdout.strip().endswith(f"wrote {out} and {png}")
