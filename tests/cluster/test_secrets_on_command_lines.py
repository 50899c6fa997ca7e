"""No Neo4j password on any command line, while the stack starts or after.

A command line is readable by every local user (``/proc/<pid>/cmdline``,
``ps``). A sampler reads every process's command line while a private Neo4j
server is first set up (the initial-password step is the one that used to
pass it as an argument) and started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from cluster import services
from tests.conftest import make_settings
from wekadocs.graph_store import GraphStore
from wekadocs.neo4j_password import neo4j_password
from wekadocs.settings import Settings

# Spaces, quotes, a backslash, '#', a leading '-' and '@': what the @-file must keep literal.
AWKWARD = '-@odd #pass "word" \'x\' \\end'


class CommandLineSampler:
    """Reads every process's command line until stopped; keeps those holding ``needle``."""

    def __init__(self, *needles: str) -> None:
        self.needles = [n.encode() for n in needles]
        self.hits: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CommandLineSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(0.005)

    def check_once(self) -> None:
        self.samples += 1
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            if any(n in cmdline for n in self.needles):
                self.hits.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:300])


@pytest.fixture
def private_neo4j(short_tmp: Path, settings: Settings, stack: object) -> Iterator[Settings]:
    """Our own Neo4j on a new data dir, beside the session's Redis and Ray."""
    own = make_settings(short_tmp / "pw-cmdline", neo4j_password=SecretStr(AWKWARD),
                        redis_url=settings.effective_redis_url, ray_address=settings.effective_ray_address)
    yield own
    services.down(own)


def test_the_initial_password_never_appears_on_a_command_line(private_neo4j: Settings) -> None:
    with CommandLineSampler(AWKWARD, AWKWARD.split()[-1] + "d") as sampler:
        reports = {r.name: r.state for r in services.up(private_neo4j)}
    assert reports["neo4j"] == "started"
    assert sampler.samples > 50 and sampler.hits == []
    with GraphStore.connect(private_neo4j, retry_s=0) as graph:  # and it is the password that was set
        assert graph.read("RETURN 1 AS ok") == [{"ok": 1}]
    assert not list((private_neo4j.data_dir / "neo4j" / "run").glob(".initial-password-*"))


def test_the_running_stack_shows_no_password(settings: Settings, stack: object) -> None:
    """The session stack runs on a generated password: no process shows it."""
    password = neo4j_password(settings)
    assert settings.neo4j_password is None and len(password) >= 24
    sampler = CommandLineSampler(password)
    sampler.check_once()
    assert sampler.hits == []
