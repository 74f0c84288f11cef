"""The intent memory keeps the fitted tool prior across restarts: stored exactly, replaced, and refused if malformed."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from gateway.db import IntentMemory, Pool
from gateway.models import StoredPrior

pytestmark = pytest.mark.anyio

MODEL = "test-model"


def prior(tools: tuple[str, ...], *, dimensions: int = 4, seed: int = 0, intents: int = 10) -> StoredPrior:
    weights = np.random.default_rng(seed).normal(size=(dimensions + 1, len(tools)))
    return StoredPrior(tools=tools, weights=weights, samples=intents - 1, intents=intents)


async def test_a_stored_prior_reads_back_bit_for_bit_and_per_embedding_model(pool: Pool) -> None:
    memory = IntentMemory(pool)
    kept = prior(("s:a", "s:b", "s:c"))

    assert await memory.stored_prior(model_id=MODEL) is None
    await memory.store_prior(kept, model_id=MODEL)
    read = await memory.stored_prior(model_id=MODEL)

    assert read is not None
    assert read.tools == kept.tools
    assert (read.samples, read.intents) == (9, 10)
    assert read.weights.shape == (5, 3)
    assert np.array_equal(read.weights, kept.weights)
    assert await memory.stored_prior(model_id="another-model") is None


async def test_storing_again_replaces_the_prior(pool: Pool) -> None:
    memory = IntentMemory(pool)
    await memory.store_prior(prior(("s:a", "s:b")), model_id=MODEL)

    await memory.store_prior(prior(("s:x",), seed=1, intents=40), model_id=MODEL)
    read = await memory.stored_prior(model_id=MODEL)

    assert read is not None
    assert read.tools == ("s:x",)
    assert read.intents == 40
    assert np.array_equal(read.weights, prior(("s:x",), seed=1, intents=40).weights)


async def test_weights_that_do_not_match_their_tools_and_dimensions_are_not_believed(
    pool: Pool, database_url: str
) -> None:
    memory = IntentMemory(pool)
    await memory.store_prior(prior(("s:a", "s:b")), model_id=MODEL)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("UPDATE tool_prior SET tools = ARRAY['s:a', 's:b', 's:c'] WHERE model = %s", (MODEL,))

    assert await memory.stored_prior(model_id=MODEL) is None
