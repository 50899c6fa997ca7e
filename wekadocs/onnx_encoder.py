"""The query model's transformer run by ONNX Runtime instead of torch.

A search encodes one short question, and torch's per-operator overhead
dominates that: on 2 cores one MiniLM query cost 28 ms of CPU in torch and 9 ms
in ONNX Runtime, at a cosine of 1.0 to torch's vector. That was the largest
share of the CPU a search costs in the query replica.

Only the transformer's forward pass moves. sentence-transformers still
prepares the inputs (its tokenizer, lower-casing, ``max_seq_length``), and
mean pooling, truncation to ``dims`` and normalization are done here as its
modules do. A model laid out differently is refused (:class:`OnnxUnavailable`)
and the caller keeps torch. The export (torch's own exporter) runs once per
model, torch version and ONNX Runtime version, into a cache folder; each
build checks its vectors against torch's before it is used.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxEncoder", "OnnxUnavailable", "PARITY_MIN_COSINE"]

PARITY_MIN_COSINE = 0.9999
# texts the parity check encodes both ways: short, punctuated, and one past
# any model's max_seq_length (truncation must match too)
PROBES = ("weka fs snapshot create", "Why does NodeNotResponding fire after an upgrade?",
          " ".join(["the cluster rebalances data across drives"] * 80))


class OnnxUnavailable(RuntimeError):
    """This model cannot run in ONNX Runtime here; torch keeps encoding it."""


class OnnxEncoder:
    """Args:
        model: the loaded ``SentenceTransformer`` (its inputs are prepared by it).
        cache_dir: where exported graphs are kept.
        dims: cut vectors to this many dimensions (None: the model's own).
        threads: ONNX Runtime's intra-op threads (1, as torch in the replica).
    """

    def __init__(self, model: Any, cache_dir: Path, *, dims: int | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise OnnxUnavailable(f"onnxruntime is not installed: {exc}") from exc
        names = [type(module).__name__ for module in model]
        if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
            raise OnnxUnavailable(f"modules {names}: only Transformer, mean Pooling[, Normalize] are exported")
        pooling = model[1].get_config_dict().get("pooling_mode")
        if pooling != "mean":
            raise OnnxUnavailable(f"pooling {pooling!r}: only mean pooling is exported")
        self.model = model
        self.dims = dims
        self.path = self._export(model, cache_dir, onnxruntime.__version__)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self._check_parity()

    def encode(self, texts: list[str]) -> np.ndarray:
        features = self.model.preprocess(texts)
        feed = {name: features[name].numpy().astype(np.int64) for name in self.inputs}
        tokens = self.session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        if self.dims is not None:
            pooled = pooled[:, :self.dims]
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _check_parity(self) -> None:
        reference = self.model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False, truncate_dim=self.dims)
        ours = self.encode(list(PROBES))
        cosine = float(np.min(np.sum(ours * reference, axis=1)))
        if cosine < PARITY_MIN_COSINE:
            raise OnnxUnavailable(f"exported graph gives a cosine of {cosine:.6f} to torch's vectors "
                                  f"(at least {PARITY_MIN_COSINE} needed)")

    @staticmethod
    def _export(model: Any, cache_dir: Path, runtime_version: str) -> Path:
        import torch

        transformer = model[0].auto_model
        source = str(getattr(transformer, "name_or_path", "")) or type(transformer).__name__
        key = hashlib.sha256(f"{source}\0{torch.__version__}\0{runtime_version}".encode()).hexdigest()[:16]
        path = cache_dir / f"{Path(source).name or 'model'}-{key}.onnx"
        if path.exists():
            return path
        cache_dir.mkdir(parents=True, exist_ok=True)
        sample = model.preprocess(["an example question"])
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        try:
            with warnings.catch_warnings():
                # the exporter's tracer warnings are about control flow this
                # graph does not take (shapes stay dynamic, parity is checked)
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    _last_hidden_state(transformer, names), tuple(sample[n] for n in names), str(partial),
                    input_names=names, output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                    dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
                )
            os.replace(partial, path)  # concurrent replicas: whole files only, the last rename wins
        except Exception as exc:  # noqa: BLE001 - any exporter failure means: keep torch
            partial.unlink(missing_ok=True)
            raise OnnxUnavailable(f"export failed: {type(exc).__name__}: {exc}") from exc
        return path


def _last_hidden_state(transformer: Any, names: list[str]) -> Any:
    import torch

    class LastHiddenState(torch.nn.Module):
        """Positional inputs in a fixed order: the exporter passes them so."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: Any) -> Any:
            return self.transformer(**dict(zip(names, inputs))).last_hidden_state

    return LastHiddenState().eval()

