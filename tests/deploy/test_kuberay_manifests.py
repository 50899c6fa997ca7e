"""The KubeRay manifests, checked without a Kubernetes cluster.

Each overlay is built with ``kubectl kustomize``; its KubeRay objects are
validated against the KubeRay v1.7.0 CRDs in ``../shared``, its core objects
(and every pod template inside the KubeRay objects) against Kubernetes' own
OpenAPI schema, and the RayService's ``serveConfigV2`` against Ray Serve's
schema and against ``serve_apps/serve_config.yaml``.
"""

from __future__ import annotations

import copy
import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click import Group
from pydantic import SecretStr
from ray.serve.schema import ServeDeploySchema

from cluster.ray_workers import WORKER_RESOURCES
from tests.deploy.manifests import (
    KUBERAY,
    OVERLAYS,
    REPO,
    all_containers,
    build,
    container_environment,
    crd_errors,
    expand_args,
    find,
    job_specs,
    load_render,
    pod_templates,
    ray_cluster_specs,
    ray_containers,
    ray_groups,
    secret_values,
)
from wekadocs.bundled_models import bundled
from wekadocs.settings import Settings, load_settings

# The oldest Kubernetes release the manifests are meant for.
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "wekadocs"
CREDENTIALS = "wekadocs-credentials"
SOURCES = "wekadocs-sources"
DOCS = REPO / "docs" / "kubernetes.md"
RAY_KINDS = {"RayService", "RayJob", "RayCronJob", "RayCluster"}

EXPECTED = {
    ("ConfigMap", "wekadocs-settings"),
    ("Service", "wekadocs-neo4j"), ("StatefulSet", "wekadocs-neo4j"),
    ("Service", "wekadocs-redis"), ("StatefulSet", "wekadocs-redis"),
    ("Service", "wekadocs-qdrant"), ("StatefulSet", "wekadocs-qdrant"),
    ("RayService", "wekadocs"),
    ("RayJob", "wekadocs-ingest"), ("RayJob", "wekadocs-reembed"),
    ("RayCronJob", "wekadocs-reconcile"),
}
# Settings whose values are secrets, by their environment names, and the variables that carry one.
SECRET_SETTINGS = {Settings.env_name(name) for name, field in Settings.model_fields.items()
                   if field.annotation in (SecretStr, SecretStr | None)}
SECRET_VARIABLES = SECRET_SETTINGS | {"RAY_AUTH_TOKEN", "REDIS_URL", "REDIS_AUTH"}
SETTING_NAMES = {Settings.env_name(name) for name in Settings.model_fields}

overlays = pytest.mark.parametrize("overlay", OVERLAYS)


def _ray_objects(overlay: str) -> list[dict[str, Any]]:
    return [o for o in build(overlay) if o["kind"] in RAY_KINDS]


def _serve_config(overlay: str) -> dict[str, Any]:
    return yaml.safe_load(find(build(overlay), "RayService", "wekadocs")["spec"]["serveConfigV2"])


def _source_serve_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "serve_apps" / "serve_config.yaml").read_text(encoding="utf-8"))


# --- building and schemas ------------------------------------------------------------


@overlays
def test_overlay_builds_with_every_object(overlay: str) -> None:
    objects = build(overlay)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    # dev carries its own (published) credentials; prod's are created by the operator.
    secrets = {("Secret", CREDENTIALS)} if overlay == "dev" else set()
    assert names == EXPECTED | secrets
    assert {o["metadata"].get("namespace") for o in objects} == {NAMESPACE}


@overlays
def test_kuberay_objects_validate_against_the_crds(overlay: str) -> None:
    objects = _ray_objects(overlay)
    assert {o["kind"] for o in objects} == {"RayService", "RayJob", "RayCronJob"}
    assert {o["apiVersion"] for o in objects} == {"ray.io/v1"}
    errors = [error for obj in objects for error in crd_errors(obj)]
    assert errors == []


