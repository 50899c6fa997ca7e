"""Reading the KubeRay manifests the way a cluster would: build, validate, resolve.

Building an overlay and resolving a container's environment are
``cluster/kuberay_objects.py``'s (the operator-style run uses them too); here
the KubeRay CRDs' OpenAPI v3 schemas validate the ray.io objects (unknown
fields rejected, as the API server's strict field validation does).
"""

from __future__ import annotations

import copy
import importlib.util
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from cluster.kuberay_objects import (
    Obj,
    build_overlay,
    container_environment,
    expand,
    find,
    ray_cluster_specs,
    ray_groups,
    secret_values,
)
from wekadocs.errors import MissingToolError

__all__ = ["REPO", "KUBERAY", "OVERLAYS", "Obj", "build", "find", "ray_cluster_specs", "ray_groups",
           "job_specs", "ray_containers", "pod_templates", "all_containers", "secret_values",
           "container_environment", "expand_args", "load_render", "crd_validator", "crd_errors"]

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "kuberay"
OVERLAYS = ("dev", "prod")
# The KubeRay release whose CRDs the manifests are checked against (../shared, never copied here).
CRD_DIR = Path(os.environ.get("WEKADOCS_KUBERAY_CRDS", REPO.parent / "shared" / "schemas" / "kuberay-v1.7.0"))
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_render() -> ModuleType:
    """``kuberay/render.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("kuberay_render", KUBERAY / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def build(overlay: str) -> tuple[Obj, ...]:
    """The objects ``kubectl kustomize kuberay/overlays/<overlay>`` prints."""
    try:
        return build_overlay(overlay)
    except MissingToolError as exc:
        pytest.fail(str(exc))


def job_specs(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(owner, RayJobSpec) of every RayJob and RayCronJob template."""
    for obj in objects:
        owner = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "RayJob":
            yield owner, obj["spec"]
        elif obj["kind"] == "RayCronJob":
            yield owner, obj["spec"]["jobTemplate"]


def ray_containers(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(where, container) for the Ray container of every head and worker group."""
    for owner, spec in ray_cluster_specs(objects):
        for group, group_spec in ray_groups(spec):
            # KubeRay runs Ray in the first container of the pod template.
            yield f"{owner} {group}", group_spec["template"]["spec"]["containers"][0]


def pod_templates(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(where, PodTemplateSpec) of every pod the objects would start."""
    for obj in objects:
        if obj["kind"] == "StatefulSet":
            yield f"StatefulSet/{obj['metadata']['name']}", obj["spec"]["template"]
    for owner, spec in ray_cluster_specs(objects):
        for group, group_spec in ray_groups(spec):
            yield f"{owner} {group}", group_spec["template"]


def all_containers(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    for where, template in pod_templates(objects):
        spec = template["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{where} {container['name']}", container


def expand_args(container: Obj, env: dict[str, str]) -> list[str]:
    """The container's command and args after ``$(VAR)`` expansion."""
    return [expand(str(a), env, container["name"]) for a in container.get("command", []) + container.get("args", [])]


# --- the KubeRay CRDs ------------------------------------------------------------


@cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    """A validator for ``kind``'s served v1 schema that also rejects unknown fields
    and repeated keys in map-like lists, as the API server does."""
    path = CRD_DIR / CRD_FILES[kind]
    if not path.exists():
        pytest.fail(f"the KubeRay CRDs are missing at {CRD_DIR} (set WEKADOCS_KUBERAY_CRDS)")
    crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    return _KUBERNETES_VALIDATOR(schema)


def crd_errors(obj: Obj) -> list[str]:
    validator = crd_validator(obj["kind"])
    return [f"{obj['kind']}/{obj['metadata']['name']} at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)]


def _strict(schema: Any) -> Any:
    """Objects with declared properties accept no others (the API server's
    strict field validation; it prunes or refuses what the schema lacks)."""
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def _list_map_keys(validator: Any, keys: list[str], instance: Any, schema: Obj) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list):
        return
    seen = set()
    for item in instance:
        if isinstance(item, dict):
            key = tuple(item.get(k) for k in keys)
            if key in seen:
                yield jsonschema.ValidationError(f"duplicate entry for {dict(zip(keys, key))}")
            seen.add(key)


def _list_type(validator: Any, kind: str, instance: Any, schema: Obj) -> Iterator[jsonschema.ValidationError]:
    if kind == "set" and isinstance(instance, list):
        rendered = [repr(v) for v in instance]
        if len(set(rendered)) != len(rendered):
            yield jsonschema.ValidationError("duplicate items in a set")


# OpenAPI v3 schemas are JSON Schema draft 4 plus Kubernetes' x- keywords.
_KUBERNETES_VALIDATOR = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {"x-kubernetes-list-map-keys": _list_map_keys, "x-kubernetes-list-type": _list_type},
)
