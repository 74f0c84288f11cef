"""Named queries load from .sql files, once, with clear errors for mistakes."""

from __future__ import annotations

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
