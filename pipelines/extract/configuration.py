"""Configuration: ``key=value`` settings, environment variables, mount options.

Precision first: a key counts only inside code, only in the shapes a setting
has (lower-case dotted/underscored identifiers, upper-case variables with an
underscore), and never when it is an LDAP attribute or a URL query parameter.
"""

from __future__ import annotations

import re

from pipelines.extract.collector import Collector
from pipelines.extract.config_files import PROGRAM_LANGS, config_file_lines, extract_config_file_keys
from pipelines.extract.text_scan import Run, code_runs, plain, table_rows
from wekadocs.model import Section

__all__ = ["extract_configuration"]

_KEY_VALUE = re.compile(r"(?<![\w.$/-])([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)\s?=\s?(?=[^=\s])")
_ENV = re.compile(r"(?<![\w$.-])\$?([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])(?![\w-])")
_MOUNT_O = re.compile(r"(?:^|\s)-o\s+([^\s`]+)|mountOptions:\s*\[?\s*\"([^\"]+)\"")
_ENV_WORDS = re.compile(r"\benv(?:ironment)?\b|\bvariables?\b", re.I)
_OPTION = re.compile(r"^([a-z][a-z0-9_]*)(?:=.*)?$")
# Keys that are not settings: LDAP DN parts, query parameters, shell variables.
_NOT_KEYS = {"cn", "dc", "ou", "uid", "o", "c", "l", "st", "page", "i", "x", "n", "id"}
_KEY_CONFIDENCE = 0.9
_ENV_CONFIDENCE = 0.9
_MOUNT_CONFIDENCE = 0.85


def extract_configuration(section: Section, out: Collector) -> None:
    mount_context = "mount" in " ".join(section.trail).lower()
    runs = code_runs(section.text)
    config_lines = config_file_lines(section.text)
    extract_config_file_keys(section, out)
    for run in runs:
        _key_values(section, run, out, mount_context, run.start in config_lines)
        _environment(section, run, out)
        _mount_options(section, run, out)
    if mount_context:
        _mount_option_tables(section, out)


def _in_url(text: str, offset: int) -> bool:
    """Whether ``offset`` lies in a URL's query (after ``?`` or ``&`` in a token with ``://``)."""
    if offset and text[offset - 1] in "?&":
        return True
    token = text[max(text.rfind(" ", 0, offset), text.rfind('"', 0, offset)) + 1: offset]
    return "://" in token


def _add(section: Section, name: str, kind: str, start: int, confidence: float, out: Collector) -> None:
    entity = out.entity("Configuration", name, kind=kind)
    out.mention(section.id, entity, start, start + len(name), confidence)


def _key_values(section: Section, run: Run, out: Collector, mount_context: bool, config_file: bool) -> None:
    if run.lang in PROGRAM_LANGS:
        return  # `client = connect(…)` assigns a program's variable
    for match in _KEY_VALUE.finditer(run.text):
        key = match.group(1)
        at_line_start = not run.text[: match.start()].strip()
        if _in_url(run.text, match.start()):
            continue  # a query parameter (`?page=2`), not a setting
        if run.text[match.end():].startswith(("[", "{")):
            continue  # HCL `capabilities = [...]`: a list or block, not a value
        if config_file:
            continue  # a config file's lines are read by ``config_files``
        if key in _NOT_KEYS or (len(key) < 3 and "." not in key and not mount_context):
            continue
        if run.text[: match.start()].rstrip().endswith(("-o", ",")):
            continue  # a mount option list, handled below
        if mount_context and not run.fenced and match.start() == 0:
            _add(section, key, "mount-option", run.start, _MOUNT_CONFIDENCE, out)
            continue
        bare = not ("_" in key or "." in key)
        if bare and (not (run.fenced and at_line_start) or key[-1].isdigit()):
            continue  # `mode=auto` mid-line (output), `column1=val1` (a template)
        _add(section, key, "key", run.start + match.start(1), _KEY_CONFIDENCE, out)


def _environment(section: Section, run: Run, out: Collector) -> None:
    """Upper-case names count as environment variables only when used as one
    (``$X``, ``export X``, ``X=…``), named ``WEKA_…``, or called a variable in
    the same line; otherwise ``QUOTA_COLORING`` (a task) or ``OBS_DETACH``
    (command output) would pass."""
    for match in _ENV.finditer(run.text):
        name = match.group(1)
        # the line of the name itself: a run can join wrapped help-output lines
        said = bool(_ENV_WORDS.search(_line_of(section.text, run.start + match.start(1))))
        before = run.text[: match.start()].rstrip()
        after = run.text[match.end():]
        if before.endswith(("<", "{")):
            continue  # a placeholder such as <YOUR_IMAGE>
        used = match.group(0).startswith("$") or before.endswith("export") or after.startswith("=")
        if used or said or name.startswith("WEKA_"):
            _add(section, name, "environment", run.start + match.start(1), _ENV_CONFIDENCE, out)


def _line_of(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start: end if end >= 0 else None]


def _mount_options(section: Section, run: Run, out: Collector) -> None:
    for match in _MOUNT_O.finditer(run.text):
        group = 1 if match.group(1) is not None else 2
        offset = run.start + match.start(group)
        for option in match.group(group).split(","):
            option = option.strip()
            found = _OPTION.match(option.strip("<>[]"))
            if found and found.group(1) not in _NOT_KEYS:
                _add(section, found.group(1), "mount-option", offset, _MOUNT_CONFIDENCE, out)
            offset += len(option) + 1


def _mount_option_tables(section: Section, out: Collector) -> None:
    """First-column code names of tables headed "Option" in a mount section."""
    in_table = False
    for row_start, cells in table_rows(section.text):
        cell, start = cells[0] if cells else ("", 0)
        header = "" if "`" in cell else plain(cell).lower()
        if header in ("option", "options", "mount option"):
            # under a "Parameters" label it lists a weka command's options
            in_table = "parameters" not in section.text[max(0, row_start - 40): row_start].lower()
            continue
        if header in ("name", "parameter", "parameters", "argument", "flag"):
            in_table = False  # a command's parameters table, not mount options
            continue
        match = re.match(r"^`([a-z][a-z0-9_]*)(?:=[^`]*)?`", cell)
        if in_table and match:
            _add(section, match.group(1), "mount-option", start + 1, _MOUNT_CONFIDENCE, out)
