"""The capability store creates one capability per successful workflow, resolves its names, renames, merges,
searches by intent and caches results."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from gateway.db import CapabilityStore, migrate, open_pool
from gateway.db.migrate import MIGRATIONS_DIR
from gateway.db.queries import query as named_query
from gateway.errors import InvalidRequestError
from gateway.models import Capability

pytestmark = pytest.mark.anyio

TOOLS = ["fs:read_file", "json:parse"]
INSERT_EDGE = (
    "INSERT INTO tool_dependency (from_tool_id, to_tool_id, edge_type, observed_count, source) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def rows(url: str, sql: Any, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def pattern_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def embedding(axis: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    vector = np.zeros(384, dtype=np.float32)
    vector[axis] = 1.0
    return vector


async def record(
    store: CapabilityStore, seed: str, *, success: bool = True, tools: list[str] = TOOLS, ms: float = 100.0,
    axis: int = 0, actions: list[str] | None = None,
) -> Capability | None:
    digest = pattern_hash(seed)
    first, *alternatives = actions or [f"exec_{digest[:8]}"]
    return await store.record(
        pattern_hash=digest, document={"tasks": [{"id": "t1", "tool": tools[0]}], "seed": seed}, tools=tools,
        parameters_schema={"type": "object"}, embedding=embedding(axis), success=success, duration_ms=ms,
        namespace="code", action=first, alternatives=alternatives, cacheable=False,
    )


async def recorded(store: CapabilityStore, seed: str, **kwargs: Any) -> Capability:
    row = await record(store, seed, **kwargs)
    assert row is not None
    return row


async def test_a_first_successful_run_creates_one_capability_named_exec_and_its_hash(
    capability_store: CapabilityStore,
) -> None:
    row = await recorded(capability_store, "a", ms=120.0)
    assert re.fullmatch(r"exec_[0-9a-f]{8}", row.action)
    assert (row.usage_count, row.success_count, row.success_rate, row.avg_duration_ms) == (1, 1, 1.0, 120)
    assert row.hash == pattern_hash("a")[:4] and row.pattern_hash == pattern_hash("a")
    assert row.fqdn == f"local.default.code.{row.action}.{row.hash}" and row.display_name == f"code:{row.action}"
    assert row.tools == TOOLS and row.document["seed"] == "a" and row.cache_config == {
        "ttl_ms": 3600000, "cacheable": False}
    assert (await capability_store.list())[1] == 1


async def test_a_capability_comes_back_as_a_frozen_value_whose_graph_node_is_its_record_id(
    capability_store: CapabilityStore,
) -> None:
    row = await recorded(capability_store, "a")
    assert isinstance(row, Capability) and row == await capability_store.get(str(row.id))
    assert row.node_id == f"capability:{row.id}" and str(row.pattern_id) not in row.node_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.action = "other"  # type: ignore[misc]


async def test_a_second_run_of_the_same_workflow_counts_without_a_new_capability(
    capability_store: CapabilityStore,
) -> None:
    first = await recorded(capability_store, "a", ms=100.0)
    second = await recorded(capability_store, "a", ms=200.0)
    assert second.id == first.id and (second.usage_count, second.avg_duration_ms) == (2, 150)
    assert (await capability_store.list())[1] == 1


async def test_a_failed_first_run_creates_nothing(capability_store: CapabilityStore, database_url: str) -> None:
    assert await record(capability_store, "a", success=False) is None
    assert rows(database_url, "SELECT count(*) AS n FROM workflow_pattern") == [{"n": 0}]
    assert (await capability_store.list())[1] == 0


async def test_a_failed_run_of_a_known_workflow_lowers_its_success_rate(capability_store: CapabilityStore) -> None:
    await recorded(capability_store, "a")
    failed = await recorded(capability_store, "a", success=False)
    assert (failed.usage_count, failed.success_count, failed.success_rate) == (2, 1, 0.5)


async def test_ten_concurrent_first_runs_create_exactly_one_capability_used_ten_times(
    capability_store: CapabilityStore, database_url: str
) -> None:
    pool = await open_pool(database_url, max_size=10)
    store = CapabilityStore(pool)
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(record, store, "a")
    finally:
        await pool.close()
    capabilities, total = await capability_store.list()
    assert total == 1 and capabilities[0].usage_count == 10 and capabilities[0].success_count == 10


async def test_a_capability_is_found_by_display_name_fqdn_and_id_but_not_by_an_unknown_name(
    capability_store: CapabilityStore,
) -> None:
    row = await recorded(capability_store, "a")
    for ref in (row.display_name, row.fqdn, str(row.id)):
        assert await capability_store.get(ref) == row
    assert await capability_store.get("code:nothing") is None


async def test_list_filters_by_like_and_unnamed_pages_and_counts_all_matches(
    capability_store: CapabilityStore,
) -> None:
    ids = [(await recorded(capability_store, seed)).id for seed in ("a", "b", "c", "d")]
    await capability_store.rename(ids[0], namespace="fs", action="read_100%")
    await capability_store.rename(ids[1], namespace="fs", action="read_json")
    named, total = await capability_store.list(like="fs:read\\_100\\%")
    assert [row.action for row in named] == ["read_100%"] and total == 1
    unnamed, total = await capability_store.list(unnamed_only=True)
    assert {row.id for row in unnamed} == set(ids[2:]) and total == 2
    page, total = await capability_store.list(limit=2, offset=1)
    everything, _ = await capability_store.list()
    assert page == everything[1:3] and total == 4
    assert await capability_store.list(offset=10) == ([], 4)


async def test_a_first_run_takes_the_first_offered_name_that_no_capability_has_or_had(
    capability_store: CapabilityStore,
) -> None:
    offered = ["read_json", "read_json_1234", "exec_1234"]
    first = await recorded(capability_store, "a", actions=offered)
    second = await recorded(capability_store, "b", actions=offered)
    assert (first.display_name, second.display_name) == ("code:read_json", "code:read_json_1234")
    await capability_store.rename(first.id, namespace="fs", action="load")
    third = await recorded(capability_store, "c", actions=offered)  # code:read_json still calls the first
    assert third.display_name == "code:exec_1234"
    with pytest.raises(InvalidRequestError, match="every name offered") as refused:
        await record(capability_store, "d", actions=offered)
    assert refused.value.field == "action" and (await capability_store.list())[1] == 3


async def test_a_later_run_keeps_the_name_its_first_run_was_given(capability_store: CapabilityStore) -> None:
    first = await recorded(capability_store, "a", actions=["read_json"])
    again = await recorded(capability_store, "a", actions=["something_else"])
    assert again.id == first.id and again.display_name == "code:read_json" and again.usage_count == 2


async def test_concurrent_first_runs_offered_the_same_names_take_one_each(
    capability_store: CapabilityStore, database_url: str
) -> None:
    offered = ["same", *(f"same_{n}" for n in range(6))]
    pool = await open_pool(database_url, max_size=6)
    store = CapabilityStore(pool)
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for seed in "abcdef":
                    tg.start_soon(functools.partial(record, store, seed, actions=offered))
    finally:
        await pool.close()
    named, total = await capability_store.list()
    assert total == 6 and len({row.display_name for row in named}) == 6


async def test_a_rename_to_another_capabilitys_old_name_is_refused_but_back_to_its_own_is_not(
    capability_store: CapabilityStore,
) -> None:
    first = await recorded(capability_store, "a")
    second = await recorded(capability_store, "b")
    await capability_store.rename(first.id, namespace="fs", action="read")
    with pytest.raises(InvalidRequestError, match="names another capability") as refused:
        await capability_store.rename(second.id, namespace="code", action=first.action)
    assert refused.value.field == "action"
    back = await capability_store.rename(first.id, namespace="code", action=first.action)
    assert back.display_name == first.display_name


async def test_unnamed_only_keeps_those_never_given_another_name_by_a_user(
    capability_store: CapabilityStore,
) -> None:
    untouched, moved, described = [await recorded(capability_store, seed) for seed in ("a", "b", "c")]
    await capability_store.rename(moved.id, namespace="fs", action=moved.action)
    await capability_store.rename(described.id, namespace="code", action=described.action, description="Reads",
                                  tags=["io"], visibility="project")
    unnamed, total = await capability_store.list(unnamed_only=True)
    assert {row.id for row in unnamed} == {untouched.id, described.id} and total == 2
    assert [row.renamed for row in unnamed] == [False, False]


async def test_migrating_an_older_database_marks_the_capabilities_a_user_renamed(
    database_url: str, tmp_path: Path
) -> None:
    older = tmp_path / "migrations"
    older.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < 12:
            shutil.copy(path, older)
    await migrate(database_url, older)
    # today's store also writes the program columns of 0015 (which adds them only if they are missing)
    rows(database_url, "ALTER TABLE workflow_pattern ADD COLUMN code_snippet TEXT, ADD COLUMN code_hash TEXT")
    pool = await open_pool(database_url, max_size=1)
    try:
        store = CapabilityStore(pool)
        untouched, named, moved, merged = [await recorded(store, seed) for seed in ("a", "b", "c", "d")]
    finally:
        await pool.close()
    rows(database_url, "UPDATE capability_records SET action = 'read' WHERE id = %s", named.id)
    rows(database_url, "UPDATE capability_records SET namespace = 'fs' WHERE id = %s", moved.id)
    rows(database_url, "INSERT INTO capability_alias VALUES (%s, %s), ('code:exec_00000000', %s)",
         moved.display_name, moved.id, merged.id)  # a merge moved another capability's old name to `merged`
    assert "0012_capability_renamed" in await migrate(database_url)
    flags = {row["id"]: row["renamed"] for row in rows(database_url, "SELECT id, renamed FROM capability_view")}
    assert flags == {untouched.id: False, named.id: True, moved.id: True, merged.id: False}


async def test_a_page_and_its_total_come_from_one_snapshot_even_when_a_capability_lands_between_them(
    capability_store: CapabilityStore, database_url: str,
) -> None:
    await recorded(capability_store, "first")
    params = {"like": None, "unnamed_only": False, "limit": 50, "offset": 0, "user": None}
    pool = await open_pool(database_url, max_size=1)
    try:
        async with pool.connection() as conn:
            # Without the snapshot (autocommit, one statement each) a commit in between is counted but not listed.
            listed = await (await conn.execute(named_query("list_capabilities"), params)).fetchall()
            await recorded(capability_store, "second")
            counted = await (await conn.execute(named_query("count_capabilities"), params)).fetchone()
            assert (len(listed), counted) == (1, (2,))
            async with conn.transaction():
                await conn.execute(named_query("page_snapshot"))
                listed = await (await conn.execute(named_query("list_capabilities"), params)).fetchall()
                await recorded(capability_store, "third")
                counted = await (await conn.execute(named_query("count_capabilities"), params)).fetchone()
            assert (len(listed), counted) == (2, (2,))
    finally:
        await pool.close()
    page, total = await capability_store.list()
    assert (len(page), total) == (3, 3)


async def test_a_renamed_capability_keeps_its_old_names_as_aliases(capability_store: CapabilityStore) -> None:
    old = await recorded(capability_store, "a")
    renamed = await capability_store.rename(old.id, namespace="fs", action="read_json", description="Read JSON",
                                            tags=["io"], embedding=embedding(5))
    assert (renamed.display_name, renamed.fqdn) == ("fs:read_json", f"local.default.fs.read_json.{old.hash}")
    assert (renamed.description, renamed.tags, renamed.usage_count) == ("Read JSON", ["io"], 1)
    for ref in (old.display_name, old.fqdn, "fs:read_json"):
        found = await capability_store.get(ref)
        assert found is not None and found.id == old.id
    [(hit, similarity)] = await capability_store.search(embedding(5), limit=1)
    assert hit.id == old.id and similarity == pytest.approx(1.0)


async def test_the_aliases_of_a_capability_are_its_old_names_and_follow_a_merge(
    capability_store: CapabilityStore,
) -> None:
    first = await recorded(capability_store, "a")
    other = await recorded(capability_store, "b")
    assert await capability_store.aliases(first.id) == []
    await capability_store.rename(first.id, namespace="fs", action="read_json")
    assert await capability_store.aliases(first.id) == sorted([first.display_name, first.fqdn])
    await capability_store.merge(first.id, other.id, prefer_source_code=False)
    assert await capability_store.aliases(other.id) == sorted(
        [first.display_name, first.fqdn, "fs:read_json", f"local.default.fs.read_json.{first.hash}"])


async def test_a_rename_to_a_taken_name_is_refused_and_changes_nothing(capability_store: CapabilityStore) -> None:
    first = await recorded(capability_store, "a")
    second = await recorded(capability_store, "b")
    await capability_store.rename(first.id, namespace="fs", action="read")
    with pytest.raises(InvalidRequestError) as refused:
        await capability_store.rename(second.id, namespace="fs", action="read")
    assert refused.value.field == "action"
    assert await capability_store.get(second.display_name) == second


async def test_a_merge_of_capabilities_with_the_same_tools_sums_counts_and_leaves_one(
    capability_store: CapabilityStore, database_url: str
) -> None:
    target = await recorded(capability_store, "target", ms=100.0)
    await recorded(capability_store, "target", success=False, ms=100.0)
    source = await recorded(capability_store, "source", tools=TOOLS[::-1], ms=400.0)
    merged = await capability_store.merge(source.id, target.id, prefer_source_code=False)
    assert (merged.id, merged.usage_count, merged.success_count) == (target.id, 3, 2)
    assert merged.success_rate == pytest.approx(2 / 3) and merged.avg_duration_ms == 200
    assert merged.document["seed"] == "source"  # the newer definition
    assert (await capability_store.list())[1] == 1
    for ref in (source.display_name, source.fqdn, str(target.id)):
        found = await capability_store.get(ref)
        assert found is not None and found.id == target.id
    assert rows(database_url, "SELECT count(*) AS n FROM workflow_pattern") == [{"n": 1}]


async def test_a_merge_keeping_the_target_code_moves_the_capability_edges_of_the_source(
    capability_store: CapabilityStore, database_url: str
) -> None:
    target = await recorded(capability_store, "target")
    source = await recorded(capability_store, "source")
    src, dst = source.node_id, target.node_id
    for edge in ((src, "x", "sequence", 2, "inferred"), ("x", src, "dependency", 1, "observed"),
                 (dst, "x", "sequence", 3, "observed"), ("y", "z", "sequence", 1, "user")):
        rows(database_url, INSERT_EDGE, *edge)
    merged = await capability_store.merge(source.id, target.id, prefer_source_code=True)
    assert merged.document["seed"] == "source" and merged.pattern_hash == pattern_hash("source")
    edges = "SELECT from_tool_id, to_tool_id, edge_type, observed_count, source FROM tool_dependency ORDER BY 1, 2"
    assert [tuple(row.values()) for row in rows(database_url, edges)] == sorted([
        (dst, "x", "sequence", 5, "observed"), ("x", dst, "dependency", 1, "observed"),
        ("y", "z", "sequence", 1, "user"),
    ])


async def test_a_merge_of_capabilities_with_different_tools_is_refused_and_changes_nothing(
    capability_store: CapabilityStore, database_url: str
) -> None:
    target = await recorded(capability_store, "target")
    source = await recorded(capability_store, "source", tools=["fs:read_file"])
    rows(database_url, INSERT_EDGE, source.node_id, "x", "sequence", 1, "inferred")
    with pytest.raises(InvalidRequestError, match="different tools"):
        await capability_store.merge(source.id, target.id, prefer_source_code=True)
    assert await capability_store.get(str(source.id)) == source
    assert await capability_store.get(str(target.id)) == target
    assert rows(database_url, "SELECT from_tool_id FROM tool_dependency") == [{"from_tool_id": source.node_id}]


async def test_a_cached_result_is_returned_within_its_ttl_and_not_after_expiry_or_invalidation(
    capability_store: CapabilityStore, database_url: str
) -> None:
    capability = await recorded(capability_store, "a")
    assert await capability_store.cached(capability.id, "p1") is None
    await capability_store.store_cache(capability.id, "p1", {"rows": [1, 2]}, ttl_ms=60_000)
    assert await capability_store.cached(capability.id, "p1") == {"rows": [1, 2]}
    rows(database_url, "INSERT INTO capability_cache VALUES (%s, 'old', '1', now() - interval '1 s')", capability.id)
    assert await capability_store.cached(capability.id, "old") is None
    await capability_store.invalidate(capability.id)
    assert await capability_store.cached(capability.id, "p1") is None


async def test_search_ranks_capabilities_by_intent_similarity(capability_store: CapabilityStore) -> None:
    near = await recorded(capability_store, "near", axis=1)
    far = await recorded(capability_store, "far", axis=2)
    query = embedding(1) + 0.1 * embedding(2)
    hits = await capability_store.search(query, limit=2)
    assert [row.id for row, _ in hits] == [near.id, far.id] and hits[0][1] > hits[1][1]
    assert [row.id for row, _ in await capability_store.search(query, limit=1)] == [near.id]


async def test_after_a_merge_the_sources_intents_find_the_target(capability_store: CapabilityStore) -> None:
    source = await recorded(capability_store, "source", axis=3)
    target = await recorded(capability_store, "target", axis=4)
    await capability_store.merge(source.id, target.id, prefer_source_code=False)
    hits = await capability_store.search(embedding(3), limit=5)
    assert [(row.id, round(similarity, 3)) for row, similarity in hits] == [(target.id, 1.0), (target.id, 0.0)]
