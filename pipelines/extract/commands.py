"""Commands of the WEKA CLI and their parameters.

A command path runs from ``weka`` to the last sub-command word. Where an
invocation carries positional values (``weka fs snapshot create myfs snap1``)
the words alone cannot tell sub-commands from values, so we first learn the
page's command paths from its *usage* lines (a path followed by ``<arg>``,
``[--flag]``, or standing alone in a code span) and cut other invocations at
the longest learned path. Failing that, a run stops at the first word that
looks like a value (digits, dots, upper case, quotes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.extract.collector import Collector
from pipelines.extract.text_scan import Run, code_runs, plain, table_rows
from wekadocs.model import Entity, Section

__all__ = ["Invocation", "find_invocations", "learn_paths", "extract_commands"]

_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_USAGE_TOKEN = re.compile(r"<[^<>]*>|[\[\]{}]|[^\s\[\]{}<>]+")
_NAME = re.compile(r"^[a-zA-Z][\w-]*$")
_COMMAND_START = re.compile(
    r"\s*(?:\[[^\]]*\])?\s*(?:[$#>]\s*)?(?:(?:sudo|time|watch|exec|nohup)(?:\s+-\S+)*\s+)?"
    r"(?:[A-Za-z_]\w*=\S*\s+)*"
)
_EXAMPLE_FLAG = re.compile(r"(?<![\w-])--([A-Za-z][\w-]*[A-Za-z0-9])")
_MAX_WORDS = 6  # sub-command words after `weka`
_CONFIDENT = 0.95
_GENERIC = {"options", "option", "params", "parameters", "args", "arguments", "flags"}
_HEADER_NAMES = {"name", "parameter", "parameters", "option", "options", "flag", "argument"}


@dataclass(frozen=True)
class Invocation:
    words: tuple[str, ...]  # sub-command words after `weka`, as far as they look like words
    start: int  # offset of `weka` in the section text
    rest: str  # what follows the words in the run
    usage: bool  # the run looks like a usage line or a bare command


def _command_word(word: str) -> bool:
    return bool(_WORD.match(word)) and (not any(c.isdigit() for c in word) or word == "s3")


def find_invocations(runs: Iterable[Run]) -> list[Invocation]:
    found = []
    for run in runs:
        for match in re.finditer(r"(?<![\w./-])weka(?![\w.-])", run.text):
            if not _invoked(run.text[: match.start()]):
                continue
            tail = run.text[match.end():]
            tokens = tail.split()
            words: list[str] = []
            for token in tokens:
                word = token.split("/")[0].rstrip("'\",;.)")  # `pause / resume`: the first
                if len(words) == _MAX_WORDS or not _command_word(word):
                    break
                words.append(word)
                if word != token:
                    break  # punctuation ends the command: `weka local upgrade'.
            if not words:
                continue
            consumed = _skip_words(tail, len(words))
            rest = tail[consumed:].strip()
            usage = rest[:1] in ("<", "[", "-") or (not rest and not run.fenced)
            found.append(Invocation(tuple(words), run.start + match.start(), rest, usage))
    return found


def _rest_offset(text: str, words: int) -> int:
    """Offset, in ``text`` (what follows ``weka``), of what follows the path."""
    position = _skip_words(text, words)
    return position + len(text[position:]) - len(text[position:].lstrip())


def _invoked(prefix: str) -> bool:
    """``weka`` starts a command line (after a prompt such as ``[root@host ~]#``,
    sudo, env assignments)
    or follows a shell operator; elsewhere ("commands related to weka agent"
    in help text) it is a word."""
    return bool(_COMMAND_START.fullmatch(prefix)) or prefix.rstrip().endswith(("|", "&&", ";", "(", "$(", " /"))


def _skip_words(text: str, count: int) -> int:
    position = 0
    for _ in range(count):
        match = re.compile(r"\s*\S+").match(text, position)
        position = match.end() if match else len(text)
    return position


# How a page states a path: with positional arguments after it, with flags
# only, or bare in a code span (weakest: `weka widget create demo` is bare too).
_STRENGTH = {"bare": 0, "flags": 1, "positional": 2}


def learn_paths(invocations: Iterable[Invocation]) -> dict[tuple[str, ...], str]:
    """Command paths a page states outright, with how (see ``_STRENGTH``)."""
    known: dict[tuple[str, ...], str] = {}
    for inv in invocations:
        if not inv.usage:
            continue
        how = "positional" if inv.rest.startswith("<") else "flags" if inv.rest else "bare"
        if _STRENGTH[how] >= _STRENGTH[known.get(inv.words, "bare")]:
            known[inv.words] = how
    return known


def command_path(invocation: Invocation, known: dict[tuple[str, ...], str]) -> tuple[str, ...]:
    """Cut an invocation after the longest stated path that takes positional
    arguments (what follows it is values), unless the whole invocation is
    itself a path stated with arguments or flags."""
    words = invocation.words
    if known.get(words, "bare") != "bare":
        return words
    for length in range(len(words) - 1, 0, -1):
        if known.get(words[:length]) == "positional":
            return words[:length]
    return words


def extract_commands(
    section: Section, known: dict[tuple[str, ...], str], out: Collector, inherited: Entity | None = None
) -> list[tuple[int, Entity]]:
    """Commands and parameters of one section. Returns (offset, command) pairs
    so later steps (parameter tables, steps, examples) can refer to them.
    ``inherited`` is the last command of the previous part of a split
    section: a Parameters table cut from its command still belongs to it."""
    commands: list[tuple[int, Entity]] = [(-1, inherited)] if inherited else []
    for invocation in find_invocations(code_runs(section.text)):
        path = command_path(invocation, known)
        name = "weka " + " ".join(path)
        command = out.entity("Command", name)
        end = invocation.start + len(name)
        out.mention(section.id, command, invocation.start, end, _CONFIDENT)
        commands.append((invocation.start, command))
        rest_start = invocation.start + len("weka") + _rest_offset(section.text[invocation.start + 4:], len(path))
        if invocation.usage and path == invocation.words:
            for param, offset in _usage_parameters(invocation.rest):
                _parameter(section, command, param, rest_start + offset, out, 0.9)
        else:
            # an example (`weka fs create myfs 1TiB --encrypted`): its values
            # are not parameters, its flags are
            rest = section.text[rest_start: invocation.start + len("weka") + len(invocation.rest) + 64]
            for match in _EXAMPLE_FLAG.finditer(invocation.rest):
                offset = rest.find(match.group(0))
                if offset >= 0:
                    _parameter(section, command, match.group(1), rest_start + offset + 2, out, 0.85)
    _table_parameters(section, commands, out)
    _help_options(section, commands, out)
    return [pair for pair in commands if pair[0] >= 0]


_HELP_OPTION = re.compile(r"(?:^|(?<=\s))(?:-[A-Za-z],\s+)?--([A-Za-z][\w-]*[A-Za-z0-9])(?=\s{2,}[A-Z])")


def _help_options(section: Section, commands: list[tuple[int, Entity]], out: Collector) -> None:
    """``Options:`` lines of help output in code (``-H, --HOST   Specify the
    host``) are parameters of the command stated before them."""
    for run in code_runs(section.text):
        if not run.fenced:
            continue
        for match in _HELP_OPTION.finditer(run.text):
            owner = _owner(commands, run.start + match.start())
            if owner is not None:
                _parameter(section, owner, match.group(1), run.start + match.start(1), out, 0.8)


def _usage_parameters(rest: str) -> list[tuple[str, int]]:
    """Flags and positional placeholders of a usage line, with offsets into it.

    ``--flag``, ``<positional>`` and ``[optional-positional]`` are parameters;
    a placeholder or word right after a flag is that flag's value.
    """
    params: list[tuple[str, int]] = []
    after_flag = False
    depth = 0
    for match in _USAGE_TOKEN.finditer(rest):
        token = match.group()
        if token in "[{":
            depth += 1
            continue
        if token in "]}":
            depth = max(depth - 1, 0)
            continue
        token = token.strip("|,.")
        if token.startswith("--") and len(token) > 2:
            name = token[2:].split("=")[0]
            if _NAME.match(name):
                params.append((name, match.start() + 2))
            after_flag = "=" not in token or token.endswith("=")
            continue
        if token.startswith("<") and token.endswith(">"):
            name, offset = token[1:-1].strip(), match.start() + 1
        elif depth and not token.startswith("-"):
            name, offset = token, match.start()  # [optional-positional]
        else:
            after_flag = False
            continue
        if not after_flag and _NAME.match(name) and name.lower() not in _GENERIC:
            params.append((name, offset))
        after_flag = False
    return params


def _table_parameters(section: Section, commands: list[tuple[int, Entity]], out: Collector) -> None:
    """Rows of a Parameters table belong to the last command stated before it."""
    in_table = False
    last_row_end = -1
    for row_start, cells in table_rows(section.text):
        if not cells:
            continue
        first = plain(cells[0][0]).rstrip("*").strip().lower()
        # rows are contiguous when only the header's separator row lies between
        contiguous = last_row_end >= 0 and not section.text[last_row_end:row_start].strip(" \t\n|-:")
        last_row_end = row_start + section.text[row_start:].find("\n") if "\n" in section.text[row_start:] else len(section.text)
        if first in _HEADER_NAMES:
            in_table = True
            continue
        if not (in_table and contiguous):
            in_table = False
            continue
        owner = _owner(commands, row_start)
        cell, cell_start = cells[0]
        found = _table_name(cell)
        if owner is None or found is None:
            continue
        _parameter(section, owner, found[0], cell_start + found[1], out, 0.9)


def _table_name(cell: str) -> tuple[str, int] | None:
    """The parameter a first cell names, with its offset: ```name`*``,
    ```--name```, or the long form of ```-f`, `--force```; a short flag alone
    (```-C```) is not a parameter."""
    if not cell.startswith("`"):
        return None
    for match in re.finditer(r"`(-{0,2})([A-Za-z][\w-]*)`", cell):
        dashes, name = match.groups()
        if dashes == "-" or (dashes and len(name) == 1) or name.endswith("-"):
            continue  # a short flag, or a name cut by markup (`destination-`\*`name`)
        return name, match.start(2)
    return None


def _owner(commands: list[tuple[int, Entity]], offset: int) -> Entity | None:
    before = [command for start, command in commands if start < offset]
    return before[-1] if before else None


def _parameter(section: Section, command: Entity, name: str, start: int, out: Collector, confidence: float) -> None:
    parameter = out.entity("Parameter", name, command.name, name, command=command.name)
    out.mention(section.id, parameter, start, start + len(name), confidence)
    out.relate("HAS_PARAMETER", ("Command", command.id), ("Parameter", parameter.id), section.id, confidence)
