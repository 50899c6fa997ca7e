"""Renders the RayService's ``serveConfigV2`` from ``serve_apps/serve_config.yaml``.

The Serve config has one source, the file ``serve deploy`` and ``wekadocs serve``
read. This script writes it into ``serve-config.yaml``, a patch of the
RayService, in ``base/`` and beside each overlay's ``serve-scaling.yaml``:

    python kuberay/render.py          # rewrite the generated files
    python kuberay/render.py --check  # exit 1 naming each stale file

Two things may differ from the source, and nothing else (the tests check):

* ``http_options.host`` is ``0.0.0.0``: in a pod, Serve's proxy must listen
  beyond loopback for KubeRay's serve Service to reach it (on one machine,
  ``wekadocs serve --host`` does the same);
* an overlay's ``serve-scaling.yaml`` may change a deployment's replica and
  concurrency knobs (``SCALING_KEYS``), by application and deployment name.

Plain PyYAML, no project imports: it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SERVE_CONFIG", "KUBERAY", "POD_HOST", "SCALING_KEYS", "render_config", "outputs", "main"]

KUBERAY = Path(__file__).resolve().parent
SERVE_CONFIG = KUBERAY.parent / "serve_apps" / "serve_config.yaml"
POD_HOST = "0.0.0.0"
# The deployment options an overlay may set; everything else is the source's.
SCALING_KEYS = frozenset({"autoscaling_config", "num_replicas", "max_ongoing_requests"})
RAYSERVICE = "wekadocs"
OUTPUT = "serve-config.yaml"
SCALING = "serve-scaling.yaml"


class RenderError(Exception):
    """An overlay's scaling file names something the Serve config lacks, or a key it may not set."""


def render_config(source: dict[str, Any], scaling: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Serve config a RayService carries: ``source`` with the pod's host and ``scaling`` applied."""
    config = copy.deepcopy(source)
    config.setdefault("http_options", {})["host"] = POD_HOST
    apps = {app["name"]: app for app in config.get("applications", [])}
    for app_name, deployments in (scaling or {}).items():
        if app_name not in apps:
            raise RenderError(f"{SCALING}: no application {app_name!r} in {SERVE_CONFIG.name}")
        by_name = {d["name"]: d for d in apps[app_name].get("deployments", [])}
        for deployment_name, options in (deployments or {}).items():
            if deployment_name not in by_name:
                raise RenderError(f"{SCALING}: no deployment {deployment_name!r} in application {app_name!r}")
            extra = set(options) - SCALING_KEYS
            if extra:
                raise RenderError(f"{SCALING}: {app_name}/{deployment_name} may set only "
                                  f"{sorted(SCALING_KEYS)}, not {sorted(extra)}")
            _merge(by_name[deployment_name], options)
    return config


def outputs(kuberay: Path = KUBERAY, serve_config: Path = SERVE_CONFIG) -> dict[Path, str]:
    """Each generated file and the text it must hold."""
    source = yaml.safe_load(serve_config.read_text(encoding="utf-8"))
    targets: dict[Path, Path | None] = {kuberay / "base": None}
    for scaling in sorted(kuberay.glob(f"overlays/*/{SCALING}")):
        targets[scaling.parent] = scaling
    texts = {}
    for folder, scaling in targets.items():
        overrides = yaml.safe_load(scaling.read_text(encoding="utf-8")) if scaling else None
        config = render_config(source, overrides)
        texts[folder / OUTPUT] = _patch_text(config, scaling.relative_to(kuberay) if scaling else None)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(KUBERAY.parent)}", file=sys.stderr)
    if args.check and stale:
        print("run `python kuberay/render.py` and commit the result", file=sys.stderr)
        return 1
    return 0


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _patch_text(config: dict[str, Any], scaling: Path | None) -> str:
    origin = "serve_apps/serve_config.yaml" + (f" and kuberay/{scaling}" if scaling else "")
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    indented = "".join(f"    {line}" if line.strip() else line for line in body.splitlines(keepends=True))
    return (
        f"# Generated by kuberay/render.py from {origin}.\n"
        "# Do not edit: change the source and run `python kuberay/render.py`.\n"
        "apiVersion: ray.io/v1\n"
        "kind: RayService\n"
        "metadata:\n"
        f"  name: {RAYSERVICE}\n"
        "spec:\n"
        "  serveConfigV2: |\n"
        f"{indented}"
    )


if __name__ == "__main__":
    sys.exit(main())
