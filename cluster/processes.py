"""Start, find and stop the local server processes we own.

A process is ours when its pid is recorded in our state folder *and* its command
line still contains our marker (the service's home folder). The second check
guards against pid reuse: ``down`` must never signal a stranger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["spawn", "is_alive", "is_ours", "terminate", "session_members", "port_is_free", "processes_matching",
           "free_port", "free_ports"]


def spawn(command: list[str], *, log_file: Path, env: dict[str, str] | None = None,
          inherit_env: bool = True) -> int:
    """Start ``command`` in a session of its own (it outlives us), output to ``log_file``,
    with our environment plus ``env`` (or ``env`` alone, without ``inherit_env``).

    ``posix_spawn`` rather than ``Popen``: the server is meant to outlive the
    ``Popen`` object, whose finaliser would warn that it is "still running".
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(
        command[0], command, {**(os.environ if inherit_env else {}), **(env or {})},
        file_actions=file_actions, setsid=True
    )


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def is_alive(pid: int) -> bool:
    """The process exists and is not a zombie (its command line may still be
    empty for an instant after spawn, so this does not look at it)."""
    _reap(pid)
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def is_ours(pid: int | None, marker: str) -> bool:
    """True if ``pid`` is alive and its command line contains ``marker``."""
    if not pid:
        return False
    cmdline = _cmdline(pid)
    return cmdline is not None and marker in cmdline and not _is_zombie(pid)


def processes_matching(marker: str) -> list[int]:
    """Every live process whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_ours(int(entry.name), marker):
            found.append(int(entry.name))
    return found


def terminate(pid: int, marker: str, *, grace_s: float = 60.0) -> None:
    """Stop a service and everything it started.

    SIGTERM goes to the leader alone, so it can shut its children down in
    order (``ray start --block`` does); after ``grace_s`` whatever is left of
    its session (``spawn`` made one per service) gets SIGKILL.
    """
    if is_ours(pid, marker):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            _reap(pid)
            if not is_ours(pid, marker):
                break
            time.sleep(0.2)
    for _ in range(50):
        _reap(pid)
        members = session_members(pid)
        if not members:
            return
        for member in members:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def session_members(session_id: int) -> list[int]:
    """Live (non-zombie) processes of the session ``spawn`` created."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(avoid: Iterable[int] = ()) -> int:
    """A port the kernel considers free right now (for tests and agent ports),
    other than ``avoid`` (ports chosen for servers that have not bound them yet)."""
    return free_ports(1, avoid)[0]


def free_ports(count: int, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct free ports. Each socket stays bound until all are
    chosen: one at a time, the kernel can hand out the same port twice (a Ray
    head was once given one port for its dashboard and its metrics)."""
    avoided = set(avoid)
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in avoided:
                ports.append(port)
        return ports
