"""Keys of configuration files shown in code blocks (fio jobs, slurm.conf, YAML).

A block is a configuration file when its info string says so (``yaml``,
``ini``, ``toml``…) or when most of its lines are ``key=value``/``[section]``
lines (an INI-style file with no info string, as fio's job files are). YAML is
trusted only when marked or when it opens as a manifest (``apiVersion:``,
``---``), since command output is full of ``name: value`` lines too. Every key
holding a value counts; a key that only opens a nested map or list does not.
"""

from __future__ import annotations

import re

from pipelines.extract.collector import Collector
from wekadocs.model import Section

__all__ = ["PROGRAM_LANGS", "config_file_lines", "extract_config_file_keys"]

_FENCE = re.compile(r"```([^\n]*)\n(.*?)\n?```", re.S)
_INI_LANGS = frozenset({"ini", "conf", "cfg", "toml", "properties", "env", "dotenv", "hcl", "tf", "terraform"})
PROGRAM_LANGS = frozenset({"python", "py", "python3", "javascript", "js", "go", "java", "json", "ruby"})
_YAML_LANGS = frozenset({"yaml", "yml"})
_ASSIGN = re.compile(r"^(\s*)([A-Za-z_][\w.-]*)\s*=\s*(?=\S)")
_SECTION = re.compile(r"^\s*\[[^\]]+\]\s*$")
_YAML_KEY = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w./-]*):(?:\s+(.*))?$")
_COMMENT = re.compile(r"^\s*(?:#|;|//)")
_CONFIDENCE = 0.85


def _blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(kind, offset of the first line, lines) of each config-file block;
    kind is ``ini`` or ``yaml``."""
    found = []
    for match in _FENCE.finditer(text):
        lang = match.group(1).strip().lower()
        lines = match.group(2).split("\n")
        body = [line for line in lines if line.strip() and not _COMMENT.match(line)]
        if not body:
            continue
        if lang in _YAML_LANGS or (not lang and body[0].strip() in ("---",) or body[0].startswith("apiVersion:")):
            found.append(("yaml", match.start(2), lines))
            continue
        if lang in PROGRAM_LANGS:
            continue  # `s3 = boto3.client(…)` is a program's variable, not a setting
        shaped = sum(1 for line in body if _ASSIGN.match(line) or _SECTION.match(line))
        if lang in _INI_LANGS or (len(body) >= 3 and shaped >= 0.6 * len(body)):
            found.append(("ini", match.start(2), lines))
    return found


def config_file_lines(text: str) -> set[int]:
    """Offsets of the lines that belong to configuration-file blocks."""
    offsets = set()
    for _kind, offset, lines in _blocks(text):
        for line in lines:
            offsets.add(offset)
            offset += len(line) + 1
    return offsets


def extract_config_file_keys(section: Section, out: Collector) -> None:
    for kind, offset, lines in _blocks(section.text):
        for line in lines:
            if not _COMMENT.match(line):
                found = _ASSIGN.match(line) if kind == "ini" else _yaml_scalar_key(line)
                if found:
                    key, start = found.group(2), offset + found.start(2)
                    if not line[found.end():].startswith(("[", "{")):
                        entity = out.entity("Configuration", key, kind=f"{kind}-key")
                        out.mention(section.id, entity, start, start + len(key), _CONFIDENCE)
            offset += len(line) + 1


def _yaml_scalar_key(line: str) -> re.Match[str] | None:
    match = _YAML_KEY.match(line)
    if not match or not (match.group(3) or "").split("#")[0].strip():
        return None  # `metadata:` opens a map
    return match
