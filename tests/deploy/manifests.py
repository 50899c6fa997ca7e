"""Reading the KubeRay manifests the way a cluster would: build, validate, resolve.

Offline stand-ins for what ``kubectl apply`` and the kubelet do: ``kubectl
kustomize`` builds an overlay, the KubeRay CRDs' OpenAPI v3 schemas validate
the ray.io objects (unknown fields rejected, as the API server's strict field
validation does), and a container's environment is resolved from its
ConfigMap, Secret references and ``$(VAR)`` expansions.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

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
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Obj = dict[str, Any]


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
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is missing: `./dev setup` installs it (Debian's kubernetes-client)")
    result = subprocess.run([kubectl, "kustomize", str(KUBERAY / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.load_all(result.stdout, Loader=_LOADER) if doc)


def find(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def ray_cluster_specs(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(owner, RayClusterSpec) of every KubeRay object that starts a cluster."""
    for obj in objects:
        owner = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "RayService":
            yield owner, obj["spec"]["rayClusterConfig"]
        elif obj["kind"] == "RayJob":
            yield owner, obj["spec"]["rayClusterSpec"]
        elif obj["kind"] == "RayCronJob":
            yield owner, obj["spec"]["jobTemplate"]["rayClusterSpec"]


def ray_groups(spec: Obj) -> Iterator[tuple[str, Obj]]:
    """(group name, group spec) for the head and each worker group."""
    yield "head", spec["headGroupSpec"]
    for group in spec.get("workerGroupSpecs", []):
        yield group["groupName"], group


def ray_containers(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(where, container) for the Ray container of every head and worker group."""
    for owner, spec in ray_cluster_specs(objects):
        for group, group_spec in ray_groups(spec):
            # KubeRay runs Ray in the first container of the pod template.
            yield f"{owner} {group}", group_spec["template"]["spec"]["containers"][0]


def job_specs(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(owner, RayJobSpec) of every RayJob and RayCronJob template."""
    for obj in objects:
        owner = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "RayJob":
            yield owner, obj["spec"]
        elif obj["kind"] == "RayCronJob":
            yield owner, obj["spec"]["jobTemplate"]


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


def secret_values(objects: tuple[Obj, ...]) -> dict[tuple[str, str], str]:
    """(Secret name, key) -> decoded value, for the Secrets an overlay itself creates."""
    values = {}
    for obj in objects:
        if obj["kind"] == "Secret":
            for key, encoded in (obj.get("data") or {}).items():
                values[(obj["metadata"]["name"], key)] = base64.b64decode(encoded).decode()
            for key, plain in (obj.get("stringData") or {}).items():
                values[(obj["metadata"]["name"], key)] = plain
    return values


def container_environment(container: Obj, objects: tuple[Obj, ...],
                          secret: Callable[[str, str], str]) -> dict[str, str]:
    """The environment the kubelet gives ``container``: envFrom first, then env in
    order, each ``$(VAR)`` replaced by a variable defined before it. A reference
    to an undefined variable fails here (the kubelet would leave it as text)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            ref = source["secretRef"]
            present = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"]]
            assert present or ref.get("optional"), f"envFrom names Secret {ref['name']} without optional: true"
    for item in container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = _expand(str(item["value"]), env, f"{container['name']} {name}")
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[name] = secret(ref["name"], ref["key"])
    return env


def expand_args(container: Obj, env: dict[str, str]) -> list[str]:
    """The container's command and args after ``$(VAR)`` expansion."""
    return [_expand(str(a), env, container["name"]) for a in container.get("command", []) + container.get("args", [])]


def _expand(text: str, env: dict[str, str], where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"{where}: $({name}) names no variable defined before it"
        return env[name]

    return _REFERENCE.sub(one, text)


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
