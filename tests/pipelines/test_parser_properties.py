"""Property tests of the Markdown and HTML parsers, through ``parse_document``
as ingestion calls it: any bytes give a document or a ``ParseError``, the same
bytes give the same ids, and no word of a page's text is lost."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st

from wekadocs.errors import ParseError
from wekadocs.model import ParsedDocument

Parse = Callable[..., ParsedDocument]

# Pieces of the syntax each parser knows, mixed with arbitrary text: pure
# random text is almost never a heading, a fence or a GitBook tag.
MARKDOWN_PIECES = [
    "\n", "\n\n", "# ", "## ", "###### ", "####### ", "---\n", "---\ndescription: x\n---\n", "```", "```bash\n",
    "~~~", "    ", "\t", "- ", "* ", "1. ", "99999999999. ", "> ", "| a | b |\n", "| --- | --- |\n", "|",
    "[", "](", ")", "![", "<", ">", "<a id=\"x\"></a>", "<table><tr><td>", "</td></tr></table>", "<br>",
    "<code>", "</code>", "`", "**", "_", "\\", "{% hint style=\"info\" %}", "{% endhint %}", "{% tabs %}",
    "{% tab title=\"T\" %}", "{% endtab %}", "{% endtabs %}", "{% code title=\"c\" %}", "{% endcode %}",
    "{% content-ref url=\"a.md\" %}", "{% endcontent-ref %}", "{% embed url=\"u\" %}", "{%", "%}",
    "&amp;", "&#0;", "\u200b", "\ufeff", "\r\n", "\r", "\x00", "é", "ﬁ", "../", "#anchor", ":", "{#id}",
]
HTML_PIECES = [
    "<html>", "<body>", "</body>", "<h1>", "</h1>", "<h2 id=\"a\">", "</h2>", "<h7>", "<p>", "</p>", "<div>",
    "</div>", "<ul><li>", "</li></ul>", "<ol>", "<pre><code>", "</code></pre>", "<table><tr><th>", "<td>",
    "</table>", "<a href=\"../x.html#y\">", "</a>", "<a href=\"javascript:x\">", "<script>", "</script>",
    "<style>", "</style>", "<br/>", "<!--", "-->", "<![CDATA[", "]]>", "<title>", "</title>", "&nbsp;", "&#x0;",
    "&", "<", ">", "\"", "'", "=", "\n", " ", "\x00", "\ud7ff", "<!DOCTYPE html>", "<svg><text>", "</svg>",
]


def mixed(pieces: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(pieces), st.text(max_size=12)), max_size=60).map("".join)


def outcome(parse: Parse, raw: bytes, path: str, budget: int = 64) -> ParsedDocument | None:
    """The parsed document, or None for a ``ParseError``; anything else fails the test."""
    try:
        return parse(raw, path=path, budget=budget)
    except ParseError:
        return None


def check_document(document: ParsedDocument) -> None:
    ids = [s.id for s in document.sections]
    assert len(ids) == len(set(ids)), "section ids collide"
    assert [s.order for s in document.sections] == list(range(len(ids)))
    known = set()
    for section in document.sections:
        assert section.document_id == document.document.id
        assert section.parent_id is None or section.parent_id in known, "a parent comes before its children"
        assert 0 <= section.level <= 6 and section.trail
        known.add(section.id)


@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".md", ".html"]))
@example(raw=b"\xff\xfe#", suffix=".md")
def test_any_bytes_give_a_document_or_a_parse_error(parse: Parse, raw: bytes, suffix: str) -> None:
    document = outcome(parse, raw, "p/page" + suffix)
    if document is not None:
        check_document(document)


@given(text=mixed(MARKDOWN_PIECES))
def test_markdown_never_crashes_and_is_deterministic(parse: Parse, text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    first = outcome(parse, raw, "guide/page.md")
    again = outcome(parse, raw, "guide/page.md")
    assert first == again  # same bytes, same ids, titles, texts and checksums
    if first is not None:
        check_document(first)


@given(text=mixed(HTML_PIECES))
def test_html_never_crashes_and_is_deterministic(parse: Parse, text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    first = outcome(parse, raw, "guide/page.html")
    again = outcome(parse, raw, "guide/page.html")
    assert first == again
    if first is not None:
        check_document(first)


# --- coverage: every word of a page made of headings and paragraphs is kept ---

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
PARAGRAPH = st.lists(WORDS, min_size=1, max_size=40).map(" ".join)
PAGE = st.lists(st.tuples(st.integers(0, 4), PARAGRAPH), min_size=1, max_size=12)  # (heading level or 0, text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text)


def assert_covered(document: ParsedDocument | None, page: list[tuple[int, str]]) -> None:
    assert document is not None
    kept = set()
    for section in document.sections:
        kept.update(_words(section.text))
        kept.update(_words(" ".join(section.trail)))
    missing = {w for _, text in page for w in _words(text)} - kept
    assert not missing, f"words lost: {sorted(missing)[:10]}"
    titles = {s.title for s in document.sections}
    assert {text for level, text in page if level} <= titles


@given(page=PAGE, budget=st.sampled_from([16, 64, 256]))
def test_markdown_keeps_every_word(parse: Parse, page: list[tuple[int, str]], budget: int) -> None:
    text = "\n\n".join(("#" * level + " " if level else "") + words for level, words in page)
    assert_covered(outcome(parse, text.encode(), "guide/page.md", budget), page)


@given(page=PAGE, budget=st.sampled_from([16, 64, 256]))
def test_html_keeps_every_word(parse: Parse, page: list[tuple[int, str]], budget: int) -> None:
    body = "".join(f"<h{level}>{words}</h{level}>" if level else f"<p>{words}</p>" for level, words in page)
    html = f"<html><head><title>T</title></head><body>{body}</body></html>"
    assert_covered(outcome(parse, html.encode(), "guide/page.html", budget), page)
