"""search_tools arguments are checked against the published schema, naming the field."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequestError
from gateway.server.meta import SEARCH_TOOLS, check_arguments


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ({}, "query", "missing required argument 'query'"),
        ({"query": "x", "limit": 0}, "limit", "0 is less than the minimum of 1"),
        ({"query": "x", "limit": 51}, "limit", "51 is greater than the maximum of 50"),
        ({"query": 3}, "query", "3 is not of type 'string'"),
        ({"query": "x", "colour": "red"}, "colour", "unknown argument 'colour'"),
    ],
)
def test_a_bad_argument_is_refused_with_its_field(arguments: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_arguments(SEARCH_TOOLS, arguments)
    assert info.value.field == field
    assert message in str(info.value)


def test_good_arguments_pass_through_unchanged() -> None:
    assert check_arguments(SEARCH_TOOLS, {"query": "time in Tokyo", "limit": 3}) == {
        "query": "time in Tokyo", "limit": 3}
