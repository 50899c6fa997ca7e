"""Commands of programs other than the WEKA CLI, shown on command lines in code.

The docs show ``mount -t wekafs …``, ``kubectl get sc``, ``sysctl -w …`` and
``./install.sh`` as often as ``weka`` itself; a reader asking "how do I mount"
needs them as Commands. Code also holds output, comments and config files, so
a line counts as a command line only where something says so: a shell prompt
(``$``, ``[root@host ~]#``), a program name known to be one, a path to an
executable, or (after ``#``) a flag right after the first word. ``weka``
itself is left to ``commands``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.extract.collector import Collector
from pipelines.extract.text_scan import Run, code_runs
from wekadocs.model import Entity, Section

__all__ = ["ProgramCall", "find_program_calls", "extract_program_commands"]

# Programs whose name alone says a command line starts (a lexicon, not the sample).
_KNOWN = frozenset("""
    awk apt apt-get aws az bash brew cat chmod chown chronyc cp curl dd df dig dmesg dnf docker du
    egrep ethtool find fio firewall-cmd free gcloud getenforce git grep gzip head helm hostnamectl
    ibdev2netdev ifconfig ip iperf iostat jq journalctl kinit klist kubectl ldapsearch less ll ln ls
    lsblk lscpu lsmod lspci lsof mkdir mkfs modprobe mount mst mv nc net nfsstat nmcli nohup numactl
    nvme openssl ping pip pip3 podman python python3 realm reboot rm rpm rsync scp sed service
    setenforce sh showmount smbclient ssh ssh-keygen stat sudo sysctl systemctl tail tar tee terraform
    timedatectl touch umount unzip useradd usermod vault vi vim wbinfo wget xargs yum zip
""".split())
# Programs built of sub-commands: their name is the program and its first sub-command word.
_SUBCOMMANDS = frozenset("""
    kubectl helm terraform git docker podman systemctl az aws gcloud brew yum dnf apt apt-get pip
    pip3 vault
