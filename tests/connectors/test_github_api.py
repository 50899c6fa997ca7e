"""The GitHub connector against a local server speaking GitHub's REST wire
format (``github_server.FakeGitHub``): real HTTP, nothing mocked."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from connectors.github_api import GitHubConnector, parse_repo
from connectors.source_connector import Poll, RateLimited, SourceUnavailable
from tests.connectors.github_server import COMPARE_FILES_CAP, FakeGitHub
from wekadocs.source_registry import SourceConfig, SourceError

TOKEN = "s3cret"
OLD_NAME = "# Moving page\n\n" + "A body long enough to be recognised as a rename.\n" * 5
FIRST = {
    "docs/intro.md": "# Intro\n\nHello.\n",
    "docs/guide/setup.md": "# Setup\n\nInstall it.\n",
    "docs/guide/with space.md": "# Spaces\n",
    "docs/old-name.md": OLD_NAME,
    "docs/index.html": "<h1>Home</h1>\n",
    "docs/diagram.png": b"\x89PNG not a page",
    "docsy/lookalike.md": "# outside: only the prefix matches\n",
    "drafts/ready.md": "# Ready to publish\n",
    "src/main.py": "print('not docs')\n",
    "README.md": "# Readme\n",
}
FIRST_PAGES = {"intro.md", "guide/setup.md", "guide/with space.md", "old-name.md", "index.html"}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub("acme", "handbook", token=TOKEN).start()
    server.push(FIRST, "first")
    yield server
    server.stop()


def make_config(github: FakeGitHub, **overrides: str) -> SourceConfig:
    values = {"name": "handbook", "kind": "github", "url": "https://github.com/acme/handbook",
              "api_url": github.url, "docs_path": "docs", **overrides}
    return SourceConfig.model_validate(values)


@pytest.fixture
def connector(github: FakeGitHub) -> Iterator[GitHubConnector]:
    connector = GitHubConnector(make_config(github), token=TOKEN, timeout_s=5)
    yield connector
    connector.close()


def changes(poll: Poll) -> set[tuple[str, str, str | None]]:
    return {(e.change, e.path, e.old_path) for e in poll.events}


# -- polling -----------------------------------------------------------------


def test_the_first_poll_lists_every_docs_page_as_added(github: FakeGitHub, connector: GitHubConnector) -> None:
    poll = connector.poll({})
    head = github.head
    assert changes(poll) == {("added", page, None) for page in FIRST_PAGES}
    assert all(e.source == "handbook" and e.revision == head and e.priority == "normal" for e in poll.events)
    assert {e.delivery_id for e in poll.events} == {f"github:handbook:{head}:{page}" for page in FIRST_PAGES}
    assert poll.cursor == {"revision": head, "etag": github.seen("/branches/main")[-1].response_headers["etag"]}
    assert not github.seen("/compare/")


def test_every_request_carries_the_token_and_the_api_headers(github: FakeGitHub,
                                                             connector: GitHubConnector) -> None:
    connector.poll({})
    connector.read("intro.md")
    assert github.requests
    for seen in github.requests:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["x-github-api-version"] == "2022-11-28"
        assert seen.headers["user-agent"].startswith("wekadocs")
        assert seen.headers["accept"].startswith("application/vnd.github")


def test_an_unchanged_branch_is_asked_conditionally_and_costs_no_quota(github: FakeGitHub,
                                                                      connector: GitHubConnector) -> None:
    cursor = connector.poll({}).cursor
    quota, asked = github.remaining, len(github.requests)
    poll = connector.poll(cursor)
    assert poll.events == [] and poll.cursor == cursor
    (seen,) = github.requests[asked:]  # one request, nothing listed or compared
    assert seen.headers["if-none-match"] == cursor["etag"] and seen.status == 304
    assert github.remaining == quota


def test_a_commit_yields_exactly_its_page_changes(github: FakeGitHub, connector: GitHubConnector) -> None:
    cursor = connector.poll({}).cursor
    head = github.push({
        "docs/new.md": "# New\n",
        "docs/intro.md": "# Intro\n\nHello again.\n",
        "docs/guide/setup.md": None,
        "docs/old-name.md": None, "docs/renamed.md": OLD_NAME,
        "docs/diagram.png": None, "src/main.py": "print('changed')\n",
    })
    poll = connector.poll(cursor)
    assert changes(poll) == {("added", "new.md", None), ("modified", "intro.md", None),
                             ("removed", "guide/setup.md", None), ("renamed", "renamed.md", "old-name.md")}
    assert all(e.revision == head and e.delivery_id == f"github:handbook:{head}:{e.path}" for e in poll.events)
    (compare,) = github.seen("/compare/")
    assert compare.path.endswith(f"/compare/{cursor['revision']}...{head}")
    assert poll.cursor["revision"] == head and poll.cursor["etag"] != cursor["etag"]
    assert connector.poll(poll.cursor).events == []


def test_renames_across_the_docs_boundary_become_additions_and_removals(github: FakeGitHub,
                                                                       connector: GitHubConnector) -> None:
    cursor = connector.poll({}).cursor
    github.push({"docs/old-name.md": None, "archive/old-name.md": OLD_NAME,
                 "drafts/ready.md": None, "docs/ready.md": FIRST["drafts/ready.md"]})
    poll = connector.poll(cursor)
    assert changes(poll) == {("removed", "old-name.md", None), ("added", "ready.md", None)}
    (compare,) = github.seen("/compare/")
    assert {f["status"] for f in compare.json()["files"]} == {"renamed"}  # GitHub called both renames


def test_a_commit_outside_the_docs_moves_the_cursor_without_events(github: FakeGitHub,
                                                                  connector: GitHubConnector) -> None:
    cursor = connector.poll({}).cursor
    head = github.push({"src/main.py": "print('only code')\n", "docsy/lookalike.md": "# still outside\n"})
    poll = connector.poll(cursor)
    assert poll.events == [] and poll.cursor["revision"] == head


def test_a_long_comparison_pages_its_commits_but_lists_files_once(github: FakeGitHub,
                                                                connector: GitHubConnector) -> None:
    cursor = connector.poll({}).cursor
    github.push({"docs/early.md": "# Early\n"})
    for n in range(259):
        github.push({"docs/intro.md": f"# Intro\n\nEdit {n}.\n"})
    poll = connector.poll(cursor)
    assert changes(poll) == {("added", "early.md", None), ("modified", "intro.md", None)}
    (compare,) = github.seen("/compare/")
    assert 'rel="next"' in compare.response_headers["link"]  # commits go on; files were all on this page


def test_more_changed_files_than_compare_lists_are_found_by_diffing_trees(github: FakeGitHub,
                                                                         connector: GitHubConnector) -> None:
    cursor = connector.poll({}).cursor
    bulk = {f"docs/bulk/p{n:03}.md": f"# Page {n}\n" for n in range(COMPARE_FILES_CAP + 1)}
    github.push({**bulk, "docs/intro.md": None, "docs/index.html": "<h1>Home, again</h1>\n"})
    poll = connector.poll(cursor)
    (compare,) = github.seen("/compare/")
    assert len(compare.json()["files"]) == COMPARE_FILES_CAP  # the removal and the edit were cut off
    expected = {("added", path.removeprefix("docs/"), None) for path in bulk}
    assert changes(poll) == expected | {("removed", "intro.md", None), ("modified", "index.html", None)}


def test_diverged_history_is_diffed_from_the_old_head(github: FakeGitHub, connector: GitHubConnector) -> None:
    first = github.head
    github.push({"docs/dropped.md": "# Dropped later\n", "docs/intro.md": "# Intro, rewritten away\n"})
    cursor = connector.poll({}).cursor
    github.reset(first)  # force push: a new line of history from the first commit
    github.push({"docs/kept.md": "# Kept\n"})
    poll = connector.poll(cursor)
    (compare,) = github.seen("/compare/")
    assert compare.json()["status"] == "diverged"  # its files start at the merge base, not our old head
    assert changes(poll) == {("removed", "dropped.md", None), ("modified", "intro.md", None),
                             ("added", "kept.md", None)}


def test_a_vanished_base_lists_every_page_again(github: FakeGitHub, connector: GitHubConnector) -> None:
    first = github.head
    old = github.push({"docs/dropped.md": "# Dropped later\n"})
    cursor = connector.poll({}).cursor
    github.reset(first)
    head = github.push({"docs/kept.md": "# Kept\n"})
    github.forget(old)
    poll = connector.poll(cursor)
    assert github.seen("/compare/")[-1].status == 404
    assert changes(poll) == {("added", page, None) for page in FIRST_PAGES | {"kept.md"}}
    assert poll.cursor["revision"] == head


def test_a_tree_too_big_to_list_at_once_is_walked_toward_the_docs(github: FakeGitHub,
                                                                 connector: GitHubConnector) -> None:
    github.tree_limit = 4
    poll = connector.poll({})
    assert changes(poll) == {("added", page, None) for page in FIRST_PAGES}
    root = next(s for s in github.seen("/git/trees/") if "recursive" not in s.query)
    src = next(e["sha"] for e in root.json()["tree"] if e["path"] == "src")
    assert not github.seen(src)  # folders outside the docs are never listed


# -- reading -----------------------------------------------------------------


def test_read_returns_the_page_as_it_is_now_on_the_branch(github: FakeGitHub, connector: GitHubConnector) -> None:
    assert connector.read("guide/with space.md") == b"# Spaces\n"
    head = github.push({"docs/intro.md": "# Intro\n\nNewer.\n", "docs/guide/setup.md": None})
    assert connector.read("intro.md", head) == b"# Intro\n\nNewer.\n"
    assert connector.read("guide/setup.md", head) is None
    seen = github.seen("/contents/docs/intro.md")[-1]
    assert seen.query == {"ref": "main"} and seen.headers["accept"] == "application/vnd.github.raw+json"


def test_read_does_not_take_a_lost_repository_for_a_removed_page(github: FakeGitHub) -> None:
    config = make_config(github, url="acme/elsewhere")
    with GitHubConnector(config, token=TOKEN) as connector, \
            pytest.raises(SourceUnavailable, match="acme/elsewhere"):
        connector.read("intro.md")


# -- credentials and configuration -------------------------------------------


def test_the_token_comes_from_the_named_environment_variable(github: FakeGitHub,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDBOOK_TOKEN", TOKEN)
    with GitHubConnector(make_config(github, token_env="HANDBOOK_TOKEN")) as connector:
        assert len(connector.poll({}).events) == len(FIRST_PAGES)
    assert github.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    monkeypatch.delenv("HANDBOOK_TOKEN")
    with pytest.raises(SourceError, match="HANDBOOK_TOKEN"):
        GitHubConnector(make_config(github, token_env="HANDBOOK_TOKEN"))


def test_a_refused_token_is_a_source_failure(github: FakeGitHub) -> None:
    with GitHubConnector(make_config(github), token="wrong") as connector, \
            pytest.raises(SourceUnavailable, match="refused the token"):
        connector.poll({})
    assert github.requests[-1].status == 401


def test_a_private_repository_without_a_token_is_named(github: FakeGitHub) -> None:
    with GitHubConnector(make_config(github)) as connector, \
            pytest.raises(SourceUnavailable, match="acme/handbook .*not found"):
        connector.poll({})
    assert "authorization" not in github.requests[-1].headers


def test_a_missing_branch_is_named(github: FakeGitHub) -> None:
    with GitHubConnector(make_config(github, branch="gone"), token=TOKEN) as connector, \
            pytest.raises(SourceUnavailable, match="'gone' not found"):
        connector.poll({})


@pytest.mark.parametrize(("url", "expected"), [
    ("https://github.com/acme/handbook", ("acme", "handbook")),
    ("https://github.com/acme/handbook.git", ("acme", "handbook")),
    ("git@github.com:acme/handbook.git", ("acme", "handbook")),
    ("ssh://git@ghe.example.com:2222/acme/hand.book.git", ("acme", "hand.book")),
    ("acme/handbook", ("acme", "handbook")),
])
def test_repository_urls_name_owner_and_repo(url: str, expected: tuple[str, str]) -> None:
    assert parse_repo(url) == expected


@pytest.mark.parametrize("url", ["handbook", "https://github.com/acme", "https://github.com/acme/handbook/tree/main",
                                 "acme/..", "not a url at all"])
def test_urls_without_a_repository_are_refused(url: str) -> None:
    config = SourceConfig(name="handbook", kind="github", url=url)
    with pytest.raises(SourceError, match="cannot read a GitHub repository"):
        GitHubConnector(config, token=TOKEN)


# -- failures ----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_source_failures(github: FakeGitHub, connector: GitHubConnector, status: int) -> None:
    github.reply_next(status, {"message": "Server Error"})
    with pytest.raises(SourceUnavailable, match=f"answered {status}"):
        connector.poll({})


def test_an_unreachable_api_is_a_source_failure(github: FakeGitHub) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = make_config(github, api_url=f"http://127.0.0.1:{port}")  # nothing listens there now
    with GitHubConnector(config, token=TOKEN) as connector, pytest.raises(SourceUnavailable, match="cannot reach"):
        connector.poll({})


def test_a_slow_api_times_out_as_a_source_failure(github: FakeGitHub) -> None:
    github.delay_s = 0.5
    with GitHubConnector(make_config(github), token=TOKEN, timeout_s=0.1) as connector, \
            pytest.raises(SourceUnavailable, match="timed out after 0.1s"):
        connector.poll({})


@pytest.mark.parametrize("status", [403, 429])
def test_an_exhausted_primary_rate_limit_waits_for_its_reset(github: FakeGitHub, connector: GitHubConnector,
                                                            status: int) -> None:
    reset = int(time.time()) + 120
    github.reply_next(status, {"message": "API rate limit exceeded for user ID 1."},
                      {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    with pytest.raises(RateLimited) as caught:
        connector.poll({})
    assert caught.value.retry_after_s == pytest.approx(reset - time.time(), abs=2)


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_waits_what_retry_after_says(github: FakeGitHub, connector: GitHubConnector,
                                                            status: int) -> None:
    github.reply_next(status, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "30"})
    with pytest.raises(RateLimited) as caught:
        connector.read("intro.md")
    assert caught.value.retry_after_s == pytest.approx(30, abs=2)


def test_a_plain_403_is_a_refusal_not_a_rate_limit(github: FakeGitHub, connector: GitHubConnector) -> None:
    github.reply_next(403, {"message": "Resource not accessible by personal access token"})
    with pytest.raises(SourceUnavailable, match="403 Resource not accessible"):
        connector.poll({})