def test_crd_validation_refuses_what_the_api_server_would() -> None:
    """The check above can fail: a misspelt field, a wrong type, a bad enum, a repeated env name."""
    service = copy.deepcopy(find(build("prod"), "RayService", "wekadocs"))
    cluster = service["spec"]["rayClusterConfig"]
    cluster["enableInTreeAutoScaling"] = True
    cluster["workerGroupSpecs"][0]["replicas"] = "two"
    cluster["authOptions"]["mode"] = "password"
    env = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    env.append(copy.deepcopy(env[0]))
    errors = "\n".join(crd_errors(service))
    assert "'enableInTreeAutoScaling' was unexpected" in errors
    assert "'two' is not of type 'integer'" in errors
    assert "'password' is not one of" in errors
    assert "duplicate entry for {'name': 'RAY_AUTH_MODE'}" in errors


@overlays
def test_core_objects_validate_against_kubernetes(overlay: str) -> None:
    objects = build(overlay)
    core = [o for o in objects if o["kind"] not in RAY_KINDS]
    # The pods KubeRay will create, as Kubernetes PodTemplates.
    core += [{"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": re.sub(r"[^a-z0-9-]", "-", where.lower())},
              "template": template}
             for where, template in pod_templates(objects) if not where.startswith("StatefulSet/")]
    errors = []
    for obj in core:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert errors == []


