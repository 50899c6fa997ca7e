"""Waiting for series in a Prometheus text endpoint (Ray's metrics agent, Serve's /metrics).

Ray's agent exports each series on its own schedule, and other tests' series of
the same metric may come first: a test waits for the exact series it asserts,
name and labels, within a deadline, and says which one never came.
"""

from __future__ import annotations

import time

import httpx

__all__ = ["wait_for_series"]


def wait_for_series(url: str, wanted: dict[str, tuple[str, str]], timeout_s: float = 180) -> str:
    """Poll ``url`` until, for each entry ``what: (metric, label)``, some line
    starts with ``metric{`` and contains ``label``; return the last body.

    The default wait is long on purpose: a series reaches the endpoint only
    after the actor's metrics agent exports it, and on a loaded 2-core CI
    machine that took over 90 s once (a breaker-state gauge, load average
    above 10). A passing run does not wait longer for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        lines = response.text.splitlines()
        missing = [what for what, (metric, label) in wanted.items()
                   if not any(line.startswith(metric + "{") and label in line for line in lines)]
        if not missing:
            return response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"not exported by {url} within {timeout_s:g} s: {', '.join(missing)}")
        time.sleep(1)
