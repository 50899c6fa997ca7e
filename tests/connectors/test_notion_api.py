"""The Notion connector against a local server speaking Notion's wire format."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from connectors.notion_api import NotionConnector
from connectors.source_connector import RateLimited, SourceUnavailable
from pipelines.markdown_parser import parse_markdown
from pipelines.sections import Heading
from tests.connectors.api_server import Reply
from tests.connectors.notion_server import TOKEN, NotionWorkspace, block, rich
from wekadocs.change_event import ChangeEvent
from wekadocs.source_registry import SourceConfig, SourceError

Connect = Callable[..., NotionConnector]
SETTLED = 300.0  # seconds past an edit after which its minute has surely closed


@pytest.fixture
def notion() -> Iterator[NotionWorkspace]:
    workspace = NotionWorkspace()
    workspace.server.start()
    yield workspace
    workspace.server.stop()


def source(api_url: str, **overrides: object) -> SourceConfig:
    values: dict[str, object] = {"name": "wiki", "kind": "notion", "url": "https://www.notion.so/acme",
                                 "api_url": api_url, "token_env": "WD_TEST_NOTION_TOKEN"}
    values.update(overrides)
    return SourceConfig.model_validate(values)


@pytest.fixture
def connect(notion: NotionWorkspace) -> Iterator[Connect]:
    made: list[NotionConnector] = []

    def make(*, token: str = TOKEN, api_url: str | None = None, **options: object) -> NotionConnector:
        options.setdefault("page_size", 2)
        connector = NotionConnector(source(api_url or notion.url), token=token, **options)  # type: ignore[arg-type]
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def path(pid: str) -> str:
    return pid.replace("-", "") + ".md"


def changes(events: list[ChangeEvent]) -> set[tuple[str, str]]:
    return {(event.change, event.path) for event in events}


def searches(notion: NotionWorkspace) -> list[dict[str, object]]:
    return [r.body for r in notion.server.take_requests() if r.path == "/v1/search"]


def test_the_first_poll_adds_every_page_walking_every_search_page(notion: NotionWorkspace, connect: Connect) -> None:
    pids = [notion.add(f"Page {i}", block("paragraph", f"body {i}")) for i in range(5)]
    notion.tick(SETTLED)
    result = connect().poll({})

    assert changes(result.events) == {("added", path(pid)) for pid in pids}
    for event in result.events:
        page = notion.pages[next(p for p in pids if path(p) == event.path)]
        assert event.revision == notion._page_object(page)["last_edited_time"]
        assert event.delivery_id == f"notion:wiki:{event.revision}:{event.path}"
    assert set(result.cursor) == {"since", "pages", "listed"}
    requests = notion.server.take_requests()
    bodies = [r.body for r in requests]
    assert len(bodies) == 3  # 5 pages, 2 a page
    assert [b.get("start_cursor") is not None for b in bodies] == [False, True, True]
    assert all(b["filter"] == {"property": "object", "value": "page"} and b["page_size"] == 2
               and b["sort"] == {"direction": "descending", "timestamp": "last_edited_time"} for b in bodies)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" and r.headers["notion-version"] == "2022-06-28"
               for r in requests)


def test_no_change_means_no_events_and_the_walk_stops_at_the_mark(notion: NotionWorkspace, connect: Connect) -> None:
    for hours in range(6):  # an hour apart, the newest last
        notion.add(f"Old {hours}", edited=notion.server.clock - 3600 * (6 - hours))
    notion.tick(SETTLED)
    connector = connect()
    cursor = connector.poll({}).cursor
    notion.server.take_requests()

    again = connector.poll(cursor)
    assert again.events == []
    assert len(searches(notion)) == 1  # the second page of results is older than the mark: never asked for
    assert connector.poll(again.cursor).events == []


def test_an_edit_is_modified_and_a_retitle_keeps_the_path(notion: NotionWorkspace, connect: Connect) -> None:
    pid = notion.add("Intro", block("paragraph", "first"))
    other = notion.add("Other")
    notion.tick(SETTLED)
    connector = connect()
    cursor = connector.poll({}).cursor

    notion.edit(pid, block("paragraph", "second"))
    notion.tick(SETTLED)
    edited = connector.poll(cursor)
    assert [(e.change, e.path) for e in edited.events] == [("modified", path(pid))]
    assert edited.events[0].revision == notion._page_object(notion.pages[pid])["last_edited_time"]

    notion.tick(60)
    notion.edit(pid, title="Introduction")
    notion.tick(SETTLED)
    retitled = connector.poll(edited.cursor)
    assert [(e.change, e.path) for e in retitled.events] == [("modified", path(pid))]
    assert connector.read(path(pid)) == b"# Introduction\n\nsecond\n"
    assert path(other) not in {e.path for e in retitled.events}


def test_an_archived_page_is_removed(notion: NotionWorkspace, connect: Connect) -> None:
    keep, gone = notion.add("Keep"), notion.add("Gone")
    notion.tick(SETTLED)
    incremental, full = connect(), connect(full_listing_s=0)
    cursor = incremental.poll({}).cursor

    notion.tick(60)
    notion.archive(gone)
    notion.tick(SETTLED)
    assert incremental.poll(cursor).events == []  # search leaves archived pages out: nothing to see yet
    removed = full.poll(cursor)  # the full listing misses it, and the page itself says archived
    assert [(e.change, e.path) for e in removed.events] == [("removed", path(gone))]
    assert removed.events[0].delivery_id.startswith(f"notion:wiki:{removed.events[0].revision}:{path(gone)}:removed@")
    assert full.poll(removed.cursor).events == []
    assert incremental.read(path(gone)) is None
    assert incremental.read(path(keep)) == b"# Keep\n"


def test_an_archived_page_search_does_list_is_removed_at_once(notion: NotionWorkspace, connect: Connect) -> None:
    notion.archived_in_search = True
    pid = notion.add("Soon gone")
    notion.tick(SETTLED)
    connector = connect()
    cursor = connector.poll({}).cursor
    notion.archive(pid)
    notion.tick(SETTLED)
    result = connector.poll(cursor)
    assert changes(result.events) == {("removed", path(pid))}
    assert connector.poll(result.cursor).events == []


def test_a_deleted_page_is_removed_but_one_search_misses_is_kept(notion: NotionWorkspace, connect: Connect) -> None:
    deleted, missed, plain = notion.add("Deleted"), notion.add("Missed by search"), notion.add("Plain")
    notion.tick(SETTLED)
    connector = connect(full_listing_s=0)
    cursor = connector.poll({}).cursor
    notion.server.take_requests()

    notion.delete(deleted)
    notion.hide(missed)
    result = connector.poll(cursor)
    assert changes(result.events) == {("removed", path(deleted))}
    asked = {r.path for r in notion.server.take_requests() if r.path.startswith("/v1/pages/")}
    assert asked == {f"/v1/pages/{deleted}", f"/v1/pages/{missed}"}  # only the vanished ones are checked
    assert path(plain) not in {e.path for e in result.events}


def test_a_restored_page_comes_back_under_a_new_delivery_id(notion: NotionWorkspace, connect: Connect) -> None:
    notion.archived_in_search = True
    pid = notion.add("Oops")
    notion.tick(SETTLED)
    connector = connect(full_listing_s=0)
    first = connector.poll({})
    notion.archive(pid, touch=False)
    notion.tick(SETTLED)
    removed = connector.poll(first.cursor)
    assert changes(removed.events) == {("removed", path(pid))}
    notion.restore(pid)  # the same last_edited_time as when it was first added
    restored = connector.poll(removed.cursor)
    assert changes(restored.events) == {("added", path(pid))}
    delivered = {e.delivery_id for e in first.events + removed.events}
    assert restored.events[0].delivery_id not in delivered
    assert connector.read(path(pid)) == b"# Oops\n"


def test_a_second_edit_in_the_same_minute_is_not_missed(notion: NotionWorkspace, connect: Connect) -> None:
    notion.tick(60 - notion.server.clock % 60 + 10)  # ten seconds into a minute
    early = notion.add("Early", block("paragraph", "v1"))
    connector = connect()
    first = connector.poll({})
    assert changes(first.events) == {("added", path(early))}

    notion.tick(30)  # the same minute: the timestamps do not move
    notion.edit(early, block("paragraph", "v2"))
    late = notion.add("Late")
    second = connector.poll(first.cursor)
    assert changes(second.events) == {("added", path(late))}  # a new page at the mark is not skipped

    notion.tick(SETTLED)
    settled = connector.poll(second.cursor)
    assert changes(settled.events) == {("modified", path(early)), ("modified", path(late))}
    assert all(e.delivery_id.endswith(":settled") for e in settled.events)
    before = {e.delivery_id for e in first.events + second.events}
    assert not before & {e.delivery_id for e in settled.events}
    assert connector.poll(settled.cursor).events == []
    assert connector.read(path(early)) == b"# Early\n\nv2\n"


def test_a_page_shared_late_with_an_old_timestamp_is_added_by_the_full_listing(
        notion: NotionWorkspace, connect: Connect) -> None:
    notion.add("Recent")
    notion.tick(SETTLED)
    incremental, full = connect(), connect(full_listing_s=0)
    cursor = incremental.poll({}).cursor
    old = notion.add("Shared today, written last year", edited=notion.server.clock - 365 * 86_400)
    assert incremental.poll(cursor).events == []  # older than the mark: the incremental walk stops before it
    found = full.poll(cursor)
    assert changes(found.events) == {("added", path(old))}


def test_read_renders_the_title_and_the_blocks_as_markdown(notion: NotionWorkspace, connect: Connect) -> None:
    pid = notion.add(
        "Setup guide",
        block("heading_1", "Install"),
        block("paragraph", rich_text=[rich("Run "), rich("pip install weka", code=True), rich(" or see "),
                                      rich("the docs", href="https://docs.weka.io"), rich(".")]),
        block("bulleted_list_item", "Linux",
              block("bulleted_list_item", "Ubuntu 22.04"), block("bulleted_list_item", "RHEL 9",
                                                                 block("bulleted_list_item", "9.2 or later"))),
        block("bulleted_list_item", "macOS"),
        block("numbered_list_item", "Download"),
        block("numbered_list_item", "Configure", block("paragraph", "Edit the config file.")),
        block("code", "import weka\nprint(weka.__version__)\n", language="python", caption=[]),
        block("quote", "Back up first."),
        block("callout", "Tip: use SSD.", icon={"type": "emoji", "emoji": "💡"}, color="gray_background"),
        block("to_do", "Read the notes", checked=True),
        block("to_do", "Restart", checked=False),
        block("toggle", "Advanced", block("paragraph", "Only for experts.")),
        block("child_page", title="A sub-page, a document of its own"),
        block("divider"),
        block("heading_2", "Tables"),
        block("table", "", block("table_row", cells=[[rich("Key")], [rich("Value")]]),
              block("table_row", cells=[[rich("a")], [rich("1")]]),
              table_width=2, has_column_header=True, has_row_header=False),
        block("code", "echo hi", language="plain text"),
    )
    notion.server.take_requests()
    text = connect().read(path(pid))
    assert text is not None
    assert text.decode() == (
        "# Setup guide\n\n"
        "## Install\n\n"
        "Run `pip install weka` or see [the docs](https://docs.weka.io).\n\n"
        "- Linux\n"
        "  - Ubuntu 22.04\n"
        "  - RHEL 9\n"
        "    - 9.2 or later\n"
        "- macOS\n"
        "1. Download\n"
        "2. Configure\n\n"
        "   Edit the config file.\n\n"
        "```python\nimport weka\nprint(weka.__version__)\n```\n\n"
        "> Back up first.\n\n"
        "> 💡 Tip: use SSD.\n\n"
        "- [x] Read the notes\n"
        "- [ ] Restart\n\n"
        "Advanced\n\n"
        "Only for experts.\n\n"
        "---\n\n"
        "### Tables\n\n"
        "| Key | Value |\n"
        "| --- | --- |\n"
        "| a | 1 |\n\n"
        "```\necho hi\n```\n")
    children = [r for r in notion.server.take_requests() if r.path == f"/v1/blocks/{pid}/children"]
    assert len(children) > 1 and all(r.query["page_size"] == "2" for r in children)  # the page's blocks, paged

    parsed = parse_markdown(text.decode(), path(pid))
    assert parsed.title == "Setup guide"
    assert [b.title for b in parsed.blocks if isinstance(b, Heading)] == ["Setup guide", "Install", "Tables"]


def test_read_is_none_for_pages_that_are_gone(notion: NotionWorkspace, connect: Connect) -> None:
    archived, deleted = notion.add("Archived"), notion.add("Deleted")
    notion.archive(archived)
    notion.delete(deleted)
    connector = connect()
    assert connector.read(path(archived)) is None
    assert connector.read(path(deleted)) is None
    assert connector.read("not-a-notion-page.md") is None
    assert connector.read(path(archived).replace(".md", ".html")) is None


def test_a_token_notion_refuses_is_a_source_failure(notion: NotionWorkspace, connect: Connect) -> None:
    pid = notion.add("Private")
    connector = connect(token="secret_wrong")
    with pytest.raises(SourceUnavailable, match="refused the credentials.*WD_TEST_NOTION_TOKEN.*401 unauthorized"):
        connector.poll({})
    with pytest.raises(SourceUnavailable, match="refused"):
        connector.read(path(pid))
    assert notion.server.take_requests()[0].headers["authorization"] == "Bearer secret_wrong"


def test_rate_limits_say_how_long_to_wait(notion: NotionWorkspace, connect: Connect) -> None:
    for i in range(3):
        notion.add(f"Page {i}")
    notion.tick(SETTLED)
    connector = connect()
    limited = {"object": "error", "status": 429, "code": "rate_limited", "message": "You have been rate limited."}
    notion.server.fail_next(Reply(429, limited, {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        connector.poll({})
    assert caught.value.retry_after_s == 7

    busy = {"object": "error", "status": 503, "code": "service_unavailable", "message": "Notion is unavailable."}
    notion.server.fail_next(Reply(503, busy, {"Retry-After": "3"}))
    with pytest.raises(RateLimited) as caught:
        connector.read(path(next(iter(notion.pages))))
    assert caught.value.retry_after_s == 3

    first_page = connector.poll({})  # the same poll, once allowed, sees everything
    assert len(first_page.events) == 3


def test_a_limit_in_the_middle_of_paging_moves_no_cursor(notion: NotionWorkspace, connect: Connect) -> None:
    for i in range(5):
        notion.add(f"Page {i}")
    notion.tick(SETTLED)
    connector = connect()
    original = notion.route
    calls = {"search": 0}

    def second_search_limited(request):  # type: ignore[no-untyped-def]
        if request.path == "/v1/search":
            calls["search"] += 1
            if calls["search"] == 2:
                return Reply(429, {"object": "error", "status": 429, "code": "rate_limited", "message": "slow"},
                             {"Retry-After": "1"})
        return original(request)

    notion.server.route = second_search_limited
    with pytest.raises(RateLimited):
        connector.poll({})
    notion.server.route = original
    assert len(connector.poll({}).events) == 5


def test_server_errors_and_unreachable_servers_are_source_failures(notion: NotionWorkspace, connect: Connect) -> None:
    notion.add("Page")
    connector = connect()
    internal = {"object": "error", "status": 500, "code": "internal_server_error", "message": "Unexpected error."}
    notion.server.fail_next(Reply(500, internal))
    with pytest.raises(SourceUnavailable, match="500 internal_server_error"):
        connector.poll({})
    notion.server.fail_next(Reply(503, {"object": "error", "status": 503, "code": "service_unavailable",
                                        "message": "down"}))
    with pytest.raises(SourceUnavailable, match="503"):  # a 503 without Retry-After is an outage
        connector.poll({})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        connect(api_url=closed).poll({})

    notion.server.stall_s = 1.0
    with pytest.raises(SourceUnavailable, match="timed out"):
        connect(timeout_s=0.2).poll({})
    notion.server.stall_s = 0.0


def test_a_saved_cursor_resumes_in_a_fresh_connector(notion: NotionWorkspace, connect: Connect) -> None:
    a, b = notion.add("A", block("paragraph", "a")), notion.add("B")
    notion.tick(SETTLED)
    cursor = dict(connect().poll({}).cursor)  # as the poller stores it: strings only
    assert all(isinstance(v, str) for v in cursor.values())

    notion.tick(60)
    notion.edit(a, block("paragraph", "a2"))
    c = notion.add("C")
    notion.tick(SETTLED)
    resumed = connect().poll(cursor)
    assert changes(resumed.events) == {("modified", path(a)), ("added", path(c))}
    replay = connect().poll(cursor)  # a poller that crashed before saving: the same events, the same ids
    assert [e.delivery_id for e in replay.events] == [e.delivery_id for e in resumed.events]
    assert connect().poll(resumed.cursor).events == []
    assert path(b) not in {e.path for e in resumed.events}
    unreadable = connect().poll({"since": "yesterday", "pages": "not base64 zlib"})  # start over, never fail
    assert changes(unreadable.events) == {("added", path(pid)) for pid in (a, b, c)}


def test_the_token_comes_from_the_named_variable(notion: NotionWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WD_TEST_NOTION_TOKEN", raising=False)
    with pytest.raises(SourceError, match="WD_TEST_NOTION_TOKEN"):
        NotionConnector(source(notion.url))
    monkeypatch.setenv("WD_TEST_NOTION_TOKEN", TOKEN)
    notion.add("Page")
    connector = NotionConnector(source(notion.url))
    try:
        assert len(connector.poll({}).events) == 1
    finally:
        connector.close()
