"""Named queries load from .sql files, once, with clear errors for mistakes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.db.queries import load_queries, query


def test_each_header_names_the_text_below_it_without_its_comment_lines(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text(
        "-- file comment\n\n-- name: one\n-- 100% a comment\nSELECT 1;\n\n-- name: two\nSELECT\n  2;\n"
    )
    assert load_queries(tmp_path) == {"one": "SELECT 1;", "two": "SELECT\n  2;"}


def test_a_name_used_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- name: one\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: one\nSELECT 2;\n")
    with pytest.raises(ValueError, match="'one' is defined twice"):
        load_queries(tmp_path)


def test_sql_before_any_header_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("SELECT 0;\n-- name: one\nSELECT 1;\n")
    with pytest.raises(ValueError, match="before the first '-- name:' header"):
        load_queries(tmp_path)


def test_the_packaged_queries_are_found_by_name() -> None:
    assert query("search_pool").startswith("WITH dense AS MATERIALIZED")
    with pytest.raises(LookupError, match="no SQL query named 'nope'"):
        query("nope")


def test_every_query_named_in_the_code_and_the_benchmarks_exists() -> None:
    # The benchmarks run outside the tests: a renamed query once broke bench_search.py unnoticed.
    root = Path(__file__).resolve().parents[2]
    called = re.compile(r"\b(?:named_query|query|composed)\(\s*\"([a-z_][a-z0-9_]*)\"")
    sources = [*root.joinpath("gateway").rglob("*.py"), *root.joinpath("bench").glob("*.py")]
    names = {(path.name, name) for path in sources for name in called.findall(path.read_text(encoding="utf-8"))}
    known = load_queries()

    assert len(names) > 50  # the pattern still finds the calls
    assert sorted((file, name) for file, name in names if name not in known) == []
