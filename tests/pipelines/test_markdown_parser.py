from __future__ import annotations

from collections.abc import Callable

import pytest

from pipelines.sections import gitbook_anchor
from wekadocs.errors import ParseError
from wekadocs.model import ParsedDocument

Parse = Callable[..., ParsedDocument]

PAGE = """---
description: How to rotate the frobnicator keys.
---

# Rotate keys

Intro paragraph with an escaped under\\_score and a [link](../other/page.md#some-anchor).

## <a href="#before" id="before"></a>Before you begin

{% hint style="warning" %}
Back up the `keystore.db` file first.
{% endhint %}

## Rotate the keys

1. Stop the service:

   ```bash
   weka frob stop --force
   ```
2. Run `weka frob rotate <key-name> [--dry-run]`.
3. Start the service again.

| Name | Value |
| --- | --- |
| `key-name` | The key to rotate |

{% tabs %}
{% tab title="CLI" %}
Use the CLI.
{% endtab %}
{% endtabs %}

![The key dialog](../images/dialog.png)

### Access the `.keys` directory

Text.

### Access the `.keys` directory

Again.
"""


def test_front_matter_title_and_sections(parse: Parse) -> None:
    doc = parse(PAGE)
    assert doc.document.title == "Rotate keys"
    assert doc.document.description == "How to rotate the frobnicator keys."
    assert [s.title for s in doc.sections] == [
        "Rotate keys", "Before you begin", "Rotate the keys",
        "Access the .keys directory", "Access the .keys directory",
    ]
    assert [s.level for s in doc.sections] == [1, 2, 2, 3, 3]
    assert doc.sections[3].trail == ("Rotate keys", "Rotate the keys", "Access the .keys directory")
    assert doc.sections[3].parent_id == doc.sections[2].id
    assert doc.sections[1].parent_id == doc.sections[0].id


def test_anchors_follow_gitbook(parse: Parse) -> None:
    doc = parse(PAGE)
    anchors = [s.anchor for s in doc.sections]
    # explicit <a id> wins; repeated headings get -1; dots survive, backticks go
    assert anchors == ["rotate-keys", "before", "rotate-the-keys",
                       "access-the-.keys-directory", "access-the-.keys-directory-1"]
    assert gitbook_anchor("Appendix A: Security Groups / network ACL ports") == \
        "appendix-a-security-groups-network-acl-ports"
    assert gitbook_anchor("1. Install the WMS") == "1.-install-the-wms"


def test_body_keeps_code_tables_lists_and_drops_liquid_tags(parse: Parse) -> None:
    text = parse(PAGE).sections[2].text
    assert "1. Stop the service:\n\n   ```bash\n   weka frob stop --force\n   ```" in text
    assert "2. Run `weka frob rotate <key-name> [--dry-run]`." in text
    assert "| `key-name` | The key to rotate |" in text
    assert "**CLI:** Use the CLI." in text
    assert "[image: The key dialog]" in text
    assert "{%" not in text
    hint = parse(PAGE).sections[1].text
    assert hint == "Back up the `keystore.db` file first."


def test_escapes_and_links(parse: Parse) -> None:
    intro = parse(PAGE).sections[0]
    assert "under_score" in intro.text
    assert [(link.path, link.anchor) for link in intro.links] == [("other/page.md", "some-anchor")]


def test_line_numbers_point_into_the_file(parse: Parse) -> None:
    lines = PAGE.split("\n")
    for section in parse(PAGE).sections:
        assert section.title.replace(".keys", "`.keys`") in lines[section.line - 1] or \
            section.title in lines[section.line - 1]


def test_ids_are_deterministic_and_positional_shifts_keep_them(parse: Parse) -> None:
    first, again = parse(PAGE), parse(PAGE)
    assert [s.id for s in first.sections] == [s.id for s in again.sections]
    assert [s.checksum for s in first.sections] == [s.checksum for s in again.sections]
    shifted = parse(PAGE.replace("# Rotate keys\n", "# Rotate keys\n\n## New first section\n\nNew.\n"))
    old_ids = {s.title: s.id for s in first.sections if s.title != "Access the .keys directory"}
    new_ids = {s.title: s.id for s in shifted.sections}
    assert all(new_ids[title] == sid for title, sid in old_ids.items())
    # a different version of the same page is a different document
    other = parse(PAGE, version="2.0")
    assert other.document.id != first.document.id


def test_long_sections_split_under_budget_keeping_trail(parse: Parse, count_tokens: Callable[[str], int]) -> None:
    rows = "\n".join(f"| `opt-{i}` | option number {i} does something useful here |" for i in range(120))
    page = f"# Big\n\n## Options\n\n| Name | Value |\n| --- | --- |\n{rows}\n"
    doc = parse(page, budget=128)
    parts = [s for s in doc.sections if s.title == "Options"]
    assert len(parts) > 3
    assert [p.part for p in parts] == list(range(1, len(parts) + 1))
    assert len({p.id for p in parts}) == len(parts)
    for part in parts:
        assert part.trail == ("Big", "Options")
        assert part.tokens <= 128 + 8
        assert part.text.startswith("| Name | Value |\n| --- | --- |")  # header repeated
    joined = "\n".join(p.text for p in parts)
    assert all(f"`opt-{i}`" in joined for i in range(120))


def test_split_code_blocks_stay_fenced(parse: Parse) -> None:
    code = "\n".join(f"weka thing list --page {i} --with-a-long-flag value-{i}" for i in range(80))
    doc = parse(f"# Code\n\n```\n{code}\n```\n", budget=96)
    assert len(doc.sections) > 2
    for section in doc.sections:
        assert section.text.startswith("```") and section.text.endswith("```")


def test_deeply_nested_lists_parse(parse: Parse) -> None:
    nested = "\n".join("  " * depth + "- level " + str(depth) for depth in range(300))
    doc = parse("# Deep\n\n" + nested + "\n## After\n\nStill here.\n")
    assert [s.title for s in doc.sections][0] == "Deep"
    text = "\n".join(s.text for s in doc.sections)
    assert all(f"level {depth}" in text for depth in range(300))  # nothing dropped
    assert doc.sections[-1].title == "After" and doc.sections[-1].text == "Still here."


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "file is empty"),
        (b"  \n\n", "file is empty"),
        (b"# Title\n\xff\xfe broken \xc3\x28", "not valid UTF-8"),
        (b"x" * 2_000_001, "over the 2.0 MB limit"),
    ],
)
def test_bad_input_is_a_clear_error(parse: Parse, raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse(raw, max_bytes=2_000_000)
    assert caught.value.path == "guide/page.md"


def test_unknown_file_types_are_refused(parse: Parse) -> None:
    with pytest.raises(ParseError, match="not a Markdown or HTML file"):
        parse("hello", path="notes.txt")
