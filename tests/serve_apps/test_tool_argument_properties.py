"""Property tests of every MCP tool's arguments, as the SDK validates them
before a tool runs: any arguments are refused with a short validation error,
or become a call the ``Toolbox`` method accepts, with every value inside the
bounds the tool's schema advertises. The stores are not needed: validation
happens before the toolbox is asked for (the server is built with one that
must never be called)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from mcp.server.mcpserver.tools.base import Tool
from pydantic import ValidationError

from serve_apps.mcp_tools import build_mcp_server
from wekadocs.query.tools import EDGE_TYPES, Toolbox


def _never() -> Toolbox:
    raise AssertionError("validation alone must not reach the toolbox")


TOOLS: dict[str, Tool] = {t.name: t for t in build_mcp_server(_never)._tool_manager.list_tools()}
MAX_ERROR_CHARS = 4_000  # a refusal the client reads, not megabytes (issue 14)

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=20)
LONG = st.integers(0, 5_000).map(lambda n: "x" * n)
HOSTILE_TEXT = st.sampled_from(["' OR 1=1 //", "MATCH (n) DETACH DELETE n", "*:*", "\x00", "\ud800", "",
                                " ", "../..", "{}", "9" * 400, "NaN"])


def _typed(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values near the edges of one property's schema, and past them."""
    kinds = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    options: list[st.SearchStrategy[Any]] = [st.none()] if len(kinds) < len(schema.get("anyOf", [schema])) else []
    for kind in kinds:
        if kind.get("type") == "string":
            options.append(st.text(min_size=0, max_size=kind.get("maxLength", 50) + 3))
        elif kind.get("type") == "integer":
            low, high = kind.get("minimum", -5), kind.get("maximum", 1_000)
            options.append(st.integers(low - 3, high + 3))
        elif kind.get("type") == "array":
            item = st.one_of(st.sampled_from(EDGE_TYPES), st.text(max_size=kind["items"].get("maxLength", 40) + 3),
                             st.integers(), st.none())
            options.append(st.lists(item, max_size=kind.get("maxItems", 10) + 3))
    return st.one_of(*options)


def arguments(tool: Tool) -> st.SearchStrategy[dict[str, Any]]:
    properties = tool.parameters["properties"]
    typed = st.fixed_dictionaries({}, optional={name: _typed(schema) for name, schema in properties.items()})
    anything = st.dictionaries(st.one_of(st.sampled_from(sorted(properties)), st.text(max_size=10)),
                               st.one_of(JSON, LONG, HOSTILE_TEXT, st.integers(-10**30, 10**30),
                                         st.lists(st.text(max_size=50), max_size=200)), max_size=6)
    return st.one_of(typed, anything)


def check_within_schema(tool: Tool, validated: dict[str, Any]) -> None:
    for name, value in validated.items():
        schema = tool.parameters["properties"][name]
        if value is None:
            continue
        [kind] = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        if isinstance(value, str):
            assert kind["type"] == "string" and len(value) <= kind["maxLength"] and len(value) >= kind.get("minLength", 0)
        elif isinstance(value, int):
            assert kind["type"] == "integer" and kind["minimum"] <= value <= kind["maximum"]
        else:
            assert kind["type"] == "array" and len(value) <= kind["maxItems"]
            assert all(isinstance(v, str) and len(v) <= kind["items"]["maxLength"] for v in value)


def test_every_tool_is_covered() -> None:
    public = {n for n, f in inspect.getmembers(Toolbox, inspect.isfunction) if not n.startswith("_")}
    assert set(TOOLS) <= public and len(TOOLS) == 9


def _note(outcome: str) -> None:
    if currently_in_test_context():  # Hypothesis's statistics count each outcome
        event(outcome)


def refused_briefly_or_valid(name: str, args: dict[str, Any]) -> None:
    tool = TOOLS[name]
    try:
        validated = tool.fn_metadata.validate_arguments(args)
    except ValidationError as exc:
        _note("refused")
        assert len(str(exc)) < MAX_ERROR_CHARS, f"{len(str(exc))} characters of errors"
        return
    _note("valid call")
    check_within_schema(tool, validated)
    inspect.signature(getattr(Toolbox, name)).bind(None, **validated)  # a call the toolbox takes


@pytest.mark.parametrize("name", sorted(TOOLS))
@given(data=st.data())
def test_arguments_are_refused_briefly_or_make_a_valid_call(name: str, data: st.DataObject) -> None:
    refused_briefly_or_valid(name, data.draw(arguments(TOOLS[name]), label="arguments"))


HOSTILE = [
    {"edge_types": [1] * 10_000, "start": "x"},  # the megabytes-of-errors case of issue 14
    {"query": "x" * 1_000_000, "path_prefix": "p" * 1_000_000, "version": "v" * 1_000_000},
    {"top_k": 10**40, "limit": -(10**40), "depth": "2"},
]


@pytest.mark.parametrize("name", sorted(TOOLS))
@pytest.mark.parametrize("args", HOSTILE)
def test_hostile_arguments_are_refused_briefly(name: str, args: dict[str, Any]) -> None:
    refused_briefly_or_valid(name, args)
