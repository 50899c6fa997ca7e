"""Property tests of webhook bodies, from bytes to change events: any body is
a ``GitPush`` or the documented ``PayloadError`` (a 400), never another
exception (a 500); every page path that reaches an event stays inside the
source's docs folder."""

from __future__ import annotations

import json
import math
import posixpath
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from connectors.push_payload import MAX_PATH, GitPush, PayloadError, parse_json
from serve_apps.webhook_app import push_events
from wekadocs.source_registry import SourceConfig

SOURCE = SourceConfig(name="site", kind="github", url="acme/site", docs_path="docs")
ROOTLESS = SourceConfig(name="flat", kind="git", url="https://example.com/flat.git")

# JSON values of any shape, including the numbers Python's json writes but
# JSON forbids (NaN, Infinity) and integers of thousands of digits.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                     st.dictionaries(st.text(max_size=10), inner, max_size=5)),
                    max_leaves=30)

# Paths as a hostile sender writes them: traversal, absolute, empty and dot
# segments, backslashes, control characters, surrogates, very long ones.
SEGMENT = st.one_of(st.sampled_from(["..", ".", "", "docs", "a.md", "x.html", "~", "\\..", "..\\x.md", "\x00",
                                     "\n", "%2e%2e", "\ud800", "C:", "é.md"]),
                    st.text(max_size=8))
PATH = st.one_of(st.lists(SEGMENT, min_size=1, max_size=8).map("/".join), st.text(max_size=40),
                 st.integers(MAX_PATH - 30, MAX_PATH + 5).map(lambda n: "docs/" + "p" * (n - 8) + ".md"))
PATHS = st.one_of(st.lists(PATH, max_size=6), JSON)
COMMIT = st.one_of(st.fixed_dictionaries({}, optional={"added": PATHS, "modified": PATHS, "removed": PATHS}), JSON)
PUSH = st.fixed_dictionaries(
    {},
    optional={"ref": st.one_of(st.just("refs/heads/main"), st.text(max_size=300), JSON),
              "after": st.one_of(st.text(alphabet="0123456789abcdef", max_size=70), JSON),
              "checkout_sha": st.one_of(st.none(), st.text(alphabet="0123456789abcdefg", max_size=70), JSON),
              "commits": st.one_of(st.lists(COMMIT, max_size=4), JSON),
              "repository": JSON},
)

# Pushes that pass the shape checks, so the paths themselves are what varies.
WELL_FORMED = st.fixed_dictionaries({
    "ref": st.just("refs/heads/main"),
    "after": st.text(alphabet="0123456789abcdef", max_size=64),
    "commits": st.lists(st.fixed_dictionaries({}, optional={k: st.lists(PATH, max_size=4)
                                                            for k in ("added", "modified", "removed")}),
                        min_size=1, max_size=3),
})


def encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def inside(root: str, page: str) -> bool:
    """Whether ``page``, taken relative to ``root`` as a reader of the queue
    does, names a file under it."""
    joined = posixpath.normpath(posixpath.join("/" + root, page))
    return joined.startswith("/" + root.rstrip("/") + "/") and page == page.strip("/") and "\\" not in page


@given(body=st.one_of(st.binary(max_size=200), JSON.map(encoded), PUSH.map(encoded)))
@example(body=b'{"a": NaN}')
@example(body=b"[" * 100_000)
@example(body=b'{"n": ' + b"9" * 5000 + b"}")
@example(body=b'{"ref": "refs/heads/main", "commits": [{"added": ["\\ud800.md"]}]}')
def test_any_body_is_a_push_or_a_payload_error(body: bytes) -> None:
    try:
        push = GitPush.parse(parse_json(body))
    except PayloadError as exc:
        assert str(exc) and len(str(exc)) < 2_000  # a short reason for the 400
        return
    assert isinstance(push, GitPush)


@given(payload=st.one_of(PUSH, WELL_FORMED), delivery=st.text(min_size=1, max_size=200))
@example(payload={"ref": "refs/heads/main",
                  "commits": [{"added": ["docs/" + "p" * (MAX_PATH - 8) + ".md"]}]}, delivery="d")
@example(payload={"ref": "refs/heads/main", "commits": [{"added": ["docs/../../etc/passwd.md", "/x.md", "./x.md"]}]},
         delivery="d")
def test_every_event_of_a_valid_push_stays_in_the_docs_folder(payload: dict[str, Any], delivery: str) -> None:
    try:
        push = GitPush.parse(payload)
    except PayloadError:
        return
    for source in (SOURCE, ROOTLESS):
        for event in push_events(source, push, delivery):  # ChangeEvent validation must not fail here
            assert inside("root", event.path), event.path
            assert ".." not in event.path.split("/") and not any(ord(c) < 0x20 for c in event.path)
            paths = {p for c in push.commits for p in (*c.added, *c.modified, *c.removed)}
            assert posixpath.join(source.docs_path, event.path) in paths


@given(value=st.sampled_from([math.nan, math.inf, -math.inf]), where=st.sampled_from(["ref", "after", "x"]))
def test_nan_and_infinity_are_refused(value: float, where: str) -> None:
    try:
        parse_json(encoded({where: [value]}))
    except PayloadError:
        return
    raise AssertionError("a non-finite number was accepted")
