"""Whole HTML pages (exported wikis, Confluence/Notion HTML) to headings and blocks.

Headings may sit deep inside layout containers (``<div>``, ``<section>``,
``<main>``), so containers are walked into; block elements (paragraphs,
lists, tables, code) are rendered whole by ``html_text``. Broken markup is
repaired by the parser rather than rejected.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from bs4 import NavigableString, Tag

from pipelines.html_text import BLOCKS, HEADINGS, Resolve, render_block, soup
from pipelines.links import resolve_link
from pipelines.markdown_parser import MarkdownPage
from pipelines.sections import Body, Heading
from wekadocs.model import Link

__all__ = ["parse_html"]

_MAX_DEPTH = 100
_SKIP = {"script", "style", "nav", "header", "footer", "template", "noscript", "head"}


def parse_html(text: str, path: str) -> MarkdownPage:
    document = soup(text)
    title_tag = document.find("title")
    first_h1 = document.find("h1")
    title = _text(title_tag) or _text(first_h1) or posixpath.splitext(posixpath.basename(path))[0]
    meta = document.find("meta", attrs={"name": "description"})
    description = str(meta.get("content", "")).strip() if isinstance(meta, Tag) else ""
    root = document.body or document
    blocks = list(_walk(root, lambda href, label: resolve_link(path, href, label), 0))
    return MarkdownPage(title=title, description=description, blocks=blocks)


def _walk(node: Tag, resolver: Resolve, depth: int) -> Iterator[Heading | Body]:
    loose: list[str] = []
    for child in node.children:
        if isinstance(child, NavigableString):
            loose.append(str(child))
            continue
        if not isinstance(child, Tag) or child.name in _SKIP:
            continue
        if child.name in HEADINGS or child.name in BLOCKS or depth >= _MAX_DEPTH:
            yield from _flush(loose)
        if child.name in HEADINGS:
            anchor = str(child.get("id") or "")
            yield Heading(int(child.name[1]), _text(child), anchor)
        elif child.name in BLOCKS or depth >= _MAX_DEPTH:
            links: list[Link] = []
            text = render_block(child, resolver, links).strip()
            if text:
                yield Body(text, tuple(links))
        elif child.find(list(HEADINGS | BLOCKS)) is not None:
            yield from _flush(loose)
            yield from _walk(child, resolver, depth + 1)
        else:
            loose.append(child.get_text(" "))
    yield from _flush(loose)


def _flush(loose: list[str]) -> Iterator[Body]:
    text = re.sub(r"\s+", " ", "".join(loose)).strip()
    loose.clear()
    if text:
        yield Body(text)


def _text(tag: object) -> str:
    if not isinstance(tag, Tag):
        return ""
    return re.sub(r"\s+", " ", tag.get_text(" ")).strip()
