"""The `wekadocs` console script, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SLICE_FOLDERS
from wekadocs.settings import Settings

WEKADOCS = str(Path(sys.executable).with_name("wekadocs"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEKADOCS_", "NEO4J_", "REDIS_", "QDRANT_"))}
    return subprocess.run(
        [WEKADOCS, *args], capture_output=True, text=True, env={**clean, **(env or {})}, timeout=120
    )


def stack_env(settings: Settings) -> dict[str, str]:
    return {
        "WEKADOCS_DATA_DIR": str(settings.data_dir),
        "WEKADOCS_NEO4J_PORT": str(settings.neo4j_port),
        "WEKADOCS_REDIS_PORT": str(settings.redis_port),
        "WEKADOCS_RAY_PORT": str(settings.ray_port),
        "WEKADOCS_RAY_DASHBOARD_PORT": str(settings.ray_dashboard_port),
        "WEKADOCS_RAY_CLIENT_PORT": str(settings.ray_client_port),
        "WEKADOCS_PROMETHEUS_PORT": str(settings.prometheus_port),
    }


def test_config_show_masks_secrets() -> None:
    result = run(
        "config", "show", "--json",
        env={"NEO4J_PASSWORD": "very-secret-pw", "REDIS_URL": "redis://:pw123456@h:6379/0"},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["neo4j_password"] == "********"
    assert shown["redis_url"] == "redis://:********@h:6379/0"
    assert "very-secret-pw" not in result.stdout and "pw123456" not in result.stdout


def test_bad_settings_fail_at_start_naming_the_setting() -> None:
    result = run("services", "status", env={"NEO4J_URI": "http://wrong:7474"})
    assert result.returncode == 2
    assert "NEO4J_URI" in result.stderr and "bolt://" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("redis_port: seventy\n")
    result = run("--config", str(config), "config", "show")
    assert result.returncode == 2
    assert "WEKADOCS_REDIS_PORT" in result.stderr


NOISY_JOB = """
import os, sys, threading, click
from cluster import cli

@cli.cli.command("noisy")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def noisy(ctx, as_json):
    cli._stdout_for_the_report_only(ctx, as_json)
    print("a line Ray prints from its error thread")
    os.write(1, b"a line written to fd 1 by native code\\n")
    cli._emit(as_json, {"ok": True}, ["ok"])
    late = threading.Thread(target=print, args=("a raylet error after the report",))
    late.start(); late.join()

