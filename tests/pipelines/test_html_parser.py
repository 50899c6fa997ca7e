from __future__ import annotations

from collections.abc import Callable

from wekadocs.model import ParsedDocument

Parse = Callable[..., ParsedDocument]

PAGE = """<!doctype html><html><head><title>Cluster guide</title>
<meta name="description" content="Running the cluster."></head>
<body><nav>skip me</nav><main><div class="content">
<h1>Cluster guide</h1><p>Welcome to the <a href="setup/intro.html#start">setup</a>.</p>
<div><h2 id="add-nodes">Add nodes</h2>
<ol><li>Run <code>weka cluster container add host1</code>.</li><li>Apply the change.</li></ol>
<table><tr><th>Name</th><th>Value</th></tr><tr><td><code>host</code></td><td>a | b</td></tr></table>
<pre>weka cluster container apply --all</pre></div>
</div></main><script>var x = 1;</script></body></html>"""


def test_headings_inside_layout_containers(parse: Parse) -> None:
    doc = parse(PAGE, path="guide/cluster.html")
    assert doc.document.source_type == "html"
    assert doc.document.title == "Cluster guide"
    assert doc.document.description == "Running the cluster."
    assert [(s.level, s.title, s.anchor) for s in doc.sections] == [
        (1, "Cluster guide", "cluster-guide"),
        (2, "Add nodes", "add-nodes"),
    ]


def test_blocks_render_as_markdownish_text(parse: Parse) -> None:
    text = parse(PAGE, path="guide/cluster.html").sections[1].text
    assert "1. Run `weka cluster container add host1`." in text
    assert "2. Apply the change." in text
    assert "| Name | Value |\n| --- | --- |\n| `host` | a \\| b |" in text
    assert "```\nweka cluster container apply --all\n```" in text
    assert "skip me" not in text and "var x" not in text


def test_links_resolve_relative_to_the_page(parse: Parse) -> None:
    intro = parse(PAGE, path="guide/cluster.html").sections[0]
    assert [(l.path, l.anchor) for l in intro.links] == [("guide/setup/intro.html", "start")]


def test_broken_html_is_repaired_not_rejected(parse: Parse) -> None:
    broken = "<html><body><h2>Unclosed<p>first <b>bold <i>both</b> para<h2>Second</h3><li>item<table><tr><td>cell"
    doc = parse(broken, path="broken.html")
    titles = [s.title for s in doc.sections]
    assert titles[-1] == "Second"
    assert any("cell" in s.text for s in doc.sections)


def test_pathological_nesting_does_not_exhaust_the_stack(parse: Parse) -> None:
    deep = "<html><body><h1>Deep</h1>" + "<div><section>" * 3000 + "<p>bottom text</p>" + "</section></div>" * 3000
    doc = parse(deep, path="deep.html")
    assert any("bottom text" in s.text for s in doc.sections)
