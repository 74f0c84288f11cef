"""Text embeddings on onnxruntime: `load_embedder` opens a model; `OnnxEmbedder` is a `ports.Embedder`."""

from gateway.embed.onnx import DEFAULT_MODEL_ID, OnnxEmbedder, load_embedder

__all__ = ["DEFAULT_MODEL_ID", "OnnxEmbedder", "load_embedder"]
