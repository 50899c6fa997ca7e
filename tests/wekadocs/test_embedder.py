"""The embedding model in both precisions and both runtimes the query service can run it in."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling

from wekadocs.embedder import Embedder, resolve_model_path

QUESTIONS = [
    "how do I create a snapshot of a filesystem",
    "what does the NodeNotResponding alert mean",
    "weka cluster drive add",
]
LONG = " ".join(["a filesystem tiers its data to an object store bucket"] * 60)  # past 256 word pieces


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


def test_onnx_runtime_gives_torch_vectors_and_exports_once(float32: Embedder, tmp_path: Path) -> None:
    """The query service's default runtime: same vectors as torch, cut or not,
    from a graph exported once and reused by the next process's load."""
    fast = Embedder("all-MiniLM-L6-v2", device="cpu", threads=1, runtime="onnx", onnx_cache=tmp_path)
    assert fast.runtime == "onnx"
    reference, ours = float32.encode(QUESTIONS + [LONG]), fast.encode(QUESTIONS + [LONG])
    assert ours.shape == reference.shape and ours.dtype == np.float32
    assert np.min(np.sum(ours * reference, axis=1)) > 0.9999
    assert fast.encode([]).shape == (0, 384)
    (exported,) = tmp_path.glob("*.onnx")
    written = exported.stat().st_mtime_ns

    cut = Embedder("all-MiniLM-L6-v2", dims=128, device="cpu", threads=1, runtime="onnx", onnx_cache=tmp_path)
    cut_torch = Embedder("all-MiniLM-L6-v2", dims=128, device="cpu", threads=1)
    assert cut.runtime == "onnx" and list(tmp_path.glob("*.onnx")) == [exported]
    assert exported.stat().st_mtime_ns == written
    short, reference_short = cut.encode(QUESTIONS), cut_torch.encode(QUESTIONS)
    assert short.shape == (3, 128)
    assert np.min(np.sum(short * reference_short, axis=1)) > 0.9999


def test_a_model_onnx_cannot_run_as_exported_stays_on_torch(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """CLS pooling is not what the exporter reproduces: the model keeps torch, says why, and still encodes."""
    folder = tmp_path / "cls-model"
    model = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    SentenceTransformer(modules=[model[0], Pooling(384, pooling_mode="cls")], device="cpu").save(str(folder))
    with caplog.at_level(logging.WARNING, logger="wekadocs.embedder"):
        embedder = Embedder(str(folder), device="cpu", threads=1, runtime="onnx", onnx_cache=tmp_path / "onnx")
    assert embedder.runtime == "torch"
    assert "only mean pooling" in caplog.text
    assert not list((tmp_path / "onnx").glob("*.onnx"))
    assert embedder.encode(QUESTIONS).shape == (3, 384)


def test_onnx_needs_float32_on_cpu_and_a_cache(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="torch or onnx"):
        Embedder("all-MiniLM-L6-v2", device="cpu", runtime="tensorrt")
    with pytest.raises(ValueError, match="onnx_cache"):
        Embedder("all-MiniLM-L6-v2", device="cpu", runtime="onnx")
    with pytest.raises(ValueError, match="float32"):
        Embedder("all-MiniLM-L6-v2", device="cpu", runtime="onnx", precision="bfloat16", onnx_cache=tmp_path)
