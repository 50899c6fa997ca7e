"""One file's bytes -> a ``ParsedDocument``, or a ``ParseError`` saying why not."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from pipelines.html_parser import parse_html
from pipelines.markdown_parser import parse_markdown
from pipelines.sections import build_sections
from wekadocs.errors import ParseError
from wekadocs.ids import checksum, document_id
from wekadocs.model import Document, ParsedDocument

__all__ = ["parse_document", "PARSERS"]

PARSERS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def parse_document(
    raw: bytes,
    *,
    path: str,
    source: str,
    version: str,
    source_uri: str,
    count_tokens: Callable[[str], int],
    token_budget: int,
    max_bytes: int,
) -> ParsedDocument:
    kind = PARSERS.get(posixpath.splitext(path)[1].lower())
    if kind is None:
        raise ParseError(path, "not a Markdown or HTML file")
    if len(raw) > max_bytes:
        raise ParseError(
            path, f"file is {len(raw) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit "
            "(WEKADOCS_MAX_FILE_MB)"
        )
    if not raw.strip():
        raise ParseError(path, "file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(path, f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from exc
    page = parse_markdown(text, path) if kind == "markdown" else parse_html(text, path)
    doc_id = document_id(source, path, version)
    sections = build_sections(
        doc_id, page.blocks, count_tokens=count_tokens, token_budget=token_budget, root_title=page.title
    )
    if not sections:
        raise ParseError(path, "no text found after parsing")
    document = Document(
        id=doc_id,
        source=source,
        path=path,
        version=version,
        title=page.title,
        description=page.description,
        source_type=kind,
        source_uri=source_uri,
        checksum=checksum(raw),
    )
    return ParsedDocument(document=document, sections=sections)
