"""The alert rules in cluster/monitoring: valid, unit-tested by promtool, and
about metrics that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "cluster" / "monitoring"
RULES = sorted((MONITORING / "rules").glob("*.yml"))
UNIT_TESTS = sorted((MONITORING / "tests").glob("*.yml"))
ROOT = MONITORING.parents[1]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: it ships with Debian's prometheus package (./dev setup installs it)")
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=MONITORING, timeout=120)


def alerts() -> dict[str, str]:
    """Every alert's name and expression."""
    found = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"alert {rule['alert']} is defined twice"
                    found[rule["alert"]] = rule["expr"]
    return found


def test_there_are_rules_and_unit_tests() -> None:
    assert RULES and UNIT_TESTS
    assert len(alerts()) >= 12


def test_promtool_check_rules_passes() -> None:
    result = promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_resolved() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = set(alerts())
    assert names - fired == set(), "alerts no unit test makes fire"
    assert names - quiet == set(), "alerts no unit test sees resolved (or not yet firing)"
    assert fired | quiet <= names, "unit tests of alerts that do not exist"


def test_rules_name_only_metrics_that_the_code_defines() -> None:
    """``ray_wekadocs_x[_total|_bucket|_count|_sum]`` must be a ``wekadocs_x``
    that some ``ray.util.metrics`` object in our code is created with."""
    sources = "\n".join(p.read_text() for folder in ("cluster", "serve_apps", "pipelines", "connectors")
                        for p in (ROOT / folder).rglob("*.py"))
    defined = set(re.findall(r'(?:Counter|Gauge|Histogram)\(\s*"(wekadocs_\w+)"', sources))
    assert defined, "no metric definitions found"
    used = {name for expr in alerts().values() for name in re.findall(r"\bray_(wekadocs_\w+)", expr)}
    assert used
    unknown = {name for name in used
               if re.sub(r"_(total|bucket|count|sum)$", "", name) not in defined and name not in defined}
    assert unknown == set()
