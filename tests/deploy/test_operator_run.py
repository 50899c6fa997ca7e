"""The dev overlay run the way KubeRay runs it (``python -m cluster.operator_run``).

What KubeRay makes of a group is checked against the built manifests without
starting anything; then one run starts it all: the ingest RayJob on a head and
a worker of its own cluster, the RayService's cluster with ``serveConfigV2``
deployed through the dashboard's Serve REST API, and a search through the
official MCP client. Nothing of the run may be left running.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path


from cluster import processes
from cluster.operator_run import IMAGE_WORKDIR, as_flags, quantity, ray_start_params
from cluster.operator_run import summary as summary_text
from tests.deploy.manifests import KUBERAY, REPO, build, find


def _groups(overlay: str, kind: str, name: str) -> dict[str, dict]:
    obj = find(build(overlay), kind, name)
    spec = obj["spec"]["rayClusterConfig"] if kind == "RayService" else obj["spec"]["rayClusterSpec"]
    return {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}


def test_kuberay_start_params_come_from_the_group_and_its_limits() -> None:
    groups = _groups("dev", "RayService", "wekadocs")
    head = ray_start_params(groups["head"])
    limits = groups["head"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert head["dashboard-host"] == "0.0.0.0"  # the manifest's own parameter
    assert head["num-cpus"] == str(int(quantity(limits["cpu"])))
    assert head["memory"] == str(4 * 2**30) and limits["memory"] == "4Gi"
    assert "resources" not in head  # the head offers no embed/query: the stores' node
    worker = ray_start_params(groups["cpu"])
    assert json.loads(worker["resources"]) == {"embed": 1, "query": 1}
    assert "--resources=" + worker["resources"] in as_flags(worker)


def test_a_gpu_limit_becomes_num_gpus_and_explicit_params_win() -> None:
    gpu = ray_start_params(_groups("prod", "RayService", "wekadocs")["gpu"])
    assert gpu["num-gpus"] == "1"
    group = {"rayStartParams": {"num-cpus": "1", "block": "true"},
             "template": {"spec": {"containers": [{"resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}]}}}
    params = ray_start_params(group)
    assert params["num-cpus"] == "1" and params["memory"] == str(512 * 2**20)
    assert as_flags(params) == ["--num-cpus=1", "--block", f"--memory={512 * 2**20}"]
    assert ray_start_params({**group, "rayStartParams": {}})["num-cpus"] == "1"  # 500m rounds up


def test_the_image_folder_the_run_replaces_is_the_dockerfiles_workdir() -> None:
    dockerfile = (KUBERAY / "image" / "Dockerfile").read_text()
    assert re.search(rf"^WORKDIR {re.escape(IMAGE_WORKDIR)}$", dockerfile, re.MULTILINE)
    entrypoint = find(build("dev"), "RayJob", "wekadocs-ingest")["spec"]["entrypoint"]
    assert f"{IMAGE_WORKDIR}/docs" in entrypoint


def test_the_dev_overlay_runs_as_the_operator_would(short_tmp: Path) -> None:
    run_dir = short_tmp / "op"
    env = {**os.environ, "WEKADOCS_NEO4J_HEAP": "1g", "WEKADOCS_NEO4J_PAGECACHE": "256m",
           "WEKADOCS_RAY_OBJECT_STORE_MB": "512"}
    result = subprocess.run([sys.executable, "-m", "cluster.operator_run", "--overlay", "dev",
                             "--data-dir", str(run_dir), "--json"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    left = processes.processes_matching(str(run_dir))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)

    job = report["job"]
    assert job["status"] == "SUCCEEDED" and job["cluster_stopped"]
    assert [n["name"] for n in job["nodes"]] == ["job-head", "job-cpu-1"]
    worker = job["nodes"][1]
    # what the group and its container's limits say the node offers
    assert worker["resources"]["embed"] == 1 and worker["resources"]["CPU"] == 2
    assert worker["resources"]["memory"] == 6 * 2**30
    assert job["entrypoint"].startswith(f"wekadocs ingest {REPO}/docs ")
    assert job["runtime_env"] == {"env_vars": {"WEKADOCS_EMBEDDING_ACTORS": "1"}}
    summary = job["summary"]
    assert summary["sections_written"] > 0 and not summary["errors"], summary
    # the one embedding actor ran where `embed` is offered: the worker pod
    assert job["embedded_per_pod"] == {"job-cpu-1": summary["embeddings_computed"]}

    service = report["service"]
    assert [n["name"] for n in service["nodes"]] == ["svc-head", "svc-cpu-1"]
    assert service["applications"] == {"wekadocs-mcp": "RUNNING", "wekadocs-webhooks": "RUNNING"}
    assert service["replicas"]["wekadocs-mcp/MCPServer"]
    # the pods listen beyond loopback (WEKADOCS_SERVE_HOST): bearer tokens are on, as in a cluster
    assert service["auth"] == {"enabled": True, "without_token": 401}
    search = service["search"]
    assert search["evidence"] > 0 and search["top"] and search["collection"]
    assert left == [], f"processes of the run still running: {left}"
    assert "RayService wekadocs: {'wekadocs-mcp': 'RUNNING'" in summary_text(report)
