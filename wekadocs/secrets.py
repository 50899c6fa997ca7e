"""Source secrets (webhook secrets, API tokens) resolved by name at the time
they are needed, so a source added to a running service works at once.

The source registry in Redis holds only a secret's *name* (``--webhook-secret-env
VAR``). Its value lives in a folder of the service's own (one file per name,
mode 0600 in a 0700 folder) that ``wekadocs sources add`` and ``wekadocs
serve`` write from the operator's environment, and that the webhook replicas
and freshness actors read on each use; else in the process's environment (on
KubeRay: the pods' variables, from a Kubernetes Secret). Never in Redis, never
in Ray's ``runtime_env`` (both readable by anyone who can read the cluster's
state). Why a folder rather than an encrypted value in Redis: a key that only
the service holds would itself need exactly such a file, and a file adds no
new thing to protect or rotate (see docs/operations.md#freshness).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from wekadocs.errors import WekadocsError

__all__ = ["SecretStore", "SecretError"]


class SecretError(WekadocsError):
    """A secret's name is not a variable name, or its file cannot be read or written."""


_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class SecretStore:
    """Args:
        folder: where the secrets live (``Settings.effective_secrets_dir``);
            on one machine every process of the service sees the same folder.
        environ: the fallback; the process's environment by default.
    """

    def __init__(self, folder: Path, environ: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.environ = os.environ if environ is None else environ

    def get(self, name: str | None) -> str | None:
        """The value of secret ``name`` now: its file, else the variable."""
        if not name:
            return None
        path = self.folder / _checked(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            value = ""
        except OSError as exc:
            raise SecretError(f"cannot read secret {name} from {path}: {exc}") from exc
        return value or self.environ.get(name) or None

    def put(self, name: str, value: str) -> Path:
        """Write (or replace, atomically) secret ``name``, readable by its owner only."""
        path, temporary = self._written(name, value)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise SecretError(f"cannot write secret {name} to {path}: {exc}") from exc
        return path

    def create(self, name: str, value: str) -> str:
        """Write secret ``name`` unless its file exists; the value that is
        stored either way. Two processes racing on a first start agree: the
        file appears at once, complete (a hard link of a written temporary),
        and only the first link succeeds."""
        path, temporary = self._written(name, value)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first: its value counts
        except OSError as exc:
            raise SecretError(f"cannot write secret {name} to {path}: {exc}") from exc
        finally:
            temporary.unlink(missing_ok=True)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"cannot read secret {name} from {path}: {exc}") from exc

    def _written(self, name: str, value: str) -> tuple[Path, Path]:
        """(the secret's path, a complete 0600 temporary beside it holding ``value``)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        path = self.folder / _checked(name)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.")  # created 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(value)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise SecretError(f"cannot write secret {name} to {path}: {exc}") from exc
        return path, Path(temporary)

    def save_from(self, names: Iterable[str | None], environ: Mapping[str, str]) -> list[str]:
        """Copy the named variables that are set in ``environ`` (the operator's
        shell) into the folder; the names written."""
        written = []
        for name in sorted({n for n in names if n}):
            if environ.get(name):
                self.put(name, environ[name])
                written.append(name)
        return written


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):  # a file name, never a path
        raise SecretError(f"invalid secret name {name!r}: use upper-case letters, digits and _")
    return name
