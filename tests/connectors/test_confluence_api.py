"""The Confluence connector against a local server speaking Confluence's v1 wire format."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Callable, Iterator

import pytest

from connectors.confluence_api import ConfluenceConnector
from connectors.source_connector import RateLimited, SourceUnavailable
from pipelines.html_parser import parse_html
from tests.connectors.api_server import Reply
from tests.connectors.confluence_server import TOKEN, USER, ConfluenceSite
from wekadocs.change_event import ChangeEvent
from wekadocs.source_registry import SourceConfig, SourceError

Connect = Callable[..., ConfluenceConnector]


@pytest.fixture
def site() -> Iterator[ConfluenceSite]:
    fake = ConfluenceSite()
    fake.server.start()
    yield fake
    fake.server.stop()


def source(site_url: str, **overrides: object) -> SourceConfig:
    values: dict[str, object] = {"name": "kb", "kind": "confluence", "url": f"{site_url}/wiki", "space": "DOCS",
                                 "token_env": "WD_TEST_CONF_TOKEN", "user_env": "WD_TEST_CONF_USER"}
    values.update(overrides)
    return SourceConfig.model_validate(values)


@pytest.fixture
def connect(site: ConfluenceSite) -> Iterator[Connect]:
    made: list[ConfluenceConnector] = []

    def make(*, token: str = TOKEN, user: str | None = USER, site_url: str | None = None,
             config: SourceConfig | None = None, **options: object) -> ConfluenceConnector:
        connector = ConfluenceConnector(config or source(site_url or site.url), token=token, user=user,
                                        **options)  # type: ignore[arg-type]
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def changes(events: list[ChangeEvent]) -> set[tuple[str, str, str]]:
    return {(event.change, event.path, event.revision) for event in events}


def test_the_first_poll_adds_every_page_following_next_links(site: ConfluenceSite, connect: Connect) -> None:
    pids = [site.add(f"Page {i}") for i in range(5)]
    site.add("Elsewhere", space="OTHER")
    result = connect().poll({})

    assert changes(result.events) == {("added", f"{pid}.html", "1") for pid in pids}
    assert all(e.delivery_id == f"confluence:kb:1:{e.path}" for e in result.events)
    assert set(result.cursor) == {"since", "pages", "listed"}
    requests = site.server.take_requests()
    assert [r.query.get("start", "0") for r in requests] == ["0", "2", "4"]  # 5 pages, 2 at a time
    assert all(r.path == "/wiki/rest/api/content" and r.query["spaceKey"] == "DOCS" and r.query["status"] == "current"
               for r in requests)
    basic = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert all(r.headers["authorization"] == basic for r in requests)


def test_no_change_means_no_events_though_the_overlap_sees_pages_again(site: ConfluenceSite, connect: Connect) -> None:
    pids = [site.add(f"Page {i}") for i in range(3)]
    connector = connect()
    cursor = connector.poll({}).cursor
    site.server.take_requests()
    site.tick(90)

    again = connector.poll(cursor)
    assert again.events == []
    assert sorted(site.last_search) == sorted(pids)  # the minute of overlap found them all again: dropped by version
    requests = site.server.take_requests()
    assert [r.query.get("status") for r in requests if r.path == "/wiki/rest/api/content"] == ["trashed"]
    cqls = {r.query["cql"] for r in requests if r.path == "/wiki/rest/api/content/search"}
    assert len(cqls) == 1
    minutes = int(re.fullmatch(r'space = "DOCS" AND type = page AND lastmodified >= now\("-(\d+)m"\)',
                               cqls.pop())[1])  # type: ignore[index]
    assert 7 <= minutes <= 8  # 90 s since the newest change, plus the 5 minute lookback, rounded up
    assert all(r.query["expand"] == "version" for r in requests if r.path.endswith("/search"))


def test_an_edit_is_modified_and_a_retitle_keeps_the_path(site: ConfluenceSite, connect: Connect) -> None:
    pid, other = site.add("Install", "<p>v1</p>"), site.add("Other")
    connector = connect()
    cursor = connector.poll({}).cursor

    site.tick(60)
    site.edit(pid, "<p>v2</p>")
    edited = connector.poll(cursor)
    assert changes(edited.events) == {("modified", f"{pid}.html", "2")}
    assert edited.events[0].delivery_id == f"confluence:kb:2:{pid}.html"

    site.tick(60)
    site.edit(pid, title="Installing")
    retitled = connector.poll(edited.cursor)
    assert changes(retitled.events) == {("modified", f"{pid}.html", "3")}
    assert connector.read(f"{pid}.html") == b"<h1>Installing</h1>\n<p>v2</p>"
    assert connector.poll(retitled.cursor).events == []
    assert other not in {e.path for e in edited.events + retitled.events}


def test_a_trashed_page_is_removed_at_the_next_poll(site: ConfluenceSite, connect: Connect) -> None:
    keep, gone = site.add("Keep"), site.add("Gone")
    connector = connect()
    first = connector.poll({})
    site.tick(3600)
    site.trash(gone)

    removed = connector.poll(first.cursor)
    assert changes(removed.events) == {("removed", f"{gone}.html", "1")}
    assert removed.events[0].delivery_id.startswith(f"confluence:kb:1:{gone}.html:removed@")
    assert connector.poll(removed.cursor).events == []  # still in the trash: removed once
    assert connector.read(f"{gone}.html") is None
    assert connector.read(f"{keep}.html") == b"<h1>Keep</h1>\n<p>Hello.</p>"

    site.restore(gone)  # back at version 1, with its old modification date
    restored = connect(full_listing_s=0).poll(removed.cursor)
    assert changes(restored.events) == {("added", f"{gone}.html", "1")}
    assert restored.events[0].delivery_id not in {e.delivery_id for e in first.events}


def test_purged_archived_and_moved_pages_are_removed_by_the_full_listing(
        site: ConfluenceSite, connect: Connect) -> None:
    purged, archived, moved, kept = site.add("Purged"), site.add("Archived"), site.add("Moved"), site.add("Kept")
    cursor = connect().poll({}).cursor
    site.tick(60)
    site.purge(purged)
    site.archive(archived)
    site.move(moved, "OTHER")

    assert connect().poll(cursor).events == []  # none of them passed through the trash
    result = connect(full_listing_s=0).poll(cursor)
    assert changes(result.events) == {("removed", f"{purged}.html", "1"), ("removed", f"{archived}.html", "1"),
                                      ("removed", f"{moved}.html", "1")}
    connector = connect()
    assert connector.read(f"{purged}.html") is None
    assert connector.read(f"{archived}.html") is None
    assert connector.read(f"{moved}.html") is None
    assert connector.read(f"{kept}.html") is not None


def test_a_change_the_search_index_missed_is_found_by_the_full_listing(
        site: ConfluenceSite, connect: Connect) -> None:
    pid = site.add("Lagging")
    cursor = connect().poll({}).cursor
    site.tick(60)
    site.edit(pid, "<p>new</p>")
    site.unindexed.add(pid)
    assert connect().poll(cursor).events == []
    assert changes(connect(full_listing_s=0).poll(cursor).events) == {("modified", f"{pid}.html", "2")}


def test_changes_long_after_the_last_one_are_still_in_the_window(site: ConfluenceSite, connect: Connect) -> None:
    quiet = site.add("Quiet")
    connector = connect()
    cursor = connector.poll({}).cursor
    site.tick(3 * 86_400)  # days without a change: the window grows from the last one seen
    busy = site.add("Busy")
    site.tick(30)
    site.edit(busy)
    result = connector.poll(cursor)
    assert changes(result.events) == {("added", f"{busy}.html", "2")}
    assert quiet not in {e.path for e in result.events}


def test_read_gives_the_title_heading_and_the_storage_body(site: ConfluenceSite, connect: Connect) -> None:
    prose = ('<h2>Before you start</h2><p>You need <strong>root</strong>.</p>'
             '<ac:structured-macro ac:name="info" ac:schema-version="1"><ac:rich-text-body><p>Note</p>'
             '</ac:rich-text-body></ac:structured-macro>')
    code = ('<ac:structured-macro ac:name="code" ac:schema-version="1" ac:macro-id="a1b2">'
            '<ac:parameter ac:name="language">python</ac:parameter>'
            '<ac:plain-text-body><![CDATA[if a < b and c]]]]><![CDATA[> 0:\n    print("ok")]]></ac:plain-text-body>'
            '</ac:structured-macro>')
    pid = site.add("Install & upgrade", prose + code)
    site.server.take_requests()
    text = connect().read(f"{pid}.html")
    assert text == (f"<h1>Install &amp; upgrade</h1>\n{prose}"
                    '<pre><code class="language-python">if a &lt; b and c]]&gt; 0:\n    print("ok")</code></pre>').encode()
    (request,) = site.server.take_requests()
    assert request.path == f"/wiki/rest/api/content/{pid}" and "body.storage" in request.query["expand"].split(",")
    parsed = parse_html(text.decode(), f"{pid}.html")
    assert parsed.title == "Install & upgrade"
    assert 'if a < b and c]]> 0:\n    print("ok")' in "\n".join(getattr(b, "text", "") for b in parsed.blocks)

    connector = connect()
    site.trash(pid)
    assert connector.read(f"{pid}.html") is None
    assert connector.read("not-a-page.html") is None
    assert connector.read(f"{pid}.md") is None


def test_a_bearer_token_is_sent_without_a_user(connect: Connect) -> None:
    bearer_site = ConfluenceSite(user=None, token="personal-access-token")
    bearer_site.server.start()
    try:
        bearer_site.add("Page")
        config = source(bearer_site.url, user_env=None)
        result = connect(config=config, token="personal-access-token", user=None).poll({})
        assert len(result.events) == 1
        assert bearer_site.server.take_requests()[0].headers["authorization"] == "Bearer personal-access-token"
        with pytest.raises(SourceUnavailable, match="refused the credentials.*bearer token.*401"):
            connect(config=config, token="expired", user=None).poll({})
    finally:
        bearer_site.server.stop()


def test_refused_credentials_are_a_source_failure(site: ConfluenceSite, connect: Connect) -> None:
    pid = site.add("Page")
    with pytest.raises(SourceUnavailable, match="refused the credentials.*basic auth.*401"):
        connect(token="wrong").poll({})
    site.server.fail_next(Reply(403, {"statusCode": 403, "message": "Forbidden"}))
    with pytest.raises(SourceUnavailable, match="refused the credentials.*403"):
        connect().read(f"{pid}.html")


def test_rate_limits_say_how_long_to_wait(site: ConfluenceSite, connect: Connect) -> None:
    for i in range(3):
        site.add(f"Page {i}")
    connector = connect()
    site.server.fail_next(Reply(429, {"statusCode": 429, "message": "Rate limit exceeded"}, {"Retry-After": "30"}))
    with pytest.raises(RateLimited) as caught:
        connector.poll({})
    assert caught.value.retry_after_s == 30
    site.server.fail_next(Reply(503, {"statusCode": 503, "message": "busy"}, {"Retry-After": "4"}))
    with pytest.raises(RateLimited) as caught:
        connector.read(f"{next(iter(site.pages))}.html")
    assert caught.value.retry_after_s == 4
    assert len(connector.poll({}).events) == 3


def test_server_errors_and_unreachable_servers_are_source_failures(site: ConfluenceSite, connect: Connect) -> None:
    site.add("Page")
    connector = connect()
    site.server.fail_next(Reply(500, {"statusCode": 500, "message": "Internal server error"}))
    with pytest.raises(SourceUnavailable, match="500 Internal server error"):
        connector.poll({})
    site.server.fail_next(Reply(503, {"statusCode": 503, "message": "down"}))
    with pytest.raises(SourceUnavailable, match="503"):
        connector.poll({})
    with pytest.raises(SourceUnavailable, match="not found.*is .*/confluence the site"):
        connect(config=source(site.url, url=f"{site.url}/confluence")).poll({})  # a wrong site URL

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        connect(site_url=closed).poll({})
    site.server.stall_s = 1.0
    with pytest.raises(SourceUnavailable, match="timed out"):
        connect(timeout_s=0.2).poll({})
    site.server.stall_s = 0.0


def test_a_saved_cursor_resumes_in_a_fresh_connector(site: ConfluenceSite, connect: Connect) -> None:
    a, b = site.add("A"), site.add("B")
    cursor = dict(connect().poll({}).cursor)
    assert all(isinstance(v, str) for v in cursor.values())
    site.tick(120)
    site.edit(a)
    c = site.add("C")
    site.trash(b)

    resumed = connect().poll(cursor)
    assert {(e.change, e.path) for e in resumed.events} == {("modified", f"{a}.html"), ("added", f"{c}.html"),
                                                            ("removed", f"{b}.html")}
    replay = connect().poll(cursor)  # a poller that crashed before saving: the same adds and edits, the same ids
    kept = [e.delivery_id for e in resumed.events if e.change != "removed"]
    assert [e.delivery_id for e in replay.events if e.change != "removed"] == kept
    assert connect().poll(resumed.cursor).events == []
    unreadable = connect().poll({"since": "yesterday", "pages": "not base64 zlib"})  # start over, never fail
    assert {(e.change, e.path) for e in unreadable.events} == {("added", f"{a}.html"), ("added", f"{c}.html")}


def test_configuration_is_checked_when_the_connector_is_made(
        site: ConfluenceSite, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SourceError, match="space"):
        ConfluenceConnector(source(site.url, space=""), token=TOKEN, user=USER)
    monkeypatch.delenv("WD_TEST_CONF_USER", raising=False)
    monkeypatch.setenv("WD_TEST_CONF_TOKEN", TOKEN)
    with pytest.raises(SourceError, match="WD_TEST_CONF_USER"):
        ConfluenceConnector(source(site.url))
    monkeypatch.setenv("WD_TEST_CONF_USER", USER)
    site.add("Page")
    connector = ConfluenceConnector(source(site.url))
    try:
        assert len(connector.poll({}).events) == 1
    finally:
        connector.close()
