"""`pml-gateway caps list|show|rename|merge` against a real Postgres: what they print, what they change, and
how they refuse."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any

import anyio
import numpy as np
import pytest

from gateway import cli
from gateway.db import CapabilityStore, migrate, open_pool
from gateway.models import Capability
from tests.e2e.support import ROOT, gateway_command, gateway_env

READ_PARSE = ["fs:read_file", "json:parse"]
FETCH = ["web:fetch", "json:parse"]
PARAMETERS = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


class Seeded:
    """The capabilities recorded before a test, by name, and the database they are in."""

    def __init__(self, url: str, rows: dict[str, Capability]) -> None:
        self.url = url
        self.rows = rows


def seed(url: str, runs: list[tuple[str, str, list[str], bool]]) -> dict[str, Capability]:
    """Record ``(seed, namespace, tools, success)`` runs; the last row of each seed, by ``namespace:<seed>``."""

    async def record_all() -> dict[str, Capability]:
        await migrate(url)
        pool = await open_pool(url, max_size=2)
        try:
            store, rows = CapabilityStore(pool), {}
            for name, namespace, tools, success in runs:
                row = await store.record(**_run(name, namespace, tools, success))
                assert row is not None
                rows[f"{namespace}:{name}"] = row
            return rows
        finally:
            await pool.close()

    return anyio.run(record_all)


def _run(name: str, namespace: str, tools: list[str], success: bool) -> dict[str, Any]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    vector = np.zeros(384, dtype=np.float32)
    vector[0] = 1.0
    document = {"tasks": [{"id": f"t{i}", "tool": t, "arguments": {"path": "$PARAM.path"}}
                          for i, t in enumerate(tools, 1)], "seed": name}
    return {"pattern_hash": digest, "document": document, "tools": tools, "parameters_schema": PARAMETERS,
            "embedding": vector, "success": success, "duration_ms": 100.0, "namespace": namespace,
            "action": name, "cacheable": False}


@pytest.fixture
def seeded(database_url: str) -> Seeded:
    """Three capabilities: fs:read_json (two runs, one failed), fs:load_json (same tools), web:fetch_json."""
    return Seeded(database_url, seed(database_url, [
        ("read_json", "fs", READ_PARSE, True), ("read_json", "fs", READ_PARSE, False),
        ("load_json", "fs", READ_PARSE[::-1], True), ("fetch_json", "web", FETCH, True)]))


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``PML_*`` of the developer's shell leaks into the in-process runs, nor a ``COLUMNS`` that would hide
    how wide a piped table is."""
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("COLUMNS", raising=False)