""".split())
# Words that start a command line but are not programs to name.
_WRAPPERS = frozenset({"sudo", "time", "watch", "exec", "nohup", "env", "xargs"})
_BUILTINS = frozenset({"cd", "echo", "export", "source", "if", "then", "else", "fi", "for", "do", "done",
                       "while", "set", "unset", "alias", "read", "exit", "return", "eval", "true", "false"})
_SHELLS = frozenset({"bash", "sh", "shell", "console", "zsh"})  # a block of commands, unless prompted
_PROMPT = re.compile(r"^\s*(?:\[[^\]\n]*\][#$]|[\w.-]+@[\w.-]+:[^\s#$]*[#$]|\$|#|>)\s+")
# `./install.sh`, `/usr/bin/weka`: a path that runs something, unlike `/dev/nvme0n1`
# or the output `persistentvolumeclaim/pvc-x created`
_EXECUTABLE_PATH = re.compile(r"^(?:\.{1,2}/|~/|/(?:usr/|opt/|bin/|sbin/|tmp/|root/|home/))")
_RUNNABLE = frozenset({"sh", "py", "pl", "run", "bin"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=\S*$")
_PROGRAM = re.compile(r"^(?:\.{0,2}/)?(?:[\w.-]+/)*([A-Za-z][\w.+-]*)$")
_SUBCOMMAND_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_SEPARATOR = re.compile(r"\|\|?|&&|;|\$\(|`")
_TOKEN = re.compile(r"\S+")
_CONFIDENCE = 0.85


@dataclass(frozen=True)
class ProgramCall:
    name: str  # ``mount``, ``kubectl get``
    start: int  # offset of the program word in the section text
    arguments: tuple[tuple[str, int], ...]  # (token, offset) after the program word


def find_program_calls(section_text: str, runs: list[Run] | None = None) -> list[ProgramCall]:
    calls: list[ProgramCall] = []
    for run in runs if runs is not None else code_runs(section_text):
        calls.extend(_calls_in_run(run))
    return calls


def _calls_in_run(run: Run) -> list[ProgramCall]:
    text = run.text
    prompt = _PROMPT.match(text)
    calls = []
    for index, (seg_start, seg_end) in enumerate(_segments(text, prompt.end() if prompt else 0)):
        tokens = [(m.group(), seg_start + m.start()) for m in _TOKEN.finditer(text[seg_start:seg_end])]
        while tokens and (tokens[0][0] in _WRAPPERS or _ASSIGNMENT.match(tokens[0][0])
                          or tokens[0][0].startswith("-") and tokens[0][0] != "-"):
            tokens = tokens[1:]  # sudo, FOO=bar, a wrapper's flags
        if not tokens:
            continue
        raw, offset = tokens[0]
        word = raw.strip("\"'(")
        offset += len(raw) - len(raw.lstrip("\"'("))
        match = _PROGRAM.match(word)
        if not match or word in _BUILTINS or match.group(1) in _BUILTINS or match.group(1) == "weka":
            continue
        program, rest = match.group(1), tokens[1:]
        if not _runs(run, prompt, index, word, program, rest):
            continue
        name = program
        if program in _SUBCOMMANDS:
            sub = _subcommand(rest)
            if sub and _SUBCOMMAND_WORD.match(sub[0]):
                name = f"{program} {sub[0]}"
        start = offset + len(word) - len(program)
        calls.append(ProgramCall(name, run.start + start, tuple((t, run.start + o) for t, o in rest)))
    return calls


def _runs(run: Run, prompt: re.Match[str] | None, index: int, word: str, program: str,
          rest: list[tuple[str, int]]) -> bool:
    """Whether ``word`` (the ``index``-th command of the line) is a program run."""
    marker = prompt.group().strip() if prompt else ""
    prompted = bool(prompt) and marker not in ("#", ">")
    extension = program.rsplit(".", 1)[1] if "." in program else ""
    runnable = extension in _RUNNABLE
    # `./install.sh`, `./wekachecker`, `/usr/bin/x`; not `/tmp/ks-pre.log` or `~/.ssh/key.pub`
    pathlike = runnable or (not extension and bool(_EXECUTABLE_PATH.match(word)))
    flagged = bool(rest) and rest[0][0].startswith("-")
    if bool(rest) and (rest[0][0] in ("=", "{", ":") or run.text.rstrip().endswith(("{", "}"))):
        return False  # HCL or a config snippet, even in a block marked bash: `terraform {`
    if index > 0:
        return program in _KNOWN or pathlike  # after `|`, `&&`, `$(`: a bare word still runs
    # in a block marked as shell, a line with flags is a command line; a bare
    # line may be the previous command's output (`client1  Running`)
    shell = run.lang in _SHELLS and not prompt and any(t.startswith("-") and len(t) > 1 for t, _ in rest)
    span_with_flags = not run.fenced and flagged  # `niccli --list`
    if not (prompted or shell or program in _KNOWN or pathlike or (marker == "#" and flagged) or span_with_flags):
        return False
    if not rest and not (prompted or run.lang in _SHELLS or runnable or word.startswith("./")):
        return False  # a lone `mount` in prose, or `git` in a list of packages, names a program
    # output ("Welcome to…") after a prompt-looking `#`
    return program[:1].isalpha() and (not program[0].isupper() or program in _KNOWN)


def _subcommand(rest: list[tuple[str, int]]) -> tuple[str, int] | None:
    """The first word after the program that is not a flag or a short flag's
    value (`kubectl -n kube-system get` → `get`; `--x=y` carries its value)."""
    skip_value = False
    for token, offset in rest:
        if skip_value:
            skip_value = False
            continue
        if token.startswith("-"):
            skip_value = not token.startswith("--") and len(token) == 2
            continue
        return token, offset
    return None


def _segments(text: str, start: int) -> list[tuple[int, int]]:
    """Spans of one line's commands, split at ``|``, ``&&``, ``;`` and ``$(``."""
    spans = []
    position = start
    for match in _SEPARATOR.finditer(text, start):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def extract_program_commands(section: Section, out: Collector) -> list[tuple[int, Entity]]:
    """Commands, their ``--flags`` (Parameters) and ``key=value`` operands
    (Configuration, as ``dd if=…`` or ``--setopt=reposdir=…``)."""
    found: list[tuple[int, Entity]] = []
    for call in find_program_calls(section.text):
        command = out.entity("Command", call.name, program=call.name.split()[0])
        # ``kubectl get`` as written spans both words; ``dnf --x=y update`` only the program
        whole = section.text[call.start: call.start + len(call.name)] == call.name
        end = call.start + len(call.name if whole else call.name.split()[0])
        out.mention(section.id, command, call.start, end, _CONFIDENCE)
        found.append((call.start, command))
        for token, offset in call.arguments:
            _argument(section, command, token, offset, out)
    return found


_FLAG = re.compile(r"^--([A-Za-z][\w-]*[A-Za-z0-9])(=(.*))?")
_OPERAND = re.compile(r"^([A-Za-z][\w.]*)=(?=\S)")


def _argument(section: Section, command: Entity, token: str, offset: int, out: Collector) -> None:
    flag = _FLAG.match(token)
    if flag:
        name = flag.group(1)
        parameter = out.entity("Parameter", name, command.name, name, command=command.name)
        out.mention(section.id, parameter, offset + 2, offset + 2 + len(name), 0.85)
        out.relate("HAS_PARAMETER", ("Command", command.id), ("Parameter", parameter.id), section.id, 0.85)
        value = flag.group(3) or ""
        operand = _OPERAND.match(value)
        if operand:
            _setting(section, operand.group(1), offset + flag.start(3), out)
        return
    operand = _OPERAND.match(token)
    if operand:
        _setting(section, operand.group(1), offset, out)


def _setting(section: Section, key: str, start: int, out: Collector) -> None:
    entity = out.entity("Configuration", key, kind="operand")
    out.mention(section.id, entity, start, start + len(key), 0.8)
