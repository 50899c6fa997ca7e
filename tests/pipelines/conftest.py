from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.parse import parse_document
from wekadocs.embedder import TokenCounter
from wekadocs.model import ParsedDocument

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def count_tokens() -> TokenCounter:
    return TokenCounter("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def parse(count_tokens: TokenCounter) -> Callable[..., ParsedDocument]:
    def _parse(text: str | bytes, path: str = "guide/page.md", budget: int = 256, **kw: object) -> ParsedDocument:
        raw = text.encode() if isinstance(text, str) else text
        options = dict(path=path, source="test", version="1.0", source_uri="", count_tokens=count_tokens,
                       token_budget=budget, max_bytes=5_000_000)
        options.update(kw)
        return parse_document(raw, **options)  # type: ignore[arg-type]

    return _parse


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """The shared WEKA corpus; tests that need it say so clearly when it is missing."""
    root = Path(os.environ.get("WEKADOCS_CORPUS", ROOT.parent / "shared" / "corpus" / "weka-docs"))
    if not (root / "4.4").is_dir():
        pytest.fail(f"the WEKA corpus is missing at {root} (set WEKADOCS_CORPUS)")
    return root