def caps(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    """Run ``caps ARGS --database-url URL`` in process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = cli.main(["caps", *args, "--database-url", url])
    out, err = capsys.readouterr()
    return code, out, err


def caps_json(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> dict[str, Any]:
    code, out, err = caps(capsys, url, *args, "--json")
    assert code == 0, err
    document = json.loads(out.strip().splitlines()[-1])
    assert isinstance(document, dict)
    return document


def test_list_as_a_subprocess_prints_each_capability_with_its_usage_and_the_total(seeded: Seeded) -> None:
    done = subprocess.run(gateway_command("caps", "list", "--database-url", seeded.url),
                          capture_output=True, text=True, env=_without_columns(gateway_env()), cwd=ROOT, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("│")}
    assert set(lines) >= {"fs:read_json", "fs:load_json", "web:fetch_json"}
    assert lines["fs:read_json"].split()[3:5] == ["2", "│"] and "50%" in lines["fs:read_json"]
    assert "fs:read_file, json:parse" in lines["fs:read_json"] and "web:fetch, json:parse" in lines["web:fetch_json"]
    assert done.stdout.strip().splitlines()[-1] == "3 of 3 capabilities"


def test_a_piped_list_prints_long_names_and_tools_whole(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    action = "_".join(["get_current_time"] * 3)
    tools = [f"{server}:{'_'.join(['create_entities'] * 3)}" for server in ("time", "memory", "everything")]
    seed(database_url, [(action, "workflow", tools, True)])
    code, out, _ = caps(capsys, database_url, "list")
    assert code == 0 and "…" not in out
    [line] = [line for line in out.splitlines() if f"workflow:{action}" in line]
    assert ", ".join(tools) in line


def test_unnamed_only_lists_the_capabilities_no_one_renamed(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    assert caps(capsys, seeded.url, "rename", "fs:load_json", "--namespace", "files")[0] == 0
    listed = caps_json(capsys, seeded.url, "list", "--unnamed-only")
    assert [c["name"] for c in listed["capabilities"]] == ["fs:read_json", "web:fetch_json"] and listed["total"] == 2


def test_list_as_json_gives_every_capability_and_the_total(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    listed = caps_json(capsys, seeded.url, "list")
    assert (listed["total"], listed["offset"]) == (3, 0)
    by_name = {c["name"]: c for c in listed["capabilities"]}
    assert sorted(by_name) == ["fs:load_json", "fs:read_json", "web:fetch_json"]
    assert (by_name["fs:read_json"]["usage_count"], by_name["fs:read_json"]["success_count"]) == (2, 1)
    assert by_name["web:fetch_json"]["id"] == str(seeded.rows["web:fetch_json"].id)


def test_a_pattern_keeps_only_the_matching_capabilities_and_counts_only_them(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = caps_json(capsys, seeded.url, "list", "--pattern", "fs:*")
    assert listed["total"] == 2 and [c["name"] for c in listed["capabilities"]] == ["fs:load_json", "fs:read_json"]
    code, out, _ = caps(capsys, seeded.url, "list", "--pattern", "web:*")
    assert code == 0 and "web:fetch_json" in out and "fs:" not in out
    assert out.strip().splitlines()[-1] == "1 of 1 capabilities"


def test_limit_and_offset_page_through_the_list_and_the_total_stays(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = caps(capsys, seeded.url, "list", "--limit", "1", "--offset", "1")
    assert code == 0 and "fs:read_json" in out and "fs:load_json" not in out
    assert out.strip().splitlines()[-1] == "1 of 3 capabilities (from #2)"


def test_show_prints_the_tools_counts_parameters_and_dag_of_one_capability(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    row = seeded.rows["fs:read_json"]
    code, out, _ = caps(capsys, seeded.url, "show", "fs:read_json")
    assert code == 0
    assert str(row.id) in out and row.fqdn in out and "fs:read_file, json:parse" in out
    assert "2 runs, 1 succeeded" in out and "50.0%" in out and "100 ms" in out
    assert '"required": [' in out and '"path"' in out and '"$PARAM.path"' in out and '"ttl_ms": 3600000' in out
    shown = caps_json(capsys, seeded.url, "show", str(row.id))
    assert (shown["name"], shown["parameters_schema"], shown["document"]) == ("fs:read_json", PARAMETERS,
                                                                              row.document)
    assert shown["aliases"] == [] and shown["cache_config"] == {"ttl_ms": 3600000, "cacheable": False}


def test_after_a_rename_the_old_and_new_names_show_the_same_capability(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    row = seeded.rows["fs:read_json"]
    code, out, err = caps(capsys, seeded.url, "rename", "fs:read_json", "--namespace", "files", "--action",
                          "read_json_file", "--tags", "io, json")
    assert code == 0, err
    assert out.startswith(f"renamed to files:read_json_file (local.default.files.read_json_file.{row.hash})")
    old, new = (caps_json(capsys, seeded.url, "show", ref) for ref in ("fs:read_json", "files:read_json_file"))
    assert old["id"] == new["id"] == str(row.id) and new["name"] == "files:read_json_file"
    assert new["tags"] == ["io", "json"] and new["usage_count"] == 2
    assert new["aliases"] == sorted(["fs:read_json", row.fqdn])
    assert caps_json(capsys, seeded.url, "list")["total"] == 3


def test_a_rename_with_a_description_loads_the_model_and_keeps_the_description(seeded: Seeded) -> None:
    done = subprocess.run(
        gateway_command("caps", "rename", "web:fetch_json", "--description", "Fetch a page and parse its JSON",
                        "--json", "--database-url", seeded.url),
        capture_output=True, text=True, env=gateway_env(), cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL,
        check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    renamed = json.loads(done.stdout.strip().splitlines()[-1])
    assert (renamed["name"], renamed["description"]) == ("web:fetch_json", "Fetch a page and parse its JSON")
    assert "embedding model" in done.stderr


def test_a_merge_of_capabilities_with_the_same_tools_sums_their_usage_and_leaves_one(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    target = seeded.rows["fs:read_json"]
    code, out, err = caps(capsys, seeded.url, "merge", "fs:load_json", "fs:read_json")
    assert code == 0, err
    assert out.startswith(f"merged into fs:read_json ({target.fqdn}): used 3x, 67% ok")
    listed = caps_json(capsys, seeded.url, "list")
    assert listed["total"] == 2 and "fs:load_json" not in [c["name"] for c in listed["capabilities"]]
    merged = caps_json(capsys, seeded.url, "show", "fs:load_json")
    assert (merged["id"], merged["usage_count"], merged["success_count"]) == (str(target.id), 3, 2)


def test_a_merge_of_capabilities_with_different_tools_is_refused_and_changes_nothing(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    before = caps_json(capsys, seeded.url, "list")
    code, out, err = caps(capsys, seeded.url, "merge", "web:fetch_json", "fs:read_json")
    assert (code, out) == (1, "")
    assert err.strip().splitlines()[-1] == "pml-gateway: web:fetch_json and fs:read_json use different tools"
    assert caps_json(capsys, seeded.url, "list") == before


@pytest.mark.parametrize("args", [
    ("show", "nope:missing"), ("rename", "nope:missing", "--action", "other"),
    ("merge", "nope:missing", "fs:read_json"), ("merge", "fs:read_json", "nope:missing"),
], ids=["show", "rename", "merge source", "merge target"])
def test_an_unknown_capability_exits_1_with_a_message_naming_it(
    seeded: Seeded, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, out, err = caps(capsys, seeded.url, *args)
    assert (code, out) == (1, "")
    assert err.strip().splitlines()[-1].startswith("pml-gateway: no capability 'nope:missing'")
    assert caps_json(capsys, seeded.url, "list")["total"] == 3


def test_a_rename_to_an_invalid_or_taken_name_or_with_nothing_to_change_is_refused(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    refusals = {
        ("--namespace", "Bad!"): "namespace must be",
        ("--action", "exec_1234"): "action must not start with 'exec_'",
        ("--action", "load_json"): "fs:load_json names another capability",
        (): "nothing to change",
    }
    for flags, message in refusals.items():
        code, _, err = caps(capsys, seeded.url, "rename", "fs:read_json", *flags)
        assert code == 1 and message in err, (flags, err)
    assert caps_json(capsys, seeded.url, "show", "fs:read_json")["name"] == "fs:read_json"


def _without_columns(env: dict[str, str]) -> dict[str, str]:
    """`env` without ``COLUMNS``: a piped table's width must not depend on it."""
    return {key: value for key, value in env.items() if key != "COLUMNS"}
