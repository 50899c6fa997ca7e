"""From a parser's heading/body stream to ``Section`` records.

Both parsers (Markdown, HTML) emit the same two kinds of block; this module
owns everything they have in common: heading hierarchy and title trails,
GitBook-style anchors, deterministic ids, token counts, checksums, and the
split of sections longer than the token budget.

A section's id comes from its document, its title trail, and how many earlier
sections had the same trail, not from its position: inserting a section above
it does not change its id, so an edit re-writes and re-embeds only what changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from wekadocs.ids import bounded, checksum, stable_id
from wekadocs.model import Link, Section

__all__ = ["Heading", "Body", "build_sections", "gitbook_anchor"]

_NOT_SLUG = re.compile(r"[^\w\s.-]", re.UNICODE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    anchor: str = ""  # explicit id (e.g. <a id="x"> inside the heading); "" = derive
    line: int = 0  # 1-based line in the source file; 0 when unknown (HTML)


@dataclass(frozen=True)
class Body:
    text: str  # one block (paragraph, list, table, code fence), already rendered
    links: tuple[Link, ...] = ()


def gitbook_anchor(title: str) -> str:
    """The fragment GitBook gives a heading: lower case, punctuation dropped
    (but ``.``, ``-`` and ``_`` kept), each run of spaces one ``-``.

    ``Access the .snapshots directory`` -> ``access-the-.snapshots-directory``;
    ``Appendix A: Security Groups / network ACL ports`` ->
    ``appendix-a-security-groups-network-acl-ports``.
    """
    text = unicodedata.normalize("NFC", title).strip().lower()
    text = _NOT_SLUG.sub("", text)
    return _SPACES.sub("-", text.strip())


@dataclass
class _Draft:
    heading: Heading
    anchor: str
    trail: tuple[str, ...]
    parent: int | None  # index into drafts
    blocks: list[Body] = field(default_factory=list)


def build_sections(
    document_id: str,
    blocks: Iterable[Heading | Body],
    *,
    count_tokens: Callable[[str], int],
    token_budget: int,
    root_title: str,
) -> tuple[Section, ...]:
    """Group blocks under their headings and turn each group into sections.

    Text before the first heading becomes a level-0 section titled
    ``root_title`` (the page title), so nothing is dropped.
    """
    drafts = _group(blocks, root_title)
    sections: list[Section] = []
    ids: list[str] = []
    seen_trails: dict[tuple[str, ...], int] = {}
    for draft in drafts:
        occurrence = seen_trails.get(draft.trail, 0)
        seen_trails[draft.trail] = occurrence + 1
        parent_id = ids[draft.parent] if draft.parent is not None else None
        parts = _split(draft.blocks, draft.trail, count_tokens, token_budget)
        first_id = ""
        for part_no, part in enumerate(parts):
            part_index = part_no + 1 if len(parts) > 1 else 0
            section_id = stable_id("section", document_id, part_index, occurrence, *draft.trail)
            first_id = first_id or section_id
            text = "\n\n".join(b.text for b in part)
            links = tuple(link for b in part for link in b.links)
            section = Section(
                id=section_id,
                document_id=document_id,
                level=draft.heading.level,
                title=draft.heading.title,
                anchor=draft.anchor,
                order=len(sections),
                parent_id=parent_id,
                trail=draft.trail,
                text=text,
                tokens=0,
                checksum="",
                part=part_index,
                line=draft.heading.line,
                links=links,
            )
            embed = section.embed_text()
            sections.append(
                replace(section, tokens=count_tokens(embed), checksum=checksum(embed))
            )
        ids.append(first_id)
    return tuple(sections)


def _group(blocks: Iterable[Heading | Body], root_title: str) -> list[_Draft]:
    drafts: list[_Draft] = []
    used_anchors: dict[str, int] = {}
    stack: list[int] = []  # indices of open headings, shallowest first
    current: _Draft | None = None
    for block in blocks:
        if isinstance(block, Heading):
            while stack and drafts[stack[-1]].heading.level >= block.level:
                stack.pop()
            parent = stack[-1] if stack else None
            trail = (drafts[parent].trail if parent is not None else ()) + (block.title,)
            anchor = bounded(_unique(block.anchor or gitbook_anchor(block.title), used_anchors))
            current = _Draft(block, anchor, trail, parent)
            drafts.append(current)
            stack.append(len(drafts) - 1)
        else:
            if current is None:  # text before the first heading
                current = _Draft(Heading(0, root_title), "", (root_title,), None)
                drafts.append(current)
            current.blocks.append(block)
    return drafts


def _unique(anchor: str, used: dict[str, int]) -> str:
    """GitBook suffixes repeated anchors on a page with -1, -2, ..."""
    count = used.get(anchor, 0)
    used[anchor] = count + 1
    return anchor if count == 0 else f"{anchor}-{count}"


def _split(
    blocks: list[Body],
    trail: tuple[str, ...],
    count_tokens: Callable[[str], int],
    budget: int,
) -> list[list[Body]]:
    """Split only when the whole section is over budget; keep blocks whole
    where possible, and cut a single oversized block at line boundaries."""
    overhead = count_tokens(" > ".join(trail))
    if count_tokens("\n\n".join(b.text for b in blocks)) + overhead <= budget:
        return [blocks]
    pieces: list[Body] = []
    for block in blocks:
        if count_tokens(block.text) + overhead <= budget:
            pieces.append(block)
        else:
            pieces.extend(_cut(block, budget - overhead, count_tokens))
    parts: list[list[Body]] = [[]]
    size = overhead
    for piece in pieces:
        cost = count_tokens(piece.text) + 2
        if parts[-1] and size + cost > budget:
            parts.append([])
            size = overhead
        parts[-1].append(piece)
        size += cost
    return parts


def _cut(block: Body, budget: int, count_tokens: Callable[[str], int]) -> list[Body]:
    """Cut one oversized block at line boundaries. Each piece stays well formed
    and self-describing: a table's header row (and separator) is repeated at
    the top of every piece, a code block's fences close and reopen."""
    budget = max(budget, 16)
    lines = block.text.split("\n")
    header: list[str] = []
    footer: list[str] = []
    if len(lines) > 2 and all(line.startswith("|") for line in lines[:2]) and "---" in lines[1]:
        header, lines = lines[:2], lines[2:]
    elif len(lines) > 2 and lines[0].lstrip().startswith("```") and lines[-1].strip() == "```":
        header, footer, lines = lines[:1], lines[-1:], lines[1:-1]
    frame_cost = count_tokens("\n".join(header + footer)) if header else 0
    out: list[Body] = []
    piece: list[str] = []
    size = frame_cost
    for line in _fit_lines(lines, max(budget - frame_cost, 16), count_tokens):
        cost = count_tokens(line) + 1
        if piece and size + cost > budget:
            out.append(Body("\n".join(header + piece + footer)))
            piece, size = [], frame_cost
        piece.append(line)
        size += cost
    if piece:
        out.append(Body("\n".join(header + piece + footer)))
    # links stay with the first piece: they belong to the block as a whole
    return [Body(out[0].text, block.links), *out[1:]] if out else []


def _fit_lines(lines: list[str], budget: int, count_tokens: Callable[[str], int]) -> Iterable[str]:
    """Lines longer than the budget are cut into word runs that fit."""
    for line in lines:
        if count_tokens(line) <= budget:
            yield line
            continue
        run: list[str] = []
        size = 0
        for word in line.split(" "):
            word = word[: budget * 4]  # a "word" of megabytes is still cut
            cost = count_tokens(word)  # per word: linear, and close to the total
            if run and size + cost > budget:
                yield " ".join(run)
                run, size = [], 0
            run.append(word)
            size += cost
        if run:
            yield " ".join(run)
