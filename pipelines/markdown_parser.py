"""GitBook-flavoured Markdown to headings and rendered body blocks.

markdown-it-py (CommonMark + tables) does the parsing. GitBook adds things
CommonMark does not know, which we handle before or after it:

* YAML front matter (``description:``) is read and removed;
* ``{% hint %}``, ``{% tabs %}``/``{% tab title=… %}``, ``{% code %}``,
  ``{% content-ref %}``, ``{% embed %}`` and ``{% file %}`` tags are unwrapped,
  keeping what they contain (a tab's title leads its first paragraph), with
  line numbers kept true to the file;
* HTML inside Markdown (``<table>``, ``<a id>`` in headings, ``<br>``,
  ``<code>``) goes through a real HTML parser.

Body text keeps what retrieval and extraction need: code spans in backticks,
code blocks fenced, tables as ``| a | b |`` rows, list items with their
markers (``1.``, ``-``) and nesting.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

import yaml
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pipelines.html_text import cell_text, html_fragment_blocks
from pipelines.links import resolve_link
from pipelines.sections import Body, Heading
from wekadocs.model import Link

__all__ = ["parse_markdown", "MarkdownPage"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_LIQUID = re.compile(r"\{%-?\s*(\w[\w-]*)([^%]*?)-?%\}")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"), None)

# markdown-it stops tokenizing (silently dropping the rest of the page) past
# maxNesting; list items indented deeper than _MAX_LIST_INDENT are pulled back
# to it, so absurdly deep lists become siblings at that depth, not lost text.
_MAX_NESTING = 128
_MAX_LIST_INDENT = 60
_DEEP_ITEM = re.compile(r"^[ \t]{%d,}(?=(?:[-*+]|\d{1,9}[.)])[ \t])" % (_MAX_LIST_INDENT + 1), re.M)

_md = MarkdownIt("commonmark", {"html": True, "maxNesting": _MAX_NESTING}).enable("table")


class MarkdownPage:
    """The result of parsing one page."""

    def __init__(self, title: str, description: str, blocks: list[Heading | Body]) -> None:
        self.title = title
        self.description = description
        self.blocks = blocks


def parse_markdown(text: str, path: str) -> MarkdownPage:
    """Parse one page. ``path`` (relative, '/'-separated) resolves its links."""
    text = text.translate(_INVISIBLE).replace("\r\n", "\n")
    description, text = _front_matter(text)
    text = _unwrap_liquid(text)
    text = _DEEP_ITEM.sub(" " * _MAX_LIST_INDENT, text)
    tokens = _md.parse(text)
    blocks = list(_Renderer(path).blocks(tokens))
    title = next((b.title for b in blocks if isinstance(b, Heading)), "") or _stem(path)
    return MarkdownPage(title=title, description=description, blocks=blocks)


def _front_matter(text: str) -> tuple[str, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return "", text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        data = None  # not front matter after all: keep the text as written
    if not isinstance(data, dict):
        return "", text
    description = data.get("description")
    # Blank lines in its place keep line numbers true to the file.
    blank = "\n" * match.group(0).count("\n")
    return (str(description).strip() if description else ""), blank + text[match.end():]


def _unwrap_liquid(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        return _liquid_text(match) + "\n" * match.group(0).count("\n")  # keep line numbers

    return _LIQUID.sub(replace, text)


def _liquid_text(match: re.Match[str]) -> str:
    tag, args = match.group(1), dict(_ATTR.findall(match.group(2)))
    if tag == "tab" and args.get("title"):
        return f"**{args['title']}:**"  # leads the tab's first paragraph
    if tag in ("embed", "file"):
        url = args.get("url") or args.get("src") or ""
        caption = args.get("caption") or url
        return f"[{caption}]({url})" if url else ""
    return ""  # hint, tabs, code, content-ref and their end tags


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


class _Renderer:
    """Walks markdown-it's flat token stream (no recursion, so deep nesting is
    safe) and yields Heading and Body blocks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lists: list[list[Any]] = []  # [kind, next number, indent]

    def blocks(self, tokens: list[Token]) -> Iterator[Heading | Body]:
        i = 0
        pending_marker = ""
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind == "heading_open":
                inline = tokens[i + 1]
                title, anchor = self._heading(inline)
                line = token.map[0] + 1 if token.map else 0
                yield Heading(int(token.tag[1]), title, anchor, line)
                i += 3
                continue
            if kind in ("bullet_list_open", "ordered_list_open"):
                start = int(token.attrGet("start") or 1)
                self.lists.append(["ol" if kind == "ordered_list_open" else "ul", start, len(self.lists)])
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
            elif kind == "list_item_open":
                current = self.lists[-1]
                pending_marker = f"{current[1]}. " if current[0] == "ol" else "- "
                current[1] += 1
            elif kind == "inline":
                text, links = self._inline(token.children or [])
                if text.strip():
                    yield Body(self._indent(text, pending_marker), tuple(links))
                    pending_marker = ""
            elif kind in ("fence", "code_block"):
                info = (token.info or "").strip().split(" ")[0]
                fence = f"```{info}\n{token.content.rstrip()}\n```"
                yield Body(self._indent(fence, pending_marker))
                pending_marker = ""
            elif kind == "table_open":
                end = _closing(tokens, i, "table_close")
                rows = self._table(tokens[i:end])
                if rows:
                    yield Body("\n".join(rows), tuple(self._links_in(tokens[i:end])))
                i = end + 1
                continue
            elif kind == "html_block":
                for text, links in html_fragment_blocks(token.content, self._resolve):
                    yield Body(self._indent(text, pending_marker), tuple(links))
                    pending_marker = ""
            i += 1

    # --- pieces ---------------------------------------------------------------

    def _heading(self, inline: Token) -> tuple[str, str]:
        anchor = ""
        for child in inline.children or []:
            if child.type == "html_inline":
                found = re.search(r'\bid="([^"]+)"', child.content)
                anchor = anchor or (found.group(1) if found else "")
        text, _ = self._inline(inline.children or [], code_marks=False)
        return _clean_title(text), anchor

    def _inline(self, children: list[Token], *, code_marks: bool = True) -> tuple[str, list[Link]]:
        out: list[str] = []
        links: list[Link] = []
        link_stack: list[tuple[str, int]] = []
        for child in children:
            kind = child.type
            if kind == "text":
                out.append(child.content)
            elif kind == "code_inline":
                out.append(f"`{child.content}`" if code_marks else child.content)
            elif kind in ("softbreak", "hardbreak"):
                out.append(" ")
            elif kind in ("strong_open", "strong_close") and code_marks:
                out.append("**")  # bold leads mark definitions and step titles
            elif kind == "image":
                alt = child.content or ""
                out.append(f"[image: {alt}]" if alt else "")
            elif kind == "link_open":
                link_stack.append((str(child.attrGet("href") or ""), len(out)))
            elif kind == "link_close" and link_stack:
                href, start = link_stack.pop()
                label = "".join(out[start:]).strip()
                links.append(self._resolve(href, label))
            elif kind == "html_inline":
                out.append(_inline_html(child.content, code_marks))
        return "".join(out), links

    def _table(self, tokens: list[Token]) -> list[str]:
        rows: list[str] = []
        cells: list[str] = []
        header_done = False
        for token in tokens:
            if token.type == "tr_open":
                cells = []
            elif token.type == "inline":
                text, _ = self._inline(token.children or [])
                cells.append(cell_text(text))
            elif token.type == "tr_close":
                rows.append("| " + " | ".join(cells) + " |")
            elif token.type == "thead_close" and not header_done:
                rows.append("|" + " --- |" * max(len(cells), 1))
                header_done = True
        return rows

    def _links_in(self, tokens: list[Token]) -> Iterator[Link]:
        for token in tokens:
            if token.type == "inline":
                yield from self._inline(token.children or [])[1]

    def _resolve(self, href: str, label: str) -> Link:
        return resolve_link(self.path, href, label, folder_index="README.md")

    def _indent(self, text: str, marker: str) -> str:
        """Blocks inside list items are indented under their item, three
        spaces a level; an item's first block carries its marker."""
        depth = len(self.lists) - 1 if marker else len(self.lists)
        pad = "   " * max(depth, 0)
        lines = text.split("\n")
        first = f"{pad}{marker}{lines[0]}"
        rest_pad = pad + " " * len(marker)
        return "\n".join([first, *(f"{rest_pad}{line}" if line else line for line in lines[1:])])


def _closing(tokens: list[Token], start: int, kind: str) -> int:
    for j in range(start, len(tokens)):
        if tokens[j].type == kind:
            return j
    return len(tokens) - 1


def _inline_html(html: str, code_marks: bool) -> str:
    tag = html.strip().lower()
    if tag in ("<code>", "</code>"):
        return "`" if code_marks else ""
    if tag.startswith("<br"):
        return " "
    if tag.startswith("<"):
        return ""  # other inline tags: keep their text (separate tokens), drop the tag
    return BeautifulSoup(html, "html.parser").get_text()


def _clean_title(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
