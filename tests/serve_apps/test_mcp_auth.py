"""Bearer tokens on a real Serve deployment of the MCP app (``WEKADOCS_AUTH=on``):
JWTs signed by a test issuer's keys (a JWKS file), API tokens minted by the
``wekadocs tokens`` command, and the official MCP client carrying them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from ray import serve

from cluster.processes import free_port
from serve_apps.mcp_app import application
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer
from wekadocs.settings import RateLimit, Settings

REPO = Path(__file__).resolve().parents[2]
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
ACCEPT = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def secured(settings: Settings, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    jwks = issuer.write_jwks(tmp_path_factory.mktemp("issuer") / "jwks.json")
    return settings.model_copy(update={
        "auth": "on", "serve_host": "127.0.0.1", "serve_port": free_port(),
        "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_jwks": str(jwks),
        "rate_limits": {"docs:read": RateLimit(rate=2, burst=12), "metrics:read": RateLimit(rate=1, burst=10)},
    })


@pytest.fixture(scope="module")
def base(secured: Settings, ray_connection: object) -> Iterator[str]:
    """The MCP app alone (keyword + graph, no vector store: nothing here needs a model)."""
    serve.start(http_options={"host": secured.serve_host, "port": secured.serve_port})
    serve.run(application(secured, None), name="wekadocs-mcp-auth", route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{secured.serve_port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=30).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        pytest.fail("the secured MCP app did not become healthy")
    yield url
    serve.shutdown()


def wekadocs(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, against the test stack's Redis."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "REDIS_"))}
    env = {**clean, "WEKADOCS_DATA_DIR": str(settings.data_dir), "WEKADOCS_REDIS_PORT": str(settings.redis_port),
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "cluster.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def mint(settings: Settings, name: str, scopes: str) -> str:
    result = wekadocs(settings, "tokens", "create", name, "--scopes", scopes, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["token"]


def post(base: str, token: str | None, body: dict[str, Any] = LIST) -> httpx.Response:
    headers = {**ACCEPT, **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(f"{base}/mcp", json=body, headers=headers, timeout=30)


def with_client(base: str, token: str, tool: str | None = None, arguments: dict[str, Any] | None = None) -> Any:
    async def go() -> Any:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            listed = await client.list_tools()
            result = await client.call_tool(tool, arguments or {}) if tool else None
            return listed, result

    return asyncio.run(go())


def test_no_token_is_401_with_the_resource_metadata_header(base: str) -> None:
    response = post(base, None)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    metadata_url = f"{base}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in challenge
    metadata = httpx.get(metadata_url, timeout=30).json()
    assert metadata["resource"] == f"{base}/mcp"
    assert metadata["authorization_servers"] == [ISSUER]
    root = httpx.get(f"{base}/.well-known/oauth-protected-resource", timeout=30).json()
    assert root["resource"] == f"{base}/mcp" and set(root["scopes_supported"]) == {"docs:read", "metrics:read"}


def test_health_stays_open(base: str) -> None:
    assert httpx.get(f"{base}/health", timeout=30).status_code == 200


@pytest.mark.parametrize("case", ["wrong audience", "expired", "bad signature", "unknown API token", "not a token"])
def test_invalid_tokens_are_401(base: str, issuer: Issuer, case: str) -> None:
    token = {
        "wrong audience": lambda: issuer.token(aud="another-service"),
        "expired": lambda: issuer.token(exp_in=-3600),
        "bad signature": lambda: issuer.token(key=issuer.other_rsa),
        "unknown API token": lambda: "wdk_" + "A" * 43,
        "not a token": lambda: "hello",
    }[case]()
    response = post(base, token)
    assert response.status_code == 401, response.text
    assert "resource_metadata=" in response.headers["WWW-Authenticate"]


def test_the_official_client_with_a_jwt_works(base: str, issuer: Issuer) -> None:
    listed, result = with_client(base, issuer.token(alg="ES256", sub="client-jwt"), "disambiguate",
                                 {"term": "mountd"})
    assert "search_documentation" in {tool.name for tool in listed.tools}
    assert result is not None  # an answer or a tool error: either way the call got through


def test_missing_scope_is_403(base: str, issuer: Issuer, settings: Settings) -> None:
    metrics_only = issuer.token(sub="scraper", scope="metrics:read")
    response = post(base, metrics_only)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    docs_only = mint(settings, "docs-only", "docs:read")
    assert httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {docs_only}"},
                     timeout=30).status_code == 403
    assert httpx.get(f"{base}/metrics", timeout=30).status_code == 401
    scraped = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {metrics_only}"}, timeout=30)
    assert scraped.status_code in (200, 503)  # 503: the node's metrics agent not up yet; past the guard either way


def test_api_token_lifecycle(base: str, settings: Settings) -> None:
    created = wekadocs(settings, "tokens", "create", "ci-bot", "--scopes", "docs:read,metrics:read", "--json")
    assert created.returncode == 0, created.stderr
    shown = json.loads(created.stdout.strip().splitlines()[-1])
    assert set(shown) == {"name", "token", "scopes"}
    assert shown["name"] == "ci-bot" and shown["scopes"] == ["docs:read", "metrics:read"]
    token = shown["token"]

    listed, _ = with_client(base, token)
    assert listed.tools
    again = wekadocs(settings, "tokens", "create", "ci-bot", "--scopes", "docs:read")
    assert again.returncode == 1 and "exists" in again.stderr

    names = json.loads(wekadocs(settings, "tokens", "list", "--json").stdout.strip().splitlines()[-1])
    assert "ci-bot" in {t["name"] for t in names["tokens"]}
    assert token not in json.dumps(names)  # only hashes are kept

    assert wekadocs(settings, "tokens", "revoke", "ci-bot").returncode == 0
    assert post(base, token).status_code == 401  # at once: each request looks the hash up
    assert wekadocs(settings, "tokens", "revoke", "ci-bot").returncode == 1


def test_unknown_scope_is_refused_by_the_cli(settings: Settings) -> None:
    result = wekadocs(settings, "tokens", "create", "x", "--scopes", "docs:write")
    assert result.returncode == 1 and "docs:read" in result.stderr


def test_a_client_over_its_rate_gets_429_while_another_is_served(base: str, issuer: Issuer) -> None:
    """docs:read allows a burst of 12 and 2 a second here. The greedy client
    fires 40 requests at once; the polite one is answered beside them."""
    greedy, polite = issuer.token(sub="greedy"), issuer.token(sub="polite")

    async def go() -> tuple[list[httpx.Response], list[httpx.Response]]:
        headers = {**ACCEPT, "Authorization": f"Bearer {greedy}"}
        async with httpx.AsyncClient(timeout=60) as client:
            burst = [client.post(f"{base}/mcp", json=LIST, headers=headers) for _ in range(40)]
            polite_calls = [client.post(f"{base}/mcp", json=LIST, headers={**ACCEPT, "Authorization":
                                                                          f"Bearer {polite}"}) for _ in range(3)]
            responses = await asyncio.gather(*burst, *polite_calls)
        return list(responses[:40]), list(responses[40:])

    greedy_responses, polite_responses = asyncio.run(go())
    statuses = [r.status_code for r in greedy_responses]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 12, statuses  # the burst, plus what refilled (2/s) while they ran
    refused = [r for r in greedy_responses if r.status_code == 429]
    assert len(refused) >= 10, statuses
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert [r.status_code for r in polite_responses] == [200, 200, 200]
    assert post(base, polite).status_code == 200


def test_the_audit_stream_records_each_call(base: str, issuer: Issuer, settings: Settings) -> None:
    from wekadocs.auth.audit import arguments_digest

    token = issuer.token(sub="auditor")
    calls = [("disambiguate", {"term": "mountd"}), ("explain_architecture", {"topic": "tiering", "top_k": 3}),
             ("no_such_tool", {"x": 1})]
    for tool, arguments in calls:
        with_client(base, token, tool, arguments)

    tail = wekadocs(settings, "audit", "tail", "--json", "-n", "200")
    assert tail.returncode == 0, tail.stderr
    entries = [json.loads(line) for line in tail.stdout.splitlines() if line.startswith("{")]
    mine = [e for e in entries if e["subject"] == "jwt:auditor"]
    assert [e["tool"] for e in mine] == [tool for tool, _ in calls]
    for entry, (_, arguments) in zip(mine, calls):
        assert set(entry) == {"id", "at", "subject", "tool", "args_sha256", "results", "latency_ms", "outcome"}
        assert entry["args_sha256"] == arguments_digest(arguments)
        assert entry["latency_ms"] >= 0 and entry["results"] >= 0
    assert mine[-1]["outcome"] == "error"  # an unknown tool: a tool error, audited all the same
    assert arguments_digest({"b": 1, "a": [1, "é"]}) == arguments_digest({"a": [1, "é"], "b": 1})


def test_audit_tail_follow_prints_new_calls(base: str, issuer: Issuer, settings: Settings) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "REDIS_"))}
    env = {**clean, "WEKADOCS_DATA_DIR": str(settings.data_dir), "WEKADOCS_REDIS_PORT": str(settings.redis_port),
           "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    follower = subprocess.Popen([sys.executable, "-m", "cluster.cli", "audit", "tail", "--follow", "--json", "-n", "1"],
                                stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        time.sleep(3)  # let it print the last entry and block on the stream
        with_client(base, issuer.token(sub="followed"), "disambiguate", {"term": "nfs"})
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            line = follower.stdout.readline()  # type: ignore[union-attr]
            seen.append(line)
            if '"jwt:followed"' in line:
                break
        assert any('"jwt:followed"' in line for line in seen), seen
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        follower.stdout.close()  # type: ignore[union-attr]
