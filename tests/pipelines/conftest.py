from __future__ import annotations

from collections.abc import Callable

import pytest

from pipelines.parse import parse_document
from wekadocs.embedder import TokenCounter
from wekadocs.model import ParsedDocument

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
