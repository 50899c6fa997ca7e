"""HTML elements to the Markdown-ish text sections carry.

Used for whole HTML pages (``html_parser``) and for the HTML that GitBook
Markdown embeds (``<table>``, ``<details>``). Parsing is BeautifulSoup over
lxml, which repairs broken markup instead of failing. Rendering recurses, but
stops descending at ``_MAX_DEPTH`` and takes the plain text below that, so a
pathologically nested page cannot exhaust the stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from bs4 import BeautifulSoup, NavigableString, Tag

from wekadocs.model import Link

__all__ = ["cell_text", "html_fragment_blocks", "render_block", "soup"]

Resolve = Callable[[str, str], Link]

_MAX_DEPTH = 100
_SPACES = re.compile(r"[ \t\r\f\v]+")
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
BLOCKS = {"p", "pre", "table", "ul", "ol", "blockquote", "dl", "figure", "details"}


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def cell_text(text: str) -> str:
    """One table cell on one line; a literal pipe would break the row."""
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def html_fragment_blocks(html: str, resolve: Resolve) -> Iterator[tuple[str, list[Link]]]:
    """Blocks of an HTML fragment found inside Markdown."""
    body = soup(html).body
    if body is None:
        return
    for child in body.children:
        links: list[Link] = []
        text = render_block(child, resolve, links).strip()
        if text:
            yield text, links


def render_block(node: object, resolve: Resolve, links: list[Link], depth: int = 0) -> str:
    """Render a block-level node; links found are appended to ``links``."""
    if isinstance(node, NavigableString):
        return _SPACES.sub(" ", str(node))
    if not isinstance(node, Tag):
        return ""
    if depth > _MAX_DEPTH:
        return _SPACES.sub(" ", node.get_text(" "))
    name = node.name
    if name == "table":
        return "\n".join(_table_rows(node, resolve, links, depth))
    if name == "pre":
        return f"```\n{node.get_text().rstrip()}\n```"
    if name in ("ul", "ol"):
        return _list(node, resolve, links, depth)
    if name in ("script", "style", "template", "head"):
        return ""
    if name in HEADINGS:
        return "**" + _inline(node, resolve, links, depth).strip() + "**"
    parts = []
    inline: list[str] = []
    for child in node.children:
        if isinstance(child, Tag) and (child.name in BLOCKS or child.name in HEADINGS or child.name == "div"):
            if "".join(inline).strip():
                parts.append(_collapse("".join(inline)))
            inline = []
            parts.append(render_block(child, resolve, links, depth + 1))
        else:
            inline.append(_inline(child, resolve, links, depth + 1))
    if "".join(inline).strip():
        parts.append(_collapse("".join(inline)))
    return "\n\n".join(p for p in parts if p.strip())


def _inline(node: object, resolve: Resolve, links: list[Link], depth: int) -> str:
    if isinstance(node, NavigableString):
        return str(node)
    if not isinstance(node, Tag):
        return ""
    if depth > _MAX_DEPTH:
        return node.get_text(" ")
    name = node.name
    if name == "br":
        return " "
    if name == "code":
        return f"`{node.get_text()}`"
    if name in ("strong", "b"):
        inner = "".join(_inline(child, resolve, links, depth + 1) for child in node.children)
        return f"**{inner}**" if inner.strip() else inner
    if name == "img":
        alt = node.get("alt") or ""
        return f"[image: {alt}]" if alt else ""
    if name in ("script", "style"):
        return ""
    text = "".join(_inline(child, resolve, links, depth + 1) for child in node.children)
    if name == "a" and node.get("href"):
        links.append(resolve(str(node["href"]), _collapse(text)))
    if name in ("p", "div", "li", "tr"):
        text = f" {text} "
    return text


def _table_rows(table: Tag, resolve: Resolve, links: list[Link], depth: int) -> Iterator[str]:
    header_done = False
    for row in table.find_all("tr"):
        cells = row.find_all(["th", "td"], recursive=False)
        texts = [cell_text(_inline(cell, resolve, links, depth + 1)) for cell in cells]
        yield "| " + " | ".join(texts) + " |"
        if not header_done and cells and all(cell.name == "th" for cell in cells):
            yield "|" + " --- |" * len(cells)
            header_done = True


def _list(node: Tag, resolve: Resolve, links: list[Link], depth: int) -> str:
    ordered = node.name == "ol"
    number = int(node.get("start") or 1) if ordered else 0
    lines = []
    for item in node.find_all("li", recursive=False):
        marker = f"{number}. " if ordered else "- "
        number += 1
        body = render_block(item, resolve, links, depth + 1).strip()
        pad = " " * len(marker)
        rendered = body.replace("\n", "\n" + pad)
        lines.append(marker + rendered)
    return "\n".join(lines)


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
