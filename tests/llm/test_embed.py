"""MiniLM embeddings: offline, batched, unit norm, and semantically sensible."""

from __future__ import annotations

import numpy as np
import pytest

from reasonlab.llm.embed import Embedder, MiniLMEmbedder, cosine_similarity

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(batch_size=2)


def test_minilm_vectors_are_unit_norm_and_batched(embedder: MiniLMEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    texts = ["one", "two", "three", "four", "five"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(["three"])[0], vectors[2], atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_paraphrases_are_closer_than_unrelated_sentences(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Interest rates rose in May."])
    similarity = cosine_similarity(vectors, vectors)
    assert similarity[0, 1] > 0.5 > similarity[0, 2]
