"""The embedding model in both precisions the query service can run it in."""

from __future__ import annotations

import numpy as np
import pytest

from wekadocs.embedder import Embedder

QUESTIONS = [
    "how do I create a snapshot of a filesystem",
    "what does the NodeNotResponding alert mean",
    "weka cluster drive add",
]


@pytest.fixture(scope="module")
def float32() -> Embedder:
    return Embedder("all-MiniLM-L6-v2", device="cpu", threads=1)


def test_vectors_are_unit_float32(float32: Embedder) -> None:
    vectors = float32.encode(QUESTIONS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float32.encode([]).shape == (0, 384)


def test_bfloat16_queries_point_where_float32_ones_do(float32: Embedder) -> None:
    """bf16 weights are for queries against float32 documents: each query must
    stay far closer to its own float32 vector than to any other question's."""
    half = Embedder("all-MiniLM-L6-v2", device="cpu", threads=1, precision="bfloat16")
    reference, fast = float32.encode(QUESTIONS), half.encode(QUESTIONS)
    assert fast.dtype == np.float32
    similarity = fast @ reference.T
    assert np.all(np.diag(similarity) > 0.99)
    assert np.all(similarity.argmax(axis=1) == np.arange(len(QUESTIONS)))


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        Embedder("all-MiniLM-L6-v2", device="cpu", precision="float16")
