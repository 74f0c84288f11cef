"""The downstream tests run on asyncio, like the gateway, and collect garbage after each test so that a
leaked process or pipe fails the test that leaked it (its ResourceWarning is an error here)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    yield
    gc.collect()