def test_kubernetes_validation_refuses_a_bad_statefulset() -> None:
    statefulset = copy.deepcopy(find(build("dev"), "StatefulSet", "wekadocs-redis"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSION, strict=True)


# --- the Serve config ----------------------------------------------------------------


def test_generated_serve_config_is_up_to_date() -> None:
    stale = [str(path.relative_to(REPO)) for path, text in load_render().outputs().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == [], "run `python kuberay/render.py` and commit the result"
    check = subprocess.run([sys.executable, str(KUBERAY / "render.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@overlays
def test_serve_config_v2_passes_serves_own_schema(overlay: str) -> None:
    schema = ServeDeploySchema.model_validate(_serve_config(overlay))
    assert [app.import_path for app in schema.applications] == [
        "cluster.serve_runner:build_app", "cluster.serve_runner:build_webhooks"]


@overlays
def test_serve_config_v2_is_serve_config_yaml(overlay: str) -> None:
    """Equal to the source but for the pod's listen address and, in an overlay
    with serve-scaling.yaml, replica and concurrency knobs."""
    render = load_render()
    shipped, source = _serve_config(overlay), _source_serve_config()
    assert shipped["http_options"]["host"] == "0.0.0.0"

    def without_knobs(config: dict[str, Any]) -> dict[str, Any]:
        config = copy.deepcopy(config)
        del config["http_options"]["host"]
        for app in config["applications"]:
            for deployment in app["deployments"]:
                for key in render.SCALING_KEYS:
                    deployment.pop(key, None)
        return config

    assert without_knobs(shipped) == without_knobs(source)
    if not (KUBERAY / "overlays" / overlay / "serve-scaling.yaml").exists():
        assert shipped == render.render_config(source)


def test_prod_serve_scaling_raises_the_replicas() -> None:
    replicas = {d["name"]: d["autoscaling_config"]["max_replicas"]
                for app in _serve_config("prod")["applications"] for d in app["deployments"]}
    source = {d["name"]: d["autoscaling_config"]["max_replicas"]
              for app in _source_serve_config()["applications"] for d in app["deployments"]}
    assert replicas["MCPServer"] > source["MCPServer"]


def test_render_refuses_anything_but_scaling_knobs() -> None:
    render = load_render()
    source = _source_serve_config()
    with pytest.raises(render.RenderError, match="may set only"):
        render.render_config(source, {"wekadocs-mcp": {"MCPServer": {"ray_actor_options": {"num_cpus": 8}}}})
    with pytest.raises(render.RenderError, match="no deployment"):
        render.render_config(source, {"wekadocs-mcp": {"MCPServe": {"num_replicas": 2}}})


# --- shape: GPUs, autoscaling, auth, secrets -------------------------------------------


def test_prod_has_a_gpu_group_and_autoscaling() -> None:
    for owner, spec in ray_cluster_specs(build("prod")):
        if owner == "RayCronJob/wekadocs-reconcile":
            continue  # a repair re-embeds only what drifted: CPU only
        assert spec["enableInTreeAutoscaling"] is True, owner
        gpus = [group for group, g in ray_groups(spec)
                if g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")]
        assert gpus == ["gpu"], owner
        gpu = dict(ray_groups(spec))["gpu"]
        assert gpu["maxReplicas"] > gpu["minReplicas"] >= 1, owner


def test_dev_is_cpu_only_and_fixed_size() -> None:
    for owner, spec in ray_cluster_specs(build("dev")):
        assert spec["enableInTreeAutoscaling"] is False, owner
        for group, g in ray_groups(spec):
            assert "nvidia.com/gpu" not in str(g["template"]["spec"]["containers"][0]["resources"]), owner
            if group != "head":
                assert g["minReplicas"] == g["maxReplicas"] == g["replicas"] == 1, owner


@overlays
def test_worker_groups_offer_the_resources_our_placement_asks_for(overlay: str) -> None:
    """The same markers as a local worker node (cluster/ray_workers.py): the
    embedding actors ask for `embed` wherever a node offers it, MCP replicas
    placed away from the head ask for `query`; the head offers neither."""
    for owner, spec in ray_cluster_specs(build(overlay)):
        assert "resources" not in spec["headGroupSpec"], owner
        for group, g in ray_groups(spec):
            if group == "head":
                continue
            offered = set(g["resources"])
            assert "embed" in offered and offered <= set(WORKER_RESOURCES), (owner, group)
            assert all(value == "1" for value in g["resources"].values()), (owner, group)
        if owner.startswith("RayService/"):
            assert "query" in dict(ray_groups(spec))["cpu"]["resources"], owner


@overlays
def test_token_auth_on_every_ray_node(overlay: str) -> None:
    ray_version = importlib.metadata.version("ray")
    for owner, spec in ray_cluster_specs(build(overlay)):
        assert spec["authOptions"] == {"mode": "token", "secretName": CREDENTIALS}, owner
        # KubeRay refuses token auth below Ray 2.52; the image runs the Ray we pin.
        assert spec["rayVersion"] == ray_version, owner
    containers = list(ray_containers(build(overlay)))
    assert len(containers) >= 8  # a head and a worker group per cluster
    for where, container in containers:
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"] == {"name": "RAY_AUTH_MODE", "value": "token"}, where
        assert env["RAY_AUTH_TOKEN"]["valueFrom"] == {
            "secretKeyRef": {"name": CREDENTIALS, "key": "auth_token"}}, where


def test_image_builds_on_the_pinned_ray() -> None:
    dockerfile = (KUBERAY / "image" / "Dockerfile").read_text(encoding="utf-8")
    assert f"FROM rayproject/ray:{importlib.metadata.version('ray')}-py3" in dockerfile


@overlays
def test_ray_containers_share_one_environment(overlay: str) -> None:
    """One copy per head and worker group, kept by hand: none may drift from the others."""
    environments = {yaml.safe_dump({"env": c["env"], "envFrom": c["envFrom"], "image": c["image"]})
                    for _, c in ray_containers(build(overlay))}
    assert len(environments) == 1


@overlays
def test_secrets_only_from_secrets(overlay: str) -> None:
    objects = build(overlay)
    for where, container in all_containers(objects):
        for item in container.get("env", []):
            if item["name"] in SECRET_VARIABLES - {"REDIS_URL"}:
                assert "secretKeyRef" in item.get("valueFrom", {}), f"{where}: {item['name']} not from a Secret"
            elif item["name"] == "REDIS_URL":  # its password from a variable that comes from the Secret
                assert re.match(r"redis://:\$\(REDIS_AUTH\)@", item["value"]), where
    configmap = find(objects, "ConfigMap", "wekadocs-settings")["data"]
    assert not SECRET_VARIABLES & set(configmap)
    for owner, job in job_specs(objects):
        runtime_env = yaml.safe_load(job.get("runtimeEnvYAML") or "{}")
        names = set(runtime_env.get("env_vars", {}))
        assert names <= SETTING_NAMES - SECRET_SETTINGS, f"{owner}: runtime_env sets {names - SETTING_NAMES}"
        assert set(runtime_env) <= {"env_vars"}, owner
    # No value of the dev Secret appears anywhere but in the Secret itself.
    values = set(secret_values(build("dev")).values())
    for obj in objects:
        if obj["kind"] != "Secret":
            text = yaml.safe_dump(obj)
            assert not [v for v in values if v in text], f"{obj['kind']}/{obj['metadata']['name']}"


@overlays
def test_every_secret_reference_is_documented(overlay: str) -> None:
    """The keys docs/kubernetes.md tells the operator to create are the keys the pods read."""
    referenced = set()
    for _, container in all_containers(build(overlay)):
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                referenced.add((ref["name"], ref["key"]))
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"] == {"name": SOURCES, "optional": True}
    text = DOCS.read_text(encoding="utf-8")
    command = re.search(rf"create secret generic {CREDENTIALS}((?:.*\\\n)*.*)", text)
    assert command, f"{DOCS.name} shows no `kubectl create secret generic {CREDENTIALS}`"
    documented = {(CREDENTIALS, key) for key in re.findall(r"--from-literal=([\w-]+)=", command.group(1))}
    assert referenced == documented
    if overlay == "dev":
        assert set(secret_values(build(overlay))) == documented


# --- what the pods would run -------------------------------------------------------------


@overlays
def test_pod_environment_is_valid_settings(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = build(overlay)
    shipped = secret_values(objects)
    env = container_environment(dict(ray_containers(objects))["RayService/wekadocs head"], objects,
                                lambda name, key: shipped.get((name, key), f"placeholder-{key}"))
    names = {n for n in env if n.startswith("WEKADOCS_")}
    assert names <= SETTING_NAMES, f"not settings: {names - SETTING_NAMES}"
    for name in [n for n in list(os.environ) if n in SETTING_NAMES or n.startswith("WEKADOCS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert not (settings.manages_neo4j or settings.manages_redis)
    assert settings.qdrant_url == "http://wekadocs-qdrant:6333"
    password = shipped.get((CREDENTIALS, "redis-password"), "placeholder-redis-password")
    assert settings.redis_url == f"redis://:{password}@wekadocs-redis:6379/0"
    assert "wekadocs-serve-svc" in settings.mcp_allowed_hosts


@overlays
def test_every_variable_reference_resolves(overlay: str) -> None:
    """The kubelet leaves an unknown $(VAR) as text: a password of '$(REDIS_AUTH)'."""
    objects = build(overlay)
    for where, container in all_containers(objects):
        env = container_environment(container, objects, lambda name, key: f"secret-{key}")
        assert "$(" not in " ".join(expand_args(container, env)), where


@overlays
def test_stores_answer_where_the_settings_point(overlay: str) -> None:
    objects = build(overlay)
    settings = find(objects, "ConfigMap", "wekadocs-settings")["data"]
    urls = {"neo4j": settings["NEO4J_URI"], "qdrant": settings["QDRANT_URL"],
            "redis": "redis://wekadocs-redis:6379/0"}
    for store, url in urls.items():
        host, port = re.match(r"\w+://([\w-]+):(\d+)", url).groups()
        service = find(objects, "Service", host)
        statefulset = find(objects, "StatefulSet", host)
        assert statefulset["spec"]["serviceName"] == host
        assert int(port) in [p["port"] for p in service["spec"]["ports"]], store
        labels = statefulset["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), store
        # The data lives on a volume claimed per pod, mounted by the store's container.
        claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
        mounts = {m["name"] for m in statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
        assert claims and claims <= mounts, store
    redis = find(objects, "StatefulSet", "wekadocs-redis")["spec"]["template"]["spec"]["containers"][0]
    args = redis["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


@overlays
def test_jobs_run_the_cli(overlay: str) -> None:
    """Each entrypoint is a `wekadocs` command whose options exist."""
    from cluster.cli import cli

    assert isinstance(cli, Group)
    commands = {}
    for owner, job in job_specs(build(overlay)):
        program, name, *args = shlex.split(job["entrypoint"])
        assert program == "wekadocs", owner
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None, f"{owner}: no command {name!r}"
        # resilient parsing skips the folder's existence check, not unknown options
        context = command.make_context(name, list(args), resilient_parsing=True)
        commands[owner] = (name, context.params)
    assert commands["RayJob/wekadocs-ingest"][0] == "ingest"
    reembed = commands["RayJob/wekadocs-reembed"]
    assert reembed[0] == "reembed" and bundled(reembed[1]["model"]) is not None  # the image ships it
    assert commands["RayCronJob/wekadocs-reconcile"] == ("reconcile", {"repair": True, "as_json": True})
    # `kubectl apply` must never start a run by itself.
    for obj in build(overlay):
        if obj["kind"] == "RayJob":
            assert obj["spec"]["suspend"] is True and obj["spec"]["shutdownAfterJobFinishes"] is True
