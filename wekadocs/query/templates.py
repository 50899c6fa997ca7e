"""The pre-approved Cypher templates, loaded from ``cypher/*.cypher``.

Templates are files so a reviewer sees every statement the service can run
in one folder. Each file starts with ``//`` comment lines, one of them
``// params: a, b``; the loader strips the comments (the validator refuses
comments in what it runs) and checks that the declared parameters are exactly
the ``$names`` the body uses.

One macro keeps the files short: ``%NODE(var, param)%`` becomes a subquery
that finds the node with id ``$param`` through each label's unique-id index
(matching ``{id: …}`` without a label would scan every node).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import LiteralString, cast

from wekadocs.graph_schema import NODE_LABELS

__all__ = ["Template", "template", "template_names"]

_FOLDER = Path(__file__).with_name("cypher")
_NODE_MACRO = re.compile(r"%NODE\((\w+), (\w+)\)%")
_PARAM = re.compile(r"\$(\w+)")


class Template:
    """One statement and the parameters it takes."""

    def __init__(self, name: str, cypher: str, params: frozenset[str], description: str) -> None:
        self.name = name
        self.cypher = cast(LiteralString, cypher)
        self.params = params
        self.description = description


def _node_by_id(var: str, param: str) -> str:
    branches = [f"MATCH ({var}:{label} {{id: ${param}}}) RETURN {var}" for label in NODE_LABELS]
    return "CALL () {\n  " + "\n  UNION ALL\n  ".join(branches) + "\n}"


def _load(path: Path) -> Template:
    lines = path.read_text(encoding="utf-8").splitlines()
    comments = [line[2:].strip() for line in lines if line.startswith("//")]
    declared = next((c.removeprefix("params:") for c in comments if c.startswith("params:")), None)
    if declared is None:
        raise ValueError(f"{path.name}: no '// params:' line")
    body = "\n".join(line for line in lines if not line.startswith("//")).strip()
    body = _NODE_MACRO.sub(lambda m: _node_by_id(m.group(1), m.group(2)), body)
    params = frozenset(p.strip() for p in declared.split(",") if p.strip())
    used = frozenset(_PARAM.findall(body))
    if used != params:
        raise ValueError(f"{path.name}: declares {sorted(params)} but uses {sorted(used)}")
    description = " ".join(c for c in comments if not c.startswith("params:"))
    return Template(path.stem, body, params, description)


@cache
def _all() -> dict[str, Template]:
    return {path.stem: _load(path) for path in sorted(_FOLDER.glob("*.cypher"))}


def template(name: str) -> Template:
    try:
        return _all()[name]
    except KeyError:
        raise KeyError(f"no Cypher template {name!r}; have {sorted(_all())}") from None


def template_names() -> list[str]:
    return sorted(_all())
