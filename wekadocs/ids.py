"""Deterministic ids: SHA-256 of a normalized tuple.

The same input gives the same id on every run and machine, so re-ingesting
unchanged text MERGEs onto the nodes already there instead of creating new
ones. Parts are joined with a unit separator that cannot occur in them after
normalization, so ("a b", "c") and ("a", "b c") never collide.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["stable_id", "normalize_part", "checksum", "document_id", "bounded", "MAX_INDEXED_BYTES"]

_SEPARATOR = "\x1f"
# Neo4j refuses to index a property value over ~8 kB, and the refusal fails
# the whole write transaction (every page in it). Indexed text we derive from
# page content (anchors, entity names) stays far below that.
MAX_INDEXED_BYTES = 512
_SPACE = re.compile(r"\s+")


def normalize_part(part: object) -> str:
    """NFC, whitespace collapsed, trimmed; the separator itself removed."""
    text = unicodedata.normalize("NFC", str(part))
    return _SPACE.sub(" ", text.replace(_SEPARATOR, " ")).strip()


def stable_id(kind: str, *parts: object) -> str:
    """Hex SHA-256 of ``kind`` and the normalized ``parts``."""
    joined = _SEPARATOR.join([kind, *(normalize_part(p) for p in parts)])
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def checksum(text: str | bytes) -> str:
    """Hex SHA-256 of content, for change detection (no normalization)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def document_id(source: str, path: str, version: str) -> str:
    """Documents are keyed by source + path + version: the same page in 22
    versions is 22 documents (whose identical sections share embeddings)."""
    return stable_id("document", source, path, version)


def bounded(text: str, max_bytes: int = MAX_INDEXED_BYTES) -> str:
    """``text`` if it fits in ``max_bytes`` of UTF-8; else its start and a
    digest of the whole, so two long values that share a start stay apart."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    head = raw[: max_bytes - 17].decode("utf-8", "ignore")
    return f"{head}-{checksum(text)[:16]}"
