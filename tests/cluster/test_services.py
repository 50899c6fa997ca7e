"""`services up|down|status` against real processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from cluster import processes, services
from tests.conftest import make_settings
from wekadocs.neo4j_password import neo4j_password
from wekadocs.errors import ServiceStartError
from wekadocs.settings import Settings


def test_stack_is_up_and_healthy(stack: list[services.ServiceReport], settings: Settings) -> None:
    by_name = {r.name: r for r in services.status(settings)}
    assert set(by_name) == {"neo4j", "redis", "ray", "prometheus"}
    assert all(r.state == "running" for r in by_name.values())
    assert re.match(r"5\.26\.\d+", by_name["neo4j"].version)
    assert re.match(r"7\.", by_name["redis"].version)
    assert by_name["ray"].version == "2.60.0"
    assert re.match(r"2\.\d+\.\d+", by_name["prometheus"].version)


def test_redis_round_trip_with_aof(settings: Settings, stack: object) -> None:
    client = redis.Redis.from_url(settings.effective_redis_url)
    try:
        client.set("wekadocs:test", "value")
        assert client.get("wekadocs:test") == b"value"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.delete("wekadocs:test")
    finally:
        client.close()


def test_neo4j_listens_on_loopback_only(settings: Settings, stack: object) -> None:
    conf = (settings.data_dir / "neo4j" / "conf" / "neo4j.conf").read_text()
    assert f"server.bolt.listen_address=127.0.0.1:{settings.neo4j_port}" in conf
    assert "server.http.enabled=false" in conf
    assert "dbms.security.auth_enabled=true" in conf


@pytest.fixture
def own_stack(short_tmp: Path) -> Iterator[Settings]:
    """A second, private stack: this test stops it, so it must not share one."""
    settings = make_settings(short_tmp / "own")
    yield settings
    services.down(settings)


def test_up_is_idempotent_and_down_leaves_nothing(own_stack: Settings) -> None:
    first = {r.name: r for r in services.up(own_stack)}
    assert {r.state for r in first.values()} == {"started"}
    second = {r.name: r for r in services.up(own_stack)}
    assert {r.state for r in second.values()} == {"running"}
    assert {n: r.pid for n, r in second.items()} == {n: r.pid for n, r in first.items()}

    markers = {s.name: s.marker for s in services.services_for(own_stack)}
    assert all(processes.processes_matching(m) for m in markers.values())

    stopped = services.down(own_stack)
    assert {r.state for r in stopped} == {"stopped"}
    for name, marker in markers.items():
        assert processes.processes_matching(marker) == [], name
        assert processes.session_members(first[name].pid) == [], name
    assert {r.state for r in services.status(own_stack)} == {"stopped"}
    assert not list((own_stack.data_dir / "run").glob("*.json"))


def test_external_services_are_never_started(short_tmp: Path, settings: Settings, stack: object) -> None:
    external = make_settings(
        short_tmp / "external",
        neo4j_uri=settings.bolt_uri,
        neo4j_password=SecretStr(neo4j_password(settings)),  # an external server's is configured
        redis_url=settings.effective_redis_url,
        ray_address=settings.effective_ray_address,
    )
    reports = {r.name: r for r in services.up(external)}
    assert reports["neo4j"].state == "external" and reports["neo4j"].version.startswith("5.26.")
    assert reports["redis"].state == "external"
    assert reports["ray"].state == "external"
    assert not (external.data_dir / "run").exists()
    assert {r.state for r in services.down(external)} == {"external"}
    # the servers behind them are still up
    assert {r.state for r in services.status(settings)} == {"running"}


def test_unreachable_external_server_is_a_clear_error(short_tmp: Path) -> None:
    nowhere = make_settings(short_tmp / "nowhere", neo4j_uri="bolt://127.0.0.1:1")
    with pytest.raises(ServiceStartError, match="neo4j did not start: external server"):
        services.up(nowhere)
    assert not list((nowhere.data_dir / "run").glob("*.json")), "refused, yet something was started"


def test_port_taken_by_a_stranger_is_named(short_tmp: Path, settings: Settings, stack: object) -> None:
    clash = make_settings(short_tmp / "clash", redis_port=settings.redis_port)
    try:
        with pytest.raises(ServiceStartError, match=f"port {settings.redis_port}.*WEKADOCS_REDIS_PORT"):
            services.up(clash)
        assert not list((clash.data_dir / "run").glob("*.json")), "refused, yet something was started"
    finally:
        services.down(clash)


def test_a_service_that_never_answers_is_stopped_and_named(short_tmp: Path) -> None:
    impatient = make_settings(short_tmp / "impatient", start_timeout_s=0.5)
    try:
        with pytest.raises(ServiceStartError, match=r"(?s)neo4j did not start: no answer within .*console\.log"):
            services.up(impatient)
        marker = services.services_for(impatient)[0].marker
        assert processes.processes_matching(marker) == []
        assert not (impatient.data_dir / "run" / "neo4j.json").exists()
    finally:
        services.down(impatient)


def test_free_ports_are_distinct_and_avoid_what_is_taken() -> None:
    ports = processes.free_ports(64)
    assert len(set(ports)) == 64
    assert processes.free_port(avoid=ports) not in ports
    assert all(processes.port_is_free(port) for port in ports)
