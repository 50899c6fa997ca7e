"""The KubeRay manifests as a cluster reads them: built, looked up, resolved.

Offline stand-ins for what ``kubectl apply`` and the kubelet do, shared by the
manifest tests and the operator-style run (``cluster/operator_run.py``):
``kubectl kustomize`` builds an overlay, and a container's environment is
resolved from its ConfigMap, Secret references and ``$(VAR)`` expansions.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from wekadocs.errors import MissingToolError, WekadocsError

__all__ = ["KUBERAY", "ManifestError", "build_overlay", "find", "ray_cluster_specs", "ray_groups",
           "secret_values", "container_environment", "expand"]

KUBERAY = Path(__file__).resolve().parents[1] / "kuberay"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Obj = dict[str, Any]


class ManifestError(WekadocsError):
    """An overlay that does not build, or an object it lacks or names twice."""


def build_overlay(overlay: str | Path) -> tuple[Obj, ...]:
    """The objects ``kubectl kustomize kuberay/overlays/<overlay>`` prints
    (``overlay`` may also be a folder of its own)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise MissingToolError("kubectl", "`./dev setup` installs it (Debian's kubernetes-client)")
    folder = Path(overlay) if Path(overlay).is_dir() else KUBERAY / "overlays" / str(overlay)
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ManifestError(f"kubectl kustomize {folder} failed:\n{result.stderr.strip()}")
    return tuple(doc for doc in yaml.load_all(result.stdout, Loader=_LOADER) if doc)


def find(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise ManifestError(f"expected one {kind}/{name}, found {len(matches)}")
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
    to an undefined variable is refused here (the kubelet would leave it as text)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            ref = source["secretRef"]
            present = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"]]
            if not (present or ref.get("optional")):
                raise ManifestError(f"envFrom names Secret {ref['name']} without optional: true")
    for item in container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env, f"{container['name']} {name}")
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[name] = secret(ref["name"], ref["key"])
    return env


def expand(text: str, env: dict[str, str], where: str) -> str:
    """``text`` with each ``$(VAR)`` replaced from ``env``."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ManifestError(f"{where}: $({name}) names no variable defined before it")
        return env[name]

    return _REFERENCE.sub(one, text)
