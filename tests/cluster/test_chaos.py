"""The fast chaos scenarios (cluster/chaos), on the test stack with the service deployed.

Real faults: the vector owner's and the freshness actors' processes get
SIGKILL, a Serve replica gets SIGKILL, Redis is stopped and started, Neo4j
is frozen with SIGSTOP and then killed. The Neo4j scenario runs last: the
other modules find it restarted. Times are printed by ``perf/chaos.py``,
never asserted here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from cluster.chaos import (
    Outcome,
    PushTarget,
    freshness_actors_killed,
    neo4j_stopped,
    redis_restarted,
    serve_replica_killed,
    vector_owner_killed,
)
from cluster.chaos.clients import PushSender
from cluster.serve_runner import ServedApp
from cluster.source_admin import SourceAdmin
from tests.conftest import SLICE_VERSION
from tests.git_repo import Repo
from wekadocs.settings import Settings
from wekadocs.source_registry import SourceConfig

SECRET_ENV = "WEKADOCS_CHAOS_HOOK_SECRET"
SECRET = "chaos-secret"


@pytest.fixture(scope="module")
def target(settings: Settings, served: ServedApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushTarget]:
    """A git source the deployed consumer follows, first ingested by a poll."""
    repo = Repo(tmp_path_factory.mktemp("chaos") / "docs-repo")
    repo.write("docs/seed.md", "# Chaos seed\n\nThe page the first poll brings in.\n")
    repo.commit("seed")
    name = f"chaos-{uuid.uuid4().hex[:6]}"
    admin = SourceAdmin(settings)
    admin.add(SourceConfig(name=name, kind="git", url=str(repo.root), docs_path="docs", interval_s=3600,
                           webhook_secret_env=SECRET_ENV), environ={SECRET_ENV: SECRET})
    target = PushTarget(settings, name, "main", "docs", repo, PushSender(served.webhooks_url, SECRET, str(repo.root)))
    missing, _ = target.drain(["seed.md"], 0.0, 180)
    assert not missing, "the first poll of the chaos source did not apply its seed page"
    yield target
    admin.remove(name)
    admin.client.close()


def whole(outcome: Outcome) -> None:
    print(outcome)
    assert (outcome.failed, outcome.lost, outcome.duplicated) == (0, 0, 0), outcome
    assert outcome.recovery_s is not None, outcome


def test_the_vector_owner_killed_under_load_degrades_answers_and_costs_no_call(
        settings: Settings, served: ServedApp) -> None:
    outcome = vector_owner_killed(settings, served.url, version=SLICE_VERSION)
    whole(outcome)
    assert outcome.sent >= 8


def test_a_serve_replica_killed_under_load_costs_no_call(settings: Settings, served: ServedApp) -> None:
    outcome = serve_replica_killed(settings, served.url.removesuffix("/mcp"), version=SLICE_VERSION)
    whole(outcome)
    assert outcome.sent >= 16


def test_a_redis_restart_during_a_burst_loses_no_event_and_no_state(target: PushTarget) -> None:
    outcome = redis_restarted(target, pages=16)
    whole(outcome)
    assert outcome.details["sources, cursor, tokens survived"] is True
    assert outcome.details["deliveries accepted"] == 16


def test_killed_freshness_actors_come_back_and_redeliver_what_was_pending(target: PushTarget) -> None:
    outcome = freshness_actors_killed(target, pages=24)
    whole(outcome)
    assert outcome.details["pending at the kill"] > 0
    # each entry the dead consumer held is delivered again exactly once
    assert outcome.details["redelivered to the new consumer"] == outcome.details["pending at the kill"]
    assert outcome.details["supervisor back"] is True


def test_neo4j_frozen_then_killed_during_a_burst_loses_nothing(target: PushTarget) -> None:
    outcome = neo4j_stopped(target, pages=12, frozen_s=6)
    whole(outcome)
    assert "open" in outcome.details["consumer store breaker seen"], outcome
    assert outcome.details["dead-lettered"] == 0


def test_the_outcome_table_names_every_figure() -> None:
    from cluster.chaos import format_table

    table = format_table([Outcome("x", sent=3, failed=1, retried=2, lost=0, duplicated=0, recovery_s=None,
                                  details={"k": "v"})])
    assert "never" in table and "k: v" in table and table.splitlines()[0].split()[:3] == ["scenario", "sent", "failed"]

