"""Links as written in a page -> ``Link`` records relative to the ingested root."""

from __future__ import annotations

import posixpath
import re

from wekadocs.model import Link, ParsedDocument

__all__ = ["page_links", "resolve_link"]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def resolve_link(page_path: str, href: str, label: str, *, folder_index: str | None = None) -> Link:
    """Resolve ``href`` found on ``page_path``.

    External links (a scheme, or ``//host``) keep only their URL. A link to a
    folder resolves to ``folder_index`` when given (GitBook: ``README.md``).
    """
    href = href.strip()
    if not href or _SCHEME.match(href) or href.startswith("//"):
        return Link(text=label, path="", anchor="", url=href)
    target, _, fragment = href.partition("#")
    target = target.split("?")[0]
    if not target:
        return Link(text=label, path=page_path, anchor=fragment, url=href)
    if target.startswith("/"):
        resolved = posixpath.normpath(target.lstrip("/"))
    else:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_path), target))
    if folder_index and (target.endswith("/") or not posixpath.splitext(resolved)[1]):
        resolved = posixpath.join(resolved, folder_index)
    return Link(text=label, path=resolved, anchor=fragment, url=href)


def page_links(parsed: ParsedDocument, pages: set[str]) -> set[tuple[str, str, str]]:
    """The page->page links of one parsed page whose target page is in
    ``pages``, as (section id, target path, anchor); links within the page
    are left out. What the graph must hold as LINKS_TO, whatever the order
    the pages were written in."""
    own = parsed.document.path
    return {(section.id, link.path, link.anchor) for section in parsed.sections for link in section.links
            if link.path and link.path != own and link.path in pages}