cli.cli(["noisy", *sys.argv[1:]])
"""


@pytest.mark.parametrize("as_json", [True, False])
def test_a_json_report_stays_alone_on_stdout_whatever_else_prints(as_json: bool) -> None:
    """Ray's driver prints raylet errors on stdout from a thread (a lost node during
    an ingest did, after the report); a --json command's stdout is its report only."""
    result = subprocess.run([sys.executable, "-c", NOISY_JOB, *(["--json"] if as_json else [])],
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    if as_json:
        assert result.stdout.splitlines() == ['{"ok": true}']
        assert "after the report" in result.stderr and "native code" in result.stderr
    else:
        assert "ok" in result.stdout.splitlines() and "after the report" in result.stdout


def test_status_and_schema_against_the_running_stack(settings: Settings, stack: object) -> None:
    env = stack_env(settings)
    status = run("services", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    states = {s["name"]: s["state"] for s in json.loads(status.stdout.splitlines()[-1])["services"]}
    assert states == {"neo4j": "running", "redis": "running", "ray": "running", "prometheus": "running"}

    applied = run("schema", "apply", "--json", env=env)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout.splitlines()[-1])["missing"] == []
    listed = run("schema", "status", env=env)
    assert "index section_text (FULLTEXT, ONLINE)" in listed.stdout


def test_vectors_init_goes_through_the_owner_actor(settings: Settings, stack: object) -> None:
    env = stack_env(settings)
    result = run("vectors", "init", "--json", env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.splitlines()[-1])
    assert payload["engine"] == "qdrant-edge (via actor)"
    assert payload["alias_target"] == settings.vector_collection
    again = json.loads(run("vectors", "init", "--json", env=env).stdout.splitlines()[-1])
    assert again["created"] is False


def test_eval_scores_the_engine_and_both_baselines(settings: Settings, ingested: dict[str, int],
                                                    tmp_path: Path) -> None:
    qrels = tmp_path / "slice.jsonl"
    questions = [
        {"id": "s1", "query": "fixed port for the NFS mountd service behind a firewall",
         "relevant": [{"path": "additional-protocols/nfs-support/nfs-support-1.md",
                       "heading": "Configure the service **mountd** port", "grade": 2}]},
        {"id": "s2", "query": "give license capacity back before issuing a corrected license",
         "relevant": [{"path": "licensing/classic-licensing.md", "heading": "Deactivate your license",
                       "grade": 2}]},
    ]
    qrels.write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    result = run("eval", str(qrels), "--version", "9.9", "--json", env=stack_env(settings))
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(result.stdout.splitlines()[-1])
    assert scores["questions"] == 2
    assert set(scores) >= {"hybrid", "keyword", "vector", "rrf", "best_baseline", "hybrid_vs_best_baseline"}
    assert scores["hybrid"]["recall"] == 1.0  # both answers are in the top ten
    assert scores["best_baseline"] in ("keyword", "vector")


LABELLED = Path(__file__).resolve().parents[2] / "perf" / "eval" / "questions-4.4.jsonl"


def test_eval_folds_cross_validates_every_system(settings: Settings, ingested: dict[str, int],
                                                 tmp_path: Path) -> None:
    """The labelled questions whose answers lie in the ingested slice, in 3 folds."""
    lines = [line for line in LABELLED.read_text().splitlines()
             if line.strip() and all(r["path"].startswith(SLICE_FOLDERS) for r in json.loads(line)["relevant"])]
    assert len(lines) >= 9
    qrels = tmp_path / "slice-labelled.jsonl"
    qrels.write_text("\n".join(lines[:12]) + "\n")
    env = stack_env(settings)
    plain = run("eval", str(qrels), "--version", "9.9", "--json", env=env)
    folded = run("eval", str(qrels), "--version", "9.9", "--folds", "3", "--json", env=env)
    assert plain.returncode == 0 and folded.returncode == 0, (plain.stderr + folded.stderr)[-2000:]
    before, after = json.loads(plain.stdout.splitlines()[-1]), json.loads(folded.stdout.splitlines()[-1])
    assert "folds" not in before
    for name in ("hybrid", "rrf", "keyword", "vector", "best_baseline", "per_question"):
        assert after[name] == before[name], name  # without tuning, the same figures as plain eval
    folds = after["folds"]
    assert folds["k"] == 3 and sum(folds["sizes"]) == min(12, len(lines)) and folds["stratified_by"] == "kind"
    assert set(folds["systems"]) == {"hybrid", "hybrid_shipped", "rrf", "keyword", "vector"}
    for figures in folds["systems"].values():
        assert len(figures["per_fold"]) == 3
        assert set(figures["mean"]) == set(figures["spread"]) == {"ndcg", "recall", "mrr"}
    shipped = folds["systems"]["hybrid_shipped"]["per_fold"]
    assert sum(f["ndcg"] * n for f, n in zip(shipped, folds["sizes"])) / sum(folds["sizes"]) == \
        pytest.approx(before["hybrid"]["ndcg"], abs=1e-3)
    assert [p["fold"] for p in folds["parameters"]] == [0, 1, 2]
    assert all(set(p["weights"]) == set(folds["parameters"][0]["weights"]) for p in folds["parameters"])
    assert set(folds["fitted_on_all"]) == set(folds["parameters"][0]["weights"])
    assert folds["tuning"]["method"] == "coordinate ascent"
    refused = run("eval", str(qrels), "--folds", "99", env=env)
    assert refused.returncode == 1 and "--folds must be from 2" in refused.stderr


def test_eval_names_a_bad_qrels_line(settings: Settings, stack: object, tmp_path: Path) -> None:
    qrels = tmp_path / "bad.jsonl"
    qrels.write_text('{"id": "x", "query": "q"}\n')
    result = run("eval", str(qrels), "--json", env=stack_env(settings))
    assert result.returncode == 1
    assert "bad.jsonl:1: not a qrels line" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--embedding-version", "../etc"], "use letters, digits"),
    (["--embedding-version", "wide.1", "--dims", "1000"], "384-dimensional vectors; --dims 1000"),
    (["--embedding-version", "nomodel.1", "--model", "/no/such/model"], "cannot load the model '/no/such/model'"),
])
def test_reembed_refuses_what_it_cannot_do_before_recording_anything(
        settings: Settings, stack: object, args: list[str], message: str) -> None:
    result = run("reembed", *args, env=stack_env(settings))
    assert result.returncode == 1 and message in result.stderr, result.stderr[-2000:]
    status = json.loads(run("vectors", "status", "--json", env=stack_env(settings)).stdout.splitlines()[-1])
    assert args[1] not in {c["embedding_version"] for c in status["collections"]}
    assert status["serving"] == settings.vector_collection
